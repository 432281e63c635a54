"""A sample request, so trainers can preview exactly what the model receives."""

from __future__ import annotations

from copilot.analysis import analyse
from copilot.prompts import PromptLibrary, as_text

SAMPLE_MESSAGE = (
    "This is the THIRD time my order arrived broken. I paid $20 for express shipping {for nothing}. "
    "I want my money back NOW. — Dana"
)
SAMPLE_DRAFT = "I'm sorry for any inconvenience, but the courier broke it. You should have chosen insured shipping."


def example_values(library: PromptLibrary, prompt_id: str) -> dict[str, str]:
    """Placeholder values built from the sample message the way the pipeline builds them (without retrieval)."""
    analysis = analyse(SAMPLE_MESSAGE)
    focus = library.types[analysis.customer_type].focus
    values = {
        "message": SAMPLE_MESSAGE,
        "customer_name": analysis.customer_name or "unknown",
        "issue": analysis.issue,
        "issues": as_text(analysis.issues),
        "customer_type": analysis.customer_type,
        "guidance": f"Focus: {focus}\n[1] (the guidance passages retrieved for the message appear here)",
        "language": analysis.language_name,
        "tone": "warm and professional",
        "channel": "email",
        "signals": as_text(analysis.signals),
        "draft": SAMPLE_DRAFT,
        "findings": as_text(['"sorry for any inconvenience" — a generic apology. Instead: name the actual problem.']),
        # The revise prompt works on one blocked sentence at a time.
        "sentence": "I'm sorry for any inconvenience, but the courier broke it.",
        "problem": "A generic apology that names no problem, and an excuse that blames the courier.",
        "fix": "Name the actual problem and say what you will do about it.",
    }
    return {k: v for k, v in values.items() if k in library.get(prompt_id).header.inputs}

"""The Gradio web app: the agent's desk (draft, check, fix, feedback) and the trainer's workshop.

No business logic lives here: handlers call the copilot, the workshop and the feedback store, and format what
they return. Everything derived from a customer's or model's words is escaped before it is shown as Markdown.
"""

from __future__ import annotations

import html
import logging
import os
import queue
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from copilot.assembly import Assembly, build_copilot  # noqa: E402
from copilot.checker import Checker  # noqa: E402
from copilot.errors import CopilotError, DataFileError, InputError  # noqa: E402
from copilot.evaluation import Report, render_markdown, run_suites, write_report  # noqa: E402
from copilot.feedback import VERDICT_LABELS, FeedbackStore, Verdict, summary_markdown  # noqa: E402
from copilot.pipeline import Channel, DoneEvent, DraftRequest, DraftResult, StageEvent, TokenEvent, Tone  # noqa: E402
from copilot.settings import Settings  # noqa: E402
from copilot.workshop import DISABLED_MESSAGE, Comparison, Workshop, authorize, workshop_enabled  # noqa: E402

log = logging.getLogger("copilot.ui")

CATEGORY_LABELS = {
    "blame": "blame",
    "defensiveness": "defensiveness",
    "empty_apology": "empty apology",
    "commitment": "commitment",
    "coaching": "coaching",
}
COLORS = {
    "blame": "#f87171",
    "defensiveness": "#fb923c",
    "empty apology": "#facc15",
    "commitment": "#60a5fa",
    "coaching": "#a3a3a3",
}
SEVERITY_TEXT = {"block": "must fix", "warn": "check", "hint": "tip"}
STAGE_TEXT = {
    "analyse": "Reading the message…",
    "retrieve": "Looking up the service guidance…",
    "draft": "Writing the draft…",
    "check": "Checking the draft…",
    "revise": "Revising the draft",
}
# The first words of a reply should come within this many seconds; after that the agent is told the model is slow.
SLOW_AFTER_S = 20.0
MODEL_DOWN = (
    "**The model isn't answering:** {reason}\n\n"
    "The guidance and checker still work — write the reply yourself and check it here."
)
CSS = """
#stage { min-height: 1.5rem; color: #4b5563; }
.finding-list li { margin-bottom: 0.35rem; }
"""
_QUOTED_EXAMPLE = re.compile(r'e\.g\.\s*"([^"]+)"')
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")


# ----- formatting (pure functions, tested without a browser) -------------------------------------------------


def md_escape(text: object) -> str:
    """Text shown literally inside Markdown: HTML is escaped and Markdown punctuation neutralised."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def highlight_value(text: str, findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The HighlightedText value for a draft: one span per finding, labelled by category.

    Spans cannot overlap in the component, so blocking findings win over warnings, and warnings over hints.
    """
    rank = {"block": 0, "warn": 1, "hint": 2}
    chosen: list[tuple[int, int, str]] = []
    for f in sorted(findings, key=lambda f: (rank.get(str(f["severity"]), 3), int(f["start"]))):
        start, end = int(f["start"]), int(f["end"])
        if end <= start or end > len(text) or any(start < e and s < end for s, e, _ in chosen):
            continue
        chosen.append((start, end, CATEGORY_LABELS.get(str(f["category"]), str(f["category"]))))
    entities = [{"entity": label, "start": s, "end": e} for s, e, label in sorted(chosen)]
    return {"text": text, "entities": entities}


def findings_markdown(findings: list[dict[str, Any]], titles: dict[str, str]) -> str:
    """Each finding with its reason, a better phrasing and the guidance it comes from."""
    if not findings:
        return "✅ No findings: nothing blames, argues or apologises emptily."
    order = {"block": 0, "warn": 1, "hint": 2}
    lines = []
    for f in sorted(findings, key=lambda f: (order.get(str(f["severity"]), 3), int(f["start"]))):
        label = CATEGORY_LABELS.get(str(f["category"]), str(f["category"]))
        source = str(f.get("source", ""))
        title = titles.get(source.rsplit("/", 1)[-1], source)
        lines.append(
            f"- **{md_escape(label.capitalize())}** ({SEVERITY_TEXT.get(str(f['severity']), f['severity'])}): "
            f"“{md_escape(f['text'])}”  \n"
            f"  *Why:* {md_escape(f['message'])}  \n"
            f"  *Try:* {md_escape(f['suggestion'])}  \n"
            f"  *Guidance:* {md_escape(title)} ({md_escape(source)})"
        )
    blocking = sum(1 for f in findings if f["severity"] == "block")
    head = f"**{blocking} to fix before sending**" if blocking else "**Nothing blocking**"
    return head + f" · {len(findings)} finding(s)\n\n" + "\n".join(lines)


def citations_markdown(citations: list[dict[str, Any]]) -> str:
    """The guidance passages used, with their document titles."""
    if not citations:
        return "No guidance passages were found for this message."
    parts = []
    for number, c in enumerate(citations, start=1):
        heading = f" › {md_escape(c['heading'])}" if c.get("heading") and c["heading"] != c["title"] else ""
        passage = " ".join(str(c["text"]).split())
        parts.append(
            f"**[{number}] {md_escape(c['title'])}**{heading}  \n*{md_escape(c['source'])}*\n\n> {md_escape(passage)}"
        )
    return "\n\n".join(parts)


def replacement_for(finding: dict[str, Any]) -> str | None:
    """The example phrasing a finding suggests (its quoted "e.g." text), if it has one."""
    match = _QUOTED_EXAMPLE.search(str(finding.get("suggestion", "")))
    return match.group(1).strip() if match else None


def apply_fix(text: str, finding: dict[str, Any]) -> str:
    """Replace the finding's span with its suggested phrasing, without doubling words or punctuation around it."""
    replacement = replacement_for(finding)
    start, end = int(finding["start"]), int(finding["end"])
    if replacement is None or text[start:end] != finding["text"]:
        return text
    before, after = text[:start], text[end:]
    words = replacement.split()
    # "I'm sorry for any inconvenience" with the fix "I'm sorry your order…": keep one "I'm".
    for n in range(len(words) - 1, 0, -1):
        if before.rstrip().lower().endswith(" ".join(words[:n]).lower()):
            replacement = " ".join(words[n:])
            break
    if after[:1] in {".", "!", "?", ","} and replacement[-1:] in {".", "!", "?"}:
        replacement = replacement[:-1]
    return before + replacement + after


def fix_choices(findings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Dropdown choices for the findings that have a one-click fix (blocking and commitment ones)."""
    choices = []
    for f in findings:
        replacement = replacement_for(f)
        if replacement is None or f["severity"] == "hint":
            continue
        label = CATEGORY_LABELS.get(str(f["category"]), str(f["category"]))
        choices.append((f"{label}: “{f['text']}” → “{replacement}”", f"{f['rule']}|{f['start']}|{f['end']}"))
    return choices


def revisions_markdown(result: dict[str, Any]) -> str:
    """A line per earlier round: what the checker found in it."""
    revisions = result.get("revisions") or []
    if not revisions:
        return "The first draft passed the checker; there were no earlier rounds."
    lines = []
    for number, revision in enumerate(revisions):
        found = [f for f in revision["findings"] if f["severity"] == "block"]
        what = (
            ", ".join(f"{CATEGORY_LABELS.get(f['category'], f['category'])} “{md_escape(f['text'])}”" for f in found)
            or "no blocking findings"
        )
        lines.append(f"- **Round {number}:** {len(found)} blocking — {what}")
    final = sum(1 for f in result.get("findings", []) if f["severity"] == "block")
    lines.append(f"- **Shown above:** {final} blocking finding(s)")
    return "\n".join(lines)


def result_summary(result: dict[str, Any]) -> str:
    """One line under the draft: status, customer type, issue, model and time."""
    analysis = result.get("analysis") or {}
    status = {"clean": "✅ clean", "flagged": "⚠️ still flagged", "model_unavailable": "⛔ no draft"}.get(
        str(result.get("status")), str(result.get("status"))
    )
    total = (result.get("timings") or {}).get("total", 0) / 1000.0
    bits = [f"**{status}**", f"customer type: {md_escape(analysis.get('customer_type', '?'))}"]
    if analysis.get("issue"):
        bits.append(f"issue: {md_escape(str(analysis['issue'])[:160])}")
    bits.append(f"model: {md_escape(result.get('model', '?'))}")
    bits.append(f"{total:.1f} s")
    return " · ".join(bits)


def draft_request(message: str | None, name: str | None, channel: str | None, tone: str | None) -> DraftRequest:
    """A DraftRequest from form or API values; unknown channels and tones fall back to the defaults."""
    return DraftRequest(
        message=message or "",
        customer_name=(name or "").strip() or None,
        channel=cast(Channel, channel if channel in ("email", "chat") else "email"),
        tone=cast(Tone, tone if tone in ("neutral", "warmer", "more formal", "shorter") else "neutral"),
    )


def _notice_markdown(notices: list[str]) -> str:
    return "\n".join(f"- {md_escape(n)}" for n in notices)


def _refusal_markdown(exc: CopilotError) -> str:
    """A validation error as wrapped text: the file:line and problem, then the fix."""
    text = f"> {md_escape(exc.message)}"
    return text + (f"  \n> **Fix:** {md_escape(exc.fix)}" if exc.fix else "")


def _error_markdown(exc: CopilotError) -> str:
    text = f"⚠️ {md_escape(exc.message)}"
    return text + (f"  \n*What to do:* {md_escape(exc.fix)}" if exc.fix else "")


class _Tick:
    """A heartbeat from the drafting worker while it waits on the model."""

    def __init__(self, elapsed: float) -> None:
        self.elapsed = elapsed


_END = object()


def _events_with_ticks(produce: Callable[[], Iterator[Any]], every: float = 1.0) -> Iterator[Any]:
    """Run a blocking event generator in a thread, yielding its events plus a _Tick each second without one."""
    events: queue.Queue[Any] = queue.Queue()
    started = time.monotonic()

    def work() -> None:
        try:
            for event in produce():
                events.put(event)
        except BaseException as exc:  # handed to the UI thread, which shows it as a message
            events.put(exc)
        finally:
            events.put(_END)

    threading.Thread(target=work, name="copilot-draft", daemon=True).start()
    while True:
        try:
            item = events.get(timeout=every)
        except queue.Empty:
            yield _Tick(time.monotonic() - started)
            continue
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


# ----- the app -----------------------------------------------------------------------------------------------


def build_ui(assembly: Assembly) -> gr.Blocks:
    """The web app over an assembled copilot (the caller launches and closes it)."""
    settings = assembly.settings
    copilot = assembly.copilot
    feedback = FeedbackStore(settings.feedback_file)

    def reload_library(relpath: str) -> None:
        # The running copilot picks up a saved edit at once; the workshop validated it first.
        if relpath.startswith("checker/"):
            copilot.checker = Checker.load(settings.prompts_dir / "checker")
        elif relpath == "synonyms.yaml":
            if assembly.retriever is not None:
                from copilot.retrieval import Thesaurus

                assembly.retriever.thesaurus = Thesaurus.load(settings.prompts_dir / "synonyms.yaml")
        else:
            copilot.prompts.reload()

    workshop = Workshop(settings, on_saved=reload_library)
    titles = {d.name: d.title for d in workshop.knowledge_documents()}
    slots = max(1, settings.revise_rounds + 1)

    startup_md = ""
    if copilot.chat is None:
        reasons = [n for n in assembly.startup_notices if n.startswith("The model")]
        reason = reasons[0] if reasons else "no language model is configured or it could not start."
        others = [n for n in assembly.startup_notices if n not in reasons]
        startup_md = MODEL_DOWN.format(reason=md_escape(reason)) + ("\n\n" + _notice_markdown(others) if others else "")
    elif assembly.startup_notices:
        startup_md = _notice_markdown(assembly.startup_notices)

    # ----- services behind the API and the desk ----------------------------------------------------------

    def check_text(text: str, name: str | None, result: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        analysis = (result or {}).get("analysis") or {}
        customer = (name or "").strip() or analysis.get("customer_name")
        return [f.to_dict() for f in copilot.check(text or "", customer, analysis.get("issue") or None)]

    def api_draft(message: str, name: str = "", channel: str = "email", tone: str = "neutral") -> dict[str, Any]:
        """Draft a reply to a customer message: the DraftResult as JSON (an `error` key for unusable input)."""
        try:
            result = copilot.draft(draft_request(message, name, channel, tone))
        except CopilotError as exc:
            return {"error": exc.message, "fix": exc.fix}
        return result.to_dict()

    def api_check(text: str, name: str = "") -> dict[str, Any]:
        """Check a reply: the findings with their spans, and whether any must be fixed before sending."""
        findings = check_text(text, name)
        return {"findings": findings, "blocking": any(f["severity"] == "block" for f in findings)}

    def api_feedback(
        verdict: str, draft: str, final_text: str, reason: str = "", message_id: str = ""
    ) -> dict[str, Any]:
        """Record an agent's verdict on a draft (used_as_is, used_after_edit or rejected with a reason)."""
        if verdict not in VERDICT_LABELS:
            return {"stored": False, "message": f"verdict must be one of {', '.join(VERDICT_LABELS)}"}
        if verdict == "rejected" and not (reason or "").strip():
            return {"stored": False, "message": "a rejection needs a reason"}
        findings = check_text(final_text or draft, None)
        try:
            record = feedback.record(
                cast(Verdict, verdict),
                draft or "",
                final_text or "",
                reason or None,
                findings,
                message_id or uuid.uuid4().hex[:12],
            )
        except CopilotError as exc:
            return {"stored": False, "message": str(exc)}
        return {"stored": True, "record": record}

    def api_workshop_save(user: str, password: str, relpath: str, text: str) -> dict[str, Any]:
        """Save a prompt or rule file (trainer credentials required; the whole library is validated first)."""
        if not authorize(settings, user, password):
            return {
                "saved": False,
                "message": DISABLED_MESSAGE
                if not workshop_enabled(settings)
                else "Wrong trainer user name or password: nothing was changed.",
            }
        try:
            result = workshop.save(relpath, text)
        except CopilotError as exc:
            return {"saved": False, "message": str(exc)}
        return {"saved": result.changed, "message": result.message}

    # ----- desk handlers ---------------------------------------------------------------------------------

    def on_draft(message: str, name: str, channel: str, tone: str) -> Iterator[dict[Any, Any]]:
        message_id = uuid.uuid4().hex[:12]
        request = draft_request(message, name, channel, tone)
        cleared: dict[Any, Any] = {
            banner: "",
            stage: STAGE_TEXT["analyse"],
            draft_box: "",
            highlights: None,
            findings_md: "",
            fix_choice: gr.update(choices=[], value=None),
            choices_state: [],
            fix_note: "",
            citations_md: "",
            revisions_md: "",
            result_state: None,
            message_state: message_id,
            feedback_status: "",
        }
        cleared.update({slot: gr.update(value=None, visible=False) for slot in revision_slots})
        yield cleared
        parts: list[str] = []
        current_round = 0
        stage_text = STAGE_TEXT["analyse"]
        got_token_at = time.monotonic()
        slow_shown = False
        try:
            for event in _events_with_ticks(lambda: copilot.draft_events(request)):
                if isinstance(event, _Tick):
                    waited = time.monotonic() - got_token_at
                    update: dict[Any, Any] = {stage: f"{stage_text} ({event.elapsed:.0f} s)"}
                    if waited > SLOW_AFTER_S and stage_text.startswith(("Writing", "Revising")):
                        slow_shown = True
                        update[banner] = (
                            f"⏳ The model is slow to answer ({waited:.0f} s so far). You can wait, or "
                            "write the reply yourself: the guidance and checker still work."
                        )
                    yield update
                elif isinstance(event, StageEvent):
                    stage_text = STAGE_TEXT[event.stage] + (f" ({md_escape(event.detail)})" if event.detail else "")
                    got_token_at = time.monotonic()
                    yield {stage: stage_text}
                elif isinstance(event, TokenEvent):
                    if event.round != current_round:
                        current_round, parts = event.round, []
                    parts.append(event.text)
                    got_token_at = time.monotonic()
                    update = {draft_box: "".join(parts)}
                    if slow_shown:
                        update[banner], slow_shown = "", False
                    yield update
                elif isinstance(event, DoneEvent):
                    yield finished(event.result)
        except InputError as exc:
            yield {banner: _error_markdown(exc), stage: ""}
        except CopilotError as exc:
            yield {banner: _error_markdown(exc), stage: ""}
        except Exception as exc:  # an agent sees a sentence, the log keeps the traceback
            log.exception("drafting failed")
            yield {
                banner: f"⚠️ Something went wrong while drafting ({md_escape(type(exc).__name__)}). The guidance "
                "and checker still work — write the reply yourself and check it here.",
                stage: "",
            }

    def finished(result: DraftResult) -> dict[Any, Any]:
        data = result.to_dict()
        findings = data["findings"]  # type: ignore[assignment]
        update: dict[Any, Any] = {
            stage: result_summary(data),
            draft_box: result.draft,
            highlights: highlight_value(result.draft, findings),  # type: ignore[arg-type]
            findings_md: findings_markdown(findings, titles) if result.draft else "",  # type: ignore[arg-type]
            fix_choice: gr.update(choices=fix_choices(findings), value=None),  # type: ignore[arg-type]
            choices_state: fix_choices(findings),  # type: ignore[arg-type]
            citations_md: citations_markdown(data["citations"]),  # type: ignore[arg-type]
            revisions_md: revisions_markdown(data),
            result_state: data,
        }
        for number, slot in enumerate(revision_slots):
            if number < len(result.revisions):
                revision = result.revisions[number]
                found = [f.to_dict() for f in revision.findings]
                update[slot] = gr.update(
                    value=highlight_value(revision.draft, found), visible=True, label=f"Round {number} draft"
                )
            else:
                update[slot] = gr.update(value=None, visible=False)
        if result.status == "model_unavailable":
            reason = next((n for n in result.notices if "model" in n.lower()), "it did not answer.")
            others = [n for n in result.notices if n != reason and "write the reply yourself" not in n]
            update[banner] = MODEL_DOWN.format(reason=md_escape(reason)) + (
                "\n\n" + _notice_markdown(others) if others else ""
            )
            update[draft_box] = gr.update(value="", placeholder="Write the reply here; it is checked as you type.")
        else:
            update[banner] = _notice_markdown(result.notices)
        return update

    def on_edit(
        text: str, name: str, result: dict[str, Any] | None, shown: list[list[str]] | None
    ) -> tuple[Any, str, Any, Any]:
        findings = check_text(text, name, result)
        choices = fix_choices(findings)
        # Re-sending unchanged choices would clear a fix the agent picked while this check was in flight.
        same = [list(c) for c in choices] == [list(c) for c in (shown or [])]
        return (
            highlight_value(text or "", findings),
            findings_markdown(findings, titles) if text.strip() else "",
            gr.skip() if same else gr.update(choices=choices, value=None),
            gr.skip() if same else choices,
        )

    def on_apply(text: str, choice: str | None, name: str, result: dict[str, Any] | None) -> tuple[Any, ...]:
        findings = check_text(text, name, result)
        chosen = next((f for f in findings if f"{f['rule']}|{f['start']}|{f['end']}" == choice), None)
        note = ""
        if chosen is None:
            note = "Pick a finding to fix first (the list follows the text as it is now)."
        else:
            text = apply_fix(text, chosen)
            findings = check_text(text, name, result)
            note = f"Applied the suggested phrasing for “{md_escape(chosen['text'])}”. Adjust it to this customer."
        return (
            text,
            highlight_value(text, findings),
            findings_markdown(findings, titles),
            gr.update(choices=fix_choices(findings), value=None),
            note,
            fix_choices(findings),
        )

    def on_feedback(verdict: str, text: str, reason: str, result: dict[str, Any] | None, message_id: str | None) -> str:
        if not result or not (result.get("draft") or (text or "").strip()):
            return "Draft a reply first; feedback is about a draft."
        if verdict == "rejected" and not (reason or "").strip():
            return "Please say in a few words why the draft was not usable: trainers read these reasons."
        try:
            feedback.record(
                cast(Verdict, verdict),
                str(result.get("draft") or ""),
                text or "",
                reason if verdict == "rejected" else (reason or None),
                list(result.get("findings") or []),
                message_id or uuid.uuid4().hex[:12],
            )
        except CopilotError as exc:
            return _error_markdown(exc)
        except OSError as exc:
            return f"⚠️ Could not store the feedback ({md_escape(exc.strerror or exc)}). Tell your administrator."
        left = sum(1 for f in check_text(text, None, result) if f["severity"] == "block")
        extra = f" Note: the sent text still had {left} finding(s) marked “must fix”." if left else ""
        return f"Thanks — recorded “{VERDICT_LABELS[verdict]}”.{extra}"

    # ----- workshop handlers (each re-checks the credentials: hiding components is not protection) --------

    def need_login(user: str, password: str) -> str | None:
        if not workshop_enabled(settings):
            return DISABLED_MESSAGE
        if not authorize(settings, user, password):
            return "⛔ Log in with the trainer user name and password first: nothing was changed."
        return None

    def on_login(user: str, password: str) -> tuple[Any, str]:
        problem = need_login(user, password)
        if problem:
            return gr.update(visible=False), problem
        return gr.update(visible=True), f"Logged in as {md_escape(user)}."

    def on_pick(user: str, password: str, relpath: str) -> tuple[str, str, Any, str]:
        if need_login(user, password) or not relpath:
            return "", "", gr.update(choices=[], value=None), ""
        versions = workshop.history(relpath)
        return workshop.read(relpath), "", gr.update(choices=versions, value=versions[0] if versions else None), ""

    def on_save(user: str, password: str, relpath: str, text: str) -> tuple[str, Any]:
        problem = need_login(user, password)
        if problem:
            return problem, gr.update()
        if not relpath:
            return "Choose a file first.", gr.update()
        try:
            result = workshop.save(relpath, text or "")
        except DataFileError as exc:
            return (
                f"⛔ **Not saved** — the file on disk is unchanged.\n\n{_refusal_markdown(exc)}",
                gr.update(),
            )
        except CopilotError as exc:
            return _error_markdown(exc), gr.update()
        versions = workshop.history(relpath)
        return f"✅ {md_escape(result.message)}", gr.update(choices=versions, value=versions[0] if versions else None)

    def on_preview(user: str, password: str, relpath: str, text: str) -> str:
        problem = need_login(user, password)
        if problem:
            return problem
        if not relpath or not relpath.endswith(".md") or "/" in relpath:
            return "Preview is for prompt files (draft.md, revise.md)."
        try:
            return workshop.preview(relpath[:-3], text or "")
        except CopilotError as exc:
            return str(exc)

    def on_diff(user: str, password: str, relpath: str, version: str | None) -> str:
        if need_login(user, password) or not relpath or not version:
            return ""
        try:
            return workshop.diff(relpath, version)
        except CopilotError as exc:
            return str(exc)

    def on_restore(user: str, password: str, relpath: str, version: str | None) -> tuple[str, Any, Any]:
        problem = need_login(user, password)
        if problem:
            return problem, gr.update(), gr.update()
        if not relpath or not version:
            return "Choose a file and a version first.", gr.update(), gr.update()
        try:
            result = workshop.restore(relpath, version)
        except CopilotError as exc:
            return (
                f"⛔ **Not restored** — the file on disk is unchanged.\n\n{_refusal_markdown(exc)}",
                gr.update(),
                gr.update(),
            )
        versions = workshop.history(relpath)
        return (
            f"✅ {md_escape(result.message)}",
            workshop.read(relpath),
            gr.update(choices=versions, value=versions[0] if versions else None),
        )

    def on_reindex(user: str, password: str) -> str:
        problem = need_login(user, password)
        if problem:
            return problem
        try:
            report = assembly.reindex()
        except CopilotError as exc:
            return _error_markdown(exc)
        return f"✅ {md_escape(report.summary())}" + (
            "\n\n" + _notice_markdown(report.problems) if report.problems else ""
        )

    def on_evals(user: str, password: str) -> tuple[str, Any]:
        problem = need_login(user, password)
        if problem:
            return problem, gr.update(value=None)
        # The suites that need no model; retrieval reuses the running index rather than building another.
        suites = ["checker", "retrieval"] if assembly.retriever is not None else ["checker"]
        try:
            report = run_suites(settings, suites, assembly=assembly, progress=False)
            folder = _report_folder(settings.reports_dir, report)
            paths = write_report(report, folder)
        except CopilotError as exc:
            return _error_markdown(exc), gr.update(value=None)
        except OSError as exc:
            return f"⚠️ Could not write the eval report ({md_escape(exc.strerror or exc)}).", gr.update(value=None)
        charts = [path for path in paths if path.suffix == ".png"]
        text = _demote_headings(render_markdown(report))
        if "retrieval" not in suites:
            text = "*The retrieval suite needs the guidance index, which is unavailable in this session.*\n\n" + text
        text += f"\n\nReport and charts written to {md_escape(folder)}."
        return text, _gallery(charts)

    def on_compare(user: str, password: str, relpath: str, text: str) -> tuple[str, Any]:
        problem = need_login(user, password)
        if problem:
            return problem, gr.update(value="", visible=False)
        if not relpath:
            return "Choose a file first.", gr.update(value="", visible=False)
        try:
            comparison = workshop.compare(relpath, text or "", assembly)
        except DataFileError as exc:
            return (
                f"⛔ **Not compared** — the edit is not valid, and nothing was saved.\n\n{_refusal_markdown(exc)}",
                gr.update(value="", visible=False),
            )
        except CopilotError as exc:
            return _error_markdown(exc), gr.update(value="", visible=False)
        return comparison_markdown(comparison), gr.update(
            value=comparison.preview_diff, visible=bool(comparison.preview_diff)
        )

    def on_feedback_summary(user: str, password: str) -> str:
        problem = need_login(user, password)
        return problem or summary_markdown(feedback.summary())

    # ----- layout ----------------------------------------------------------------------------------------

    with gr.Blocks(title="Empathetic reply copilot", analytics_enabled=False) as demo:
        gr.Markdown("## Empathetic reply copilot")
        gr.Markdown(startup_md, elem_id="startup-banner", visible=bool(startup_md), latex_delimiters=[])
        with gr.Tabs():
            with gr.Tab("Agent's desk", id="desk"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        message_box = gr.Textbox(
                            label="Customer message",
                            lines=9,
                            max_lines=20,
                            elem_id="message",
                            placeholder="Paste the customer's message here.",
                        )
                        with gr.Row():
                            name_box = gr.Textbox(label="Customer name (optional)", elem_id="name", scale=2)
                            channel = gr.Radio(["email", "chat"], value="email", label="Channel", elem_id="channel")
                        tone = gr.Radio(
                            ["neutral", "warmer", "more formal", "shorter"],
                            value="neutral",
                            label="Tone",
                            elem_id="tone",
                        )
                        draft_button = gr.Button("Draft a reply", variant="primary", elem_id="draft-button")
                        with gr.Accordion("Guidance used", open=True, elem_id="citations-accordion"):
                            citations_md = gr.Markdown(elem_id="citations", latex_delimiters=[])
                    with gr.Column(scale=3):
                        banner = gr.Markdown(elem_id="banner", latex_delimiters=[])
                        stage = gr.Markdown(elem_id="stage", latex_delimiters=[])
                        draft_box = gr.Textbox(
                            label="Reply draft (edit freely; it is re-checked as you type)",
                            lines=10,
                            max_lines=30,
                            interactive=True,
                            buttons=["copy"],
                            elem_id="draft",
                        )
                        highlights = gr.HighlightedText(
                            label="Findings on the text",
                            color_map=COLORS,
                            show_legend=True,
                            combine_adjacent=False,
                            elem_id="highlights",
                        )
                        with gr.Row(equal_height=True):
                            fix_choice = gr.Dropdown(
                                choices=[], label="Suggested fix", scale=4, elem_id="fix-choice", interactive=True
                            )
                            apply_button = gr.Button("Apply fix", scale=1, elem_id="apply-fix")
                        fix_note = gr.Markdown(elem_id="fix-note", latex_delimiters=[])
                        findings_md = gr.Markdown(
                            elem_id="findings", elem_classes=["finding-list"], latex_delimiters=[]
                        )
                        with gr.Accordion("Earlier rounds", open=False, elem_id="revisions-accordion"):
                            revisions_md = gr.Markdown(elem_id="revisions", latex_delimiters=[])
                            revision_slots = [
                                gr.HighlightedText(
                                    label=f"Round {i} draft", color_map=COLORS, visible=False, elem_id=f"revision-{i}"
                                )
                                for i in range(slots)
                            ]
                        with gr.Group():
                            reason_box = gr.Textbox(label="Feedback: why (required when rejecting)", elem_id="reason")
                            with gr.Row():
                                used_button = gr.Button("Used as-is", elem_id="fb-used")
                                edited_button = gr.Button("Used after editing", elem_id="fb-edited")
                                rejected_button = gr.Button("Rejected", variant="stop", elem_id="fb-rejected")
                        feedback_status = gr.Markdown(elem_id="feedback-status", latex_delimiters=[])
                result_state = gr.State(None)
                message_state = gr.State(None)
                choices_state = gr.State([])

            with gr.Tab("Trainer's workshop", id="workshop"):
                if not workshop_enabled(settings):
                    gr.Markdown(md_escape(DISABLED_MESSAGE), elem_id="workshop-disabled")
                else:
                    with gr.Row():
                        ws_user = gr.Textbox(label="Trainer user name", elem_id="ws-user")
                        ws_password = gr.Textbox(label="Password", type="password", elem_id="ws-password")
                        login_button = gr.Button("Log in", elem_id="ws-login")
                    login_status = gr.Markdown(elem_id="ws-login-status", latex_delimiters=[])
                    with gr.Column(visible=False, elem_id="ws-area") as ws_area:
                        with gr.Row(equal_height=False):
                            with gr.Column(scale=3):
                                ws_file = gr.Dropdown(workshop.files(), value=None, label="File", elem_id="ws-file")
                                ws_editor = gr.Textbox(label="Text", lines=22, max_lines=40, elem_id="ws-editor")
                                with gr.Row():
                                    save_button = gr.Button("Save", variant="primary", elem_id="ws-save")
                                    compare_button = gr.Button("Compare with the saved version", elem_id="ws-compare")
                                    preview_button = gr.Button("Preview prompt", elem_id="ws-preview-button")
                            with gr.Column(scale=2):
                                ws_status = gr.Markdown(elem_id="ws-status", latex_delimiters=[])
                                ws_compare = gr.Markdown(elem_id="ws-compare-report", latex_delimiters=[])
                                ws_compare_diff = gr.Code(
                                    label="What the model would receive: saved → edited (sample message)",
                                    language=None,
                                    interactive=False,
                                    visible=False,
                                    elem_id="ws-compare-diff",
                                )
                                ws_preview = gr.Textbox(
                                    label="What the model receives (sample message)",
                                    lines=12,
                                    interactive=False,
                                    elem_id="ws-preview",
                                )
                                with gr.Accordion("History", open=False):
                                    ws_versions = gr.Dropdown([], label="Earlier versions", elem_id="ws-versions")
                                    with gr.Row():
                                        diff_button = gr.Button("Show diff", elem_id="ws-diff-button")
                                        restore_button = gr.Button("Restore this version", elem_id="ws-restore")
                                    ws_diff = gr.Code(
                                        label="Changes since that version",
                                        language=None,
                                        interactive=False,
                                        elem_id="ws-diff",
                                    )
                        with gr.Accordion("Knowledge documents", open=False):
                            gr.Markdown(
                                "\n".join(
                                    f"- **{md_escape(d.title)}** ({md_escape(d.name)}, {d.size // 1024} KB)"
                                    for d in workshop.knowledge_documents()
                                )
                                or "No documents in the knowledge folder.",
                                latex_delimiters=[],
                            )
                            reindex_button = gr.Button("Re-index", elem_id="ws-reindex")
                            reindex_md = gr.Markdown(elem_id="ws-reindex-status", latex_delimiters=[])
                        with gr.Accordion("Evals", open=False, elem_id="ws-evals-accordion"):
                            evals_button = gr.Button("Run checker and retrieval evals", elem_id="ws-evals")
                            evals_charts = gr.Gallery(
                                label="Charts",
                                format="png",
                                columns=2,
                                interactive=False,
                                object_fit="contain",
                                elem_id="ws-evals-charts",
                            )
                            evals_md = gr.Markdown(elem_id="ws-evals-report", latex_delimiters=[])
                        with gr.Accordion("Agents' feedback", open=False):
                            feedback_button = gr.Button("Refresh summary", elem_id="ws-feedback")
                            feedback_md = gr.Markdown(elem_id="ws-feedback-summary", latex_delimiters=[])

        # ----- wiring: UI events stay off the public API; the API is the gr.api endpoints below ----------
        private: dict[str, Any] = {"api_visibility": "private"}
        desk_outputs = [
            banner,
            stage,
            draft_box,
            highlights,
            findings_md,
            fix_choice,
            citations_md,
            revisions_md,
            result_state,
            message_state,
            feedback_status,
            choices_state,
            fix_note,
            *revision_slots,
        ]
        draft_inputs = [message_box, name_box, channel, tone]
        draft_button.click(on_draft, draft_inputs, desk_outputs, show_progress="hidden", **private)
        # Gradio fires `input` on key presses (typing, Ctrl+V); `blur` catches a mouse paste when the agent moves on.
        for edit_event in (draft_box.input, draft_box.blur):
            edit_event(
                on_edit,
                [draft_box, name_box, result_state, choices_state],
                [highlights, findings_md, fix_choice, choices_state],
                trigger_mode="always_last",
                show_progress="hidden",
                concurrency_limit=None,
                **private,
            )
        apply_button.click(
            on_apply,
            [draft_box, fix_choice, name_box, result_state],
            [draft_box, highlights, findings_md, fix_choice, fix_note, choices_state],
            concurrency_limit=None,
            show_progress="hidden",
            **private,
        )
        for button, verdict in (
            (used_button, "used_as_is"),
            (edited_button, "used_after_edit"),
            (rejected_button, "rejected"),
        ):
            button.click(
                _bind(on_feedback, verdict),
                [draft_box, reason_box, result_state, message_state],
                [feedback_status],
                show_progress="hidden",
                **private,
            )
        if workshop_enabled(settings):
            creds = [ws_user, ws_password]
            login_button.click(on_login, creds, [ws_area, login_status], **private)
            ws_password.submit(on_login, creds, [ws_area, login_status], **private)
            ws_file.change(on_pick, [*creds, ws_file], [ws_editor, ws_status, ws_versions, ws_diff], **private)
            # A comparison belongs to the file it was made for: clear it when another file is chosen.
            ws_file.change(
                lambda: ("", gr.update(value="", visible=False)), None, [ws_compare, ws_compare_diff], **private
            )
            save_button.click(on_save, [*creds, ws_file, ws_editor], [ws_status, ws_versions], **private)
            compare_button.click(on_compare, [*creds, ws_file, ws_editor], [ws_compare, ws_compare_diff], **private)
            preview_button.click(on_preview, [*creds, ws_file, ws_editor], [ws_preview], **private)
            diff_button.click(on_diff, [*creds, ws_file, ws_versions], [ws_diff], **private)
            restore_button.click(
                on_restore, [*creds, ws_file, ws_versions], [ws_status, ws_editor, ws_versions], **private
            )
            reindex_button.click(on_reindex, creds, [reindex_md], **private)
            evals_button.click(on_evals, creds, [evals_md, evals_charts], **private)
            feedback_button.click(on_feedback_summary, creds, [feedback_md], **private)

        gr.api(api_draft, api_name="draft")
        gr.api(api_check, api_name="check", concurrency_limit=None)
        gr.api(api_feedback, api_name="feedback", concurrency_limit=None)
        gr.api(api_workshop_save, api_name="workshop_save")
    return demo


def _bind(handler: Callable[..., str], verdict: str) -> Callable[..., str]:
    def bound(text: str, reason: str, result: dict[str, Any] | None, message_id: str | None) -> str:
        return handler(verdict, text, reason, result, message_id)

    return bound


def comparison_markdown(comparison: Comparison) -> str:
    """The verdict line, then the side-by-side table of the edited and saved versions (or why none was run)."""
    head = f"**{md_escape(comparison.relpath)}** — {md_escape(comparison.verdict)}"
    if not comparison.ran:
        return f"{head}\n\n{md_escape(comparison.note)}\n\n*Nothing was saved.*"
    moved = comparison.changes()
    changed = (
        "Changed: " + ", ".join(f"{md_escape(m)} {before:.3f} → {after:.3f}" for _, m, before, after in moved)
        if moved
        else "No metric changed."
    )
    # render_markdown is our own generated text over the eval sets, so it is shown as Markdown, not escaped.
    return f"{head} *Nothing was saved.*\n\n{changed}\n\n{_demote_headings(comparison.markdown())}"


def _demote_headings(markdown: str) -> str:
    """A report's headings two levels down, so it sits inside a panel of the app rather than shouting over it."""
    return re.sub(r"^(#{1,4}) ", r"##\1 ", markdown, flags=re.MULTILINE)


def _report_folder(reports_dir: Path, report: Report) -> Path:
    """A new folder named after the run's start time (a suffix when two runs start in the same second)."""
    base = reports_dir / report.started.replace(":", "")
    folder, number = base, 1
    while folder.exists():
        number += 1
        folder = base.with_name(f"{base.name}-{number}")
    return folder


def _gallery(charts: list[Path]) -> list[tuple[Any, str]]:
    """The chart PNGs as images with captions (handed over as pixels, so the reports folder need not be served)."""
    from PIL import Image

    images: list[tuple[Any, str]] = []
    for path in charts:
        with Image.open(path) as image:
            image.load()
            images.append((image.copy(), path.stem))
    return images


def launch(demo: gr.Blocks, host: str, port: int, *, prevent_thread_lock: bool = True, concurrency: int = 1) -> str:
    """Start serving the app; returns its local URL.

    Drafts queue behind `concurrency` workers: 1 for the embedded model, which answers one request at a time
    anyway; more for a hosted endpoint that serves many at once.
    """
    demo.queue(default_concurrency_limit=concurrency)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=prevent_thread_lock,
        quiet=True,
        show_error=False,
        css=CSS,
        footer_links=["api"],
        ssr_mode=False,
        inbrowser=False,
    )
    return url or f"http://{host}:{port}/"


def _build_with_fallbacks(settings: Settings) -> Assembly:
    """The full copilot if possible; without the model, then without the index, saying why each time."""
    try:
        return build_copilot(settings, progress=True)
    except DataFileError:
        raise
    except Exception as exc:  # the model failing to start must not stop the guidance and checker
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"The model could not start: {reason}", flush=True)
        print("Serving the guidance and the checker without drafting.", flush=True)
        try:
            assembly = build_copilot(settings, with_model=False, progress=True)
        except DataFileError:
            raise
        except Exception as index_exc:
            print(f"The guidance index is unavailable too: {index_exc}", flush=True)
            assembly = build_copilot(settings, with_model=False, with_index=False)
            assembly.startup_notices.append(f"Guidance unavailable: {index_exc}")
        assembly.startup_notices.insert(0, f"The model could not start: {reason}")
        return assembly


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(settings: Settings) -> int:
    """Build the copilot, serve the web app on settings.host:port until interrupted, then stop what was started."""
    print("Starting the copilot: loading the checker, the prompts and the guidance index", flush=True)
    if settings.uses_embedded_model:
        print(
            "and the embedded model (on a fresh machine: the index is built and the model assembled first, "
            "which can take a few minutes).",
            flush=True,
        )
    started = time.monotonic()
    try:
        assembly = _build_with_fallbacks(settings)
    except CopilotError as exc:
        print(f"Cannot start: {exc}", flush=True)
        return 2
    for notice in assembly.startup_notices:
        print(f"  {notice}", flush=True)
    if threading.current_thread() is threading.main_thread():
        # A service manager stops the app with SIGTERM; treat it like Ctrl+C so the model server is stopped too.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo = build_ui(assembly)
        url = launch(demo, settings.host, settings.port, concurrency=1 if assembly.server is not None else 8)
        print(f"Ready in {time.monotonic() - started:.0f} s. Open {url} in a browser (Ctrl+C stops it).", flush=True)
        demo.block_thread()
    except OSError as exc:
        print(f"Cannot serve on {settings.host}:{settings.port}: {exc}", flush=True)
        return 2
    finally:
        assembly.close()
    return 0

"""What a checker rule file may say: one pydantic model per kind of rule, validated when the rules load.

Kept apart from copilot/checker.py, which holds the rule kinds' code: that module is compiled to C when the package
is built (see setup.py), and pydantic's models must stay plain Python classes.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Category = Literal["blame", "defensiveness", "empty_apology", "coaching", "commitment"]
Severity = Literal["block", "warn", "hint"]
CATEGORIES: tuple[str, ...] = get_args(Category)
SEVERITIES: tuple[str, ...] = get_args(Severity)

# Every model forbids unknown keys so a typo is reported, not silently ignored.


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ExampleCase(BaseModel):
    """An example reply with the conversation context it needs (e.g. the customer's name)."""

    model_config = ConfigDict(extra="forbid")
    text: NonEmpty
    customer_name: str | None = None
    issue: str | None = None


Example = NonEmpty | ExampleCase


class Examples(BaseModel):
    """Replies the rule must flag and replies it must leave alone; they double as tests."""

    model_config = ConfigDict(extra="forbid")
    flag: list[Example] = Field(min_length=2)
    pass_: list[Example] = Field(min_length=2, alias="pass")


class RuleSpec(BaseModel):
    """Keys every rule has, whatever its kind."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    kind: str
    category: Category
    severity: Severity | None = None
    message: NonEmpty
    suggestion: NonEmpty
    source: Annotated[str, StringConstraints(pattern=r"^knowledge/[^/]+\.md$")]
    examples: Examples


class PhraseSpec(RuleSpec):
    """Regex patterns matched inside one sentence, cancelled by ``unless`` patterns nearby."""

    patterns: list[NonEmpty] = Field(min_length=1)
    unless: list[NonEmpty] = []
    unless_before: list[NonEmpty] = []
    unless_next: list[NonEmpty] = []


class ApologySpec(RuleSpec):
    """Finds apologies (``anchor``) and flags those whose continuation matches one of ``patterns``."""

    anchor: NonEmpty
    skip_before: list[NonEmpty] = []
    patterns: list[NonEmpty] = Field(min_length=1)
    unless: list[NonEmpty] = []
    # Cancels a match when the text just before the apology (the previous sentence and the current one up to the
    # apology word) names the problem, so "... that should never have happened, and I apologise for it" passes.
    unless_previous: list[NonEmpty] = []


class MissingSpec(RuleSpec):
    """Hints when a reply of at least ``min_sentences`` sentences contains none of ``patterns``."""

    patterns: list[NonEmpty] = Field(min_length=1)
    min_sentences: int = Field(default=2, ge=1)
    point_at: Literal["first", "last"] = "first"


class NameUnusedSpec(RuleSpec):
    """Hints when the customer's name is known but the reply never uses it."""


class ActionCountSpec(RuleSpec):
    """Counts first-person commitments (``patterns``) and hints outside ``min``..``max``."""

    patterns: list[NonEmpty] = Field(min_length=1)
    min: int = Field(default=1, ge=0)
    max: int = Field(default=3, ge=1)
    min_sentences: int = Field(default=2, ge=1)


class LongSentenceSpec(RuleSpec):
    """Hints at sentences longer than ``max_words`` words."""

    max_words: int = Field(default=35, ge=5)


class ClassifierSpec(RuleSpec):
    """Flags sentences a trained model (weights in ``model``, a JSON file beside the rules) scores above ``threshold``.

    Catches phrasings no pattern anticipated; patterns stay the precise first line. Retrain the weights with
    ``copilot train`` after adding labelled examples to evals/.
    """

    model: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+\.json$")]
    threshold: float = Field(default=0.6, gt=0.5, lt=1.0)
    # A sentence matching one of these is never flagged by the model (e.g. the agent owning the fix).
    unless: list[NonEmpty] = []


KINDS: dict[str, type[RuleSpec]] = {
    "phrase": PhraseSpec,
    "apology": ApologySpec,
    "missing": MissingSpec,
    "name_unused": NameUnusedSpec,
    "action_count": ActionCountSpec,
    "long_sentence": LongSentenceSpec,
    "classifier": ClassifierSpec,
}

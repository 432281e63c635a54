"""Property tests: whatever is pasted, the checker and the analysis neither crash nor misplace spans."""

from __future__ import annotations

from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.analysis import CUSTOMER_TYPES, analyse
from copilot.checker import CheckContext, Checker
from copilot.errors import InputError
from copilot.pipeline import prepare_message
from copilot.privacy import Masker

CHECKER = Checker.load(ROOT / "prompts" / "checker")
PHRASES = [
    "I'm sorry for any inconvenience",
    "you should have",
    "calm down",
    "Our policy clearly states",
    "No.",
    "that's not my department",
    "I'll call you Friday",
    "“sorry if”",
    "Dana,",
    "\n",
    "!!!",
    "<b>",
    "😡",
    "ü",
]
texts = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(st.sampled_from(PHRASES), st.text(max_size=30)), max_size=25).map(" ".join),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
)
fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(texts, st.one_of(st.none(), st.sampled_from(["Dana", "", "Ø", "a" * 50])))
def test_checker_never_crashes_and_spans_stay_inside_the_text(text: str, name: str | None) -> None:
    for finding in CHECKER.check(text, CheckContext(customer_name=name)):
        assert 0 <= finding.start <= finding.end <= len(text)
        assert text[finding.start : finding.end] == finding.text
        assert finding.message and finding.source


@fuzz
@given(texts)
def test_analysis_never_crashes(text: str) -> None:
    result = analyse(text)
    assert result.customer_type in CUSTOMER_TYPES and result.customer_type == result.types[0]
    assert isinstance(result.language, str) and result.language


@fuzz
@given(texts)
def test_prepare_message_refuses_or_returns_bounded_clean_text(text: str) -> None:
    try:
        cleaned, _ = prepare_message(text, 200)
    except InputError as error:
        assert error.fix
        return
    assert 0 < len(cleaned) <= 200 and "\x00" not in cleaned


@fuzz
@given(st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=300))
def test_masking_round_trips(text: str) -> None:
    masker = Masker()
    assert masker.restore(masker.mask(text)) == text

"""The learned sentence model: plain-Python inference equals scikit-learn's, broken model files are named, and the
trainer spreads reply-level labels onto the right sentences."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from copilot.checker import BLOCKING_CATEGORIES, Checker, blocking
from copilot.classifier import BLIND_SETS, FORMAT, ModelFileError, SentenceModel, features, silent, to_data
from copilot.errors import DataFileError

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "prompts" / "checker"
SENTENCES = [
    ("you should have read the manual before you plugged it in", {"blame"}),
    ("the courier dropped it, take it up with them", {"blame", "defensiveness"}),
    ("our policy clearly states no refunds", {"defensiveness"}),
    ("there's nothing more i can do", {"defensiveness"}),
    ("sorry for any inconvenience", {"empty_apology"}),
    ("we apologise for the trouble", {"empty_apology"}),
    ("i'm sorry your parcel arrived broken", set()),
    ("i've sent a replacement by express today", set()),
    ("you should receive the refund by friday", set()),
    ("i'll call you on monday to check it arrived", set()),
]


def _trainer():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("trainer", ROOT / "scripts" / "train_checker_classifier.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_features_share_evidence_across_inflections() -> None:
    refund = set(features("refund", chars=(3, 5)))
    refunding = set(features("refunding", chars=(3, 5)))
    assert "w:refund" in refund and "w:refunding" in refunding
    assert {g for g in refund & refunding if g.startswith("c:")}, "character n-grams should overlap"
    assert "w:didn't" in features("You didn\u2019t read it")  # curly apostrophe, contraction kept whole
    assert "w:you didn't read" in features("you didn't read it")


def test_inference_matches_scikit_learn() -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    assert sklearn
    texts = [t for t, _ in SENTENCES]
    vectorizer = TfidfVectorizer(analyzer=lambda t: features(t, (1, 3), (3, 5)), sublinear_tf=True, lowercase=False)
    matrix = vectorizer.fit_transform(texts)
    vocab = vectorizer.get_feature_names_out()
    columns = [list(vectorizer.idf_)]
    intercepts = []
    fitted = {}
    for category in BLOCKING_CATEGORIES:
        model = LogisticRegression(C=4.0, max_iter=2000).fit(matrix, [category in c for _, c in SENTENCES])
        fitted[category] = model
        columns.append(list(model.coef_[0]))
        intercepts.append(float(model.intercept_[0]))
    terms = {str(t): [float(col[i]) for col in columns] for i, t in enumerate(vocab)}
    ours = SentenceModel(to_data(BLOCKING_CATEGORIES, terms, intercepts, words=(1, 3), chars=(3, 5)))
    unseen = ["you should have read the label", "sorry for the trouble", "nothing i can do", "hello there"]
    for text in texts + unseen:
        row = vectorizer.transform([text])
        for category in BLOCKING_CATEGORIES:
            expected = fitted[category].predict_proba(row)[0][1]
            assert ours.probability(text, category) == pytest.approx(expected, abs=1e-9), (text, category)


def test_model_file_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    rules = tmp_path / "prompts" / "checker"
    shutil.copytree(RULES, rules)
    (tmp_path / "knowledge").symlink_to(ROOT / "knowledge")
    model = rules / "classifier.json"
    for broken, expect in (
        ("{not json", "not a valid classifier"),
        (json.dumps({"format": "copilot-tfidf-logreg-1"}), FORMAT),
        (json.dumps({"format": FORMAT, "features": {"words": [1, 2], "chars": [0, 0]}}), "malformed"),
    ):
        model.write_text(broken, encoding="utf-8")
        with pytest.raises(DataFileError) as err:
            Checker.load(rules)
        message = str(err.value)
        assert "zz_classifier.yaml:" in message and "classifier.json" in message and expect in message
        assert "python scripts/train_checker_classifier.py" in message
    model.unlink()
    with pytest.raises(DataFileError, match="not found beside the rules"):
        Checker.load(rules)


def test_wrong_row_width_is_refused() -> None:
    data = to_data(BLOCKING_CATEGORIES, {"w:sorry": [1.0, 0.5]}, [0.0, 0.0, 0.0], words=(1, 1), chars=(0, 0))
    with pytest.raises(ModelFileError, match="expected idf \\+ 3 weights"):
        SentenceModel(data)


def test_reply_labels_go_to_the_sentence_that_carries_them() -> None:
    trainer = _trainer()
    rules = Checker.load(RULES, model=silent(BLOCKING_CATEGORIES))
    items = [{"text": t, "labels": sorted(c)} for t, c in SENTENCES]
    items.append(
        {"text": "Thanks for writing in. You should have kept the receipt.", "labels": ["blame"]},
    )
    examples = dict(trainer.sentence_examples(items, rules, 4.0, 1))
    assert examples["you should have kept the receipt."] == {"blame"}
    assert examples["thanks for writing in."] == set()


def test_shipped_model_is_current_and_catches_unseen_phrasings() -> None:
    data = json.loads((RULES / "classifier.json").read_text(encoding="utf-8"))
    assert data["format"] == FORMAT
    trained_on = set(data["trained_on"])
    assert not trained_on & set(BLIND_SETS), "the blind holdouts must never be trained on"
    on_disk = {p.name for p in (ROOT / "evals").glob("checker*.jsonl")} - set(BLIND_SETS)
    assert trained_on == on_disk, "retrain: python scripts/train_checker_classifier.py"
    checker = Checker.load(RULES)
    # Phrasings written for this test, in none of the labelled sets.
    assert {f.category for f in blocking(checker.check("Frankly the wobble is down to how you assembled the legs."))}
    assert not blocking(checker.check("I've moved your delivery to Saturday morning, as you asked."))


def test_a_retrained_model_is_picked_up_on_the_next_load(tmp_path: Path) -> None:
    rules = tmp_path / "prompts" / "checker"
    shutil.copytree(RULES, rules)
    (tmp_path / "knowledge").symlink_to(ROOT / "knowledge")
    text = "Frankly the wobble is down to how you assembled the legs."
    before = {f.rule for f in Checker.load(rules).check(text)}
    assert any(r.startswith("learned.") for r in before), before
    nothing = to_data(BLOCKING_CATEGORIES, {}, [-30.0] * 3, words=(1, 1), chars=(0, 0))
    (rules / "classifier.json").write_text(json.dumps(nothing), encoding="utf-8")
    after = {f.rule for f in Checker.load(rules).check(text)}
    assert not any(r.startswith("learned.") for r in after), after

"""The learned sentence model: plain-Python inference equals scikit-learn's, broken model files are named, and the
trainer spreads reply-level labels onto the right sentences."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from copilot.checker import BLOCKING_CATEGORIES, Checker, blocking
from copilot.classifier import BLIND_SETS, FORMAT, ModelFileError, SentenceModel, features, silent, to_data
from copilot.errors import DataFileError
from copilot.training import Options, sentence_examples

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


def test_features_share_evidence_across_inflections() -> None:
    refund = set(features("refund", chars=(3, 5)))
    refunding = set(features("refunding", chars=(3, 5)))
    assert "w:refund" in refund and "w:refunding" in refunding
    assert {g for g in refund & refunding if g.startswith("c:")}, "character n-grams should overlap"
    assert "w:didn't" in features("You didn\u2019t read it")  # curly apostrophe, contraction kept whole
    assert "w:you didn't read" in features("you didn't read it")


# (0, 0): word n-grams only, the shipped model's features, looked up without the "w:" prefix (the fast path).
@pytest.mark.parametrize("chars", [(3, 5), (0, 0)])
def test_inference_matches_scikit_learn(chars: tuple[int, int]) -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    assert sklearn
    texts = [t for t, _ in SENTENCES]
    vectorizer = TfidfVectorizer(analyzer=lambda t: features(t, (1, 3), chars), sublinear_tf=True, lowercase=False)
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
    ours = SentenceModel(to_data(BLOCKING_CATEGORIES, terms, intercepts, words=(1, 3), chars=chars))
    unseen = ["you should have read the label", "sorry for the trouble", "nothing i can do", "hello there"]
    # repeated words and phrases take the tf = 1 + log(count) branch
    unseen += ["you should have, you should have read the the label", "sorry sorry sorry for the trouble", "no no no"]
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
        assert "copilot train" in message
    model.unlink()
    with pytest.raises(DataFileError, match="not found beside the rules"):
        Checker.load(rules)


def test_wrong_row_width_is_refused() -> None:
    data = to_data(BLOCKING_CATEGORIES, {"w:sorry": [1.0, 0.5]}, [0.0, 0.0, 0.0], words=(1, 1), chars=(0, 0))
    with pytest.raises(ModelFileError, match="expected idf \\+ 3 weights"):
        SentenceModel(data)


def test_reply_labels_go_to_the_sentence_that_carries_them() -> None:
    rules = Checker.load(RULES, model=silent(BLOCKING_CATEGORIES))
    items = [{"text": t, "labels": sorted(c)} for t, c in SENTENCES]
    items.append(
        {"text": "Thanks for writing in. You should have kept the receipt.", "labels": ["blame"]},
    )
    examples = dict(sentence_examples(items, rules, Options(min_df=1)))
    assert examples["you should have kept the receipt."] == {"blame"}
    assert examples["thanks for writing in."] == set()


def test_shipped_model_is_current_and_catches_unseen_phrasings() -> None:
    data = json.loads((RULES / "classifier.json").read_text(encoding="utf-8"))
    assert data["format"] == FORMAT
    trained_on = set(data["trained_on"])
    assert not trained_on & set(BLIND_SETS), "the blind holdouts must never be trained on"
    on_disk = {p.name for p in (ROOT / "evals").glob("checker*.jsonl")} - set(BLIND_SETS)
    assert trained_on == on_disk, "retrain: copilot train"
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


def _small_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the prompts with a small labelled set of its own, as the `copilot` command sees it."""
    shutil.copytree(RULES, tmp_path / "prompts" / "checker")
    (tmp_path / "knowledge").symlink_to(ROOT / "knowledge")
    evals = tmp_path / "evals"
    evals.mkdir()
    lines = [
        json.dumps({"id": f"t{i}", "text": t, "labels": sorted(c), "note": ""}) for i, (t, c) in enumerate(SENTENCES)
    ]
    (evals / "checker_small.jsonl").write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    monkeypatch.setenv("COPILOT_PROMPTS_DIR", str(tmp_path / "prompts"))
    monkeypatch.setenv("COPILOT_EVALS_DIR", str(evals))
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_copilot_train_writes_a_model_the_checker_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.cli import main

    project = _small_project(tmp_path, monkeypatch)
    model = project / "prompts" / "checker" / "classifier.json"
    before = model.read_bytes()
    assert main(["train", "--min-df", "1"]) == 0
    data = json.loads(model.read_bytes())
    assert data["trained_on"] == ["checker_small.jsonl"] and data["replies"] == 3 * len(SENTENCES)
    assert model.read_bytes() != before and not list(model.parent.glob(".classifier.json.*"))
    learned = SentenceModel.load(model)
    assert learned.probability("we apologise for the trouble.", "empty_apology") > 0.5
    assert learned.probability("i've sent a replacement by express today", "empty_apology") < 0.5
    Checker.load(project / "prompts" / "checker")  # and the rules load with it


def test_copilot_train_cross_validates_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from copilot.cli import main

    project = _small_project(tmp_path, monkeypatch)
    model = project / "prompts" / "checker" / "classifier.json"
    before = model.read_bytes()
    assert main(["train", "--cross-validate", "--folds", "3", "--min-df", "1", "--thresholds", "0.5", "0.7"]) == 0
    out = capsys.readouterr().out
    assert out.count("fold ") == 3 and "pooled, threshold 0.50" in out and "pooled, threshold 0.70" in out
    assert model.read_bytes() == before


def test_a_broken_labelled_line_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.cli import main

    project = _small_project(tmp_path, monkeypatch)
    broken = project / "evals" / "checker_small.jsonl"
    broken.write_text(broken.read_text(encoding="utf-8") + '{"text": "oops", "labels": ["rude"]}\n', encoding="utf-8")
    model = project / "prompts" / "checker" / "classifier.json"
    before = model.read_bytes()
    with pytest.raises(DataFileError) as err:
        from copilot.training import load_items

        load_items([broken])
    assert f"checker_small.jsonl:{3 * len(SENTENCES) + 1}:" in str(err.value) and "rude" in str(err.value)
    assert main(["train"]) == 3 and model.read_bytes() == before

"""Train the checker's sentence classifier from the labelled sets and write its weights as data.

    python scripts/train_checker_classifier.py                     # retrain prompts/checker/classifier.json
    python scripts/train_checker_classifier.py --cross-validate    # how well would it do on text it never saw?

TF-IDF over word 1-3-grams (copilot.classifier.features; --chars adds in-word character n-grams, which measured no
better in cross-validation), one logistic regression per blocking category. The labels in evals/ belong to whole
replies, but the checker judges sentence by sentence, so a reply of several sentences is split: its sentences are
clean when the reply is clean; when it carries a category, the sentences the precise rules flag for it, or else the
one the model finds likeliest, carry it.

Trained on every evals/checker*.jsonl except the blind holdouts (copilot.classifier.BLIND_SETS), which only measure.
--cross-validate leaves each training file out in turn, trains on the rest, and scores the whole checker (rules
and model) on the file it left out: the honest figure for phrasings the model has not seen, and the way to pick
the rule thresholds in zz_classifier.yaml without touching the holdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copilot.checker import BLOCKING_CATEGORIES, Checker, ClassifierRule, _Doc  # noqa: E402
from copilot.classifier import BLIND_SETS, SentenceModel, features, silent, to_data  # noqa: E402

WORDS = (1, 3)
CHARS = (0, 0)

Item = dict[str, Any]
Example = tuple[str, set[str]]


def load_items(files: Sequence[Path]) -> list[Item]:
    """Every labelled reply in ``files``, with the file it came from."""
    items = []
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                item = json.loads(line)
                item["_file"] = path.name
                item["_line"] = n
                items.append(item)
    return items


def sentences(text: str) -> list[str]:
    """The sentences the checker will score, as it scores them (lower-cased, quotations blanked)."""
    doc = _Doc(text)
    return [doc.scan[s:e] for s, e in doc.sentences] or [doc.scan]


def _fit(examples: Sequence[Example], c: float, min_df: int, **info: Any) -> dict[str, Any]:
    texts = [t for t, _ in examples]
    vectorizer = TfidfVectorizer(
        analyzer=lambda t: features(t, WORDS, CHARS), sublinear_tf=True, min_df=min_df, lowercase=False
    )
    matrix = vectorizer.fit_transform(texts)
    vocabulary = vectorizer.get_feature_names_out()
    columns: list[list[float]] = [[round(float(v), 4) for v in vectorizer.idf_]]
    intercepts = []
    for category in BLOCKING_CATEGORIES:
        labels = [category in cats for _, cats in examples]
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(matrix, labels)
        columns.append([round(float(w), 4) for w in model.coef_[0]])
        intercepts.append(round(float(model.intercept_[0]), 4))
    terms = {str(t): [col[i] for col in columns] for i, t in enumerate(vocabulary)}
    return to_data(BLOCKING_CATEGORIES, terms, intercepts, words=WORDS, chars=CHARS, **info)


def sentence_examples(items: Sequence[Item], checker: Checker, c: float, min_df: int) -> list[Example]:
    """Sentence-level training examples from reply-level labels (see the module docstring)."""
    single: list[Example] = []
    multi: list[tuple[list[str], Item]] = []
    for item in items:
        parts = sentences(item["text"])
        labels = set(item["labels"])
        if len(parts) == 1 or not labels:
            single.extend((p, labels if len(parts) == 1 else set()) for p in parts)
        else:
            multi.append((parts, item))
    if not multi:
        return single
    first = SentenceModel(_fit(single, c, min_df))
    learned_ids = {r.id for r in checker.rules if isinstance(r, ClassifierRule)}
    out = list(single)
    for parts, item in multi:
        doc = _Doc(item["text"])
        precise = [f for f in checker.check(item["text"]) if f.rule not in learned_ids]
        assigned: list[set[str]] = [set() for _ in parts]
        for category in item["labels"]:
            hits = {doc.sentence_of(f.start) for f in precise if f.category == category}
            if not hits:
                hits = {max(range(len(parts)), key=lambda i: first.probability(parts[i], category))}
            for i in hits:
                if i < len(assigned):
                    assigned[i].add(category)
        out.extend(zip(parts, assigned, strict=True))
    return out


def train(items: Sequence[Item], checker: Checker, c: float, min_df: int, **info: Any) -> dict[str, Any]:
    """The model file's contents for ``items`` (``info`` adds provenance)."""
    return _fit(sentence_examples(items, checker, c, min_df), c, min_df, **info)


def with_model(checker: Checker, model: SentenceModel, thresholds: dict[str, float] | None = None) -> Checker:
    """The same rules, the classifier rules using ``model`` (and optionally other thresholds)."""
    rules = []
    for rule in checker.rules:
        if isinstance(rule, ClassifierRule):
            t = (thresholds or {}).get(rule.category, rule.threshold)
            rule = dataclasses.replace(rule, model=model, threshold=t)
        rules.append(rule)
    return Checker(rules)


def _summary(result: dict[str, Any]) -> str:
    cats = "  ".join(f"{c} {v['f1']:.3f} (P {v['precision']:.2f} R {v['recall']:.2f})" for c, v in result["per_category"].items())
    return f"{cats}  false flags {result['false_flag_rate']:.3f}  n={result['n']}"


def _metrics(pairs: Sequence[tuple[set[str], set[str]]]) -> dict[str, Any]:
    """Precision, recall, F1 per category and the false-flag rate from (expected, got) label sets."""
    per = {}
    for c in BLOCKING_CATEGORIES:
        tp = sum(1 for e, g in pairs if c in e and c in g)
        fp = sum(1 for e, g in pairs if c not in e and c in g)
        fn = sum(1 for e, g in pairs if c in e and c not in g)
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        per[c] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}
    clean = [g for e, g in pairs if not e]
    return {"per_category": per, "false_flag_rate": sum(map(bool, clean)) / max(len(clean), 1), "n": len(pairs)}


def _predict(checker: Checker, items: Sequence[Item]) -> list[tuple[set[str], set[str]]]:
    return [
        (set(i["labels"]), {f.category for f in checker.check(i["text"]) if f.severity == "block"}) for i in items
    ]


def cross_validate(
    items: Sequence[Item], checker: Checker, c: float, min_df: int, grid: Sequence[float], k: int, names: Sequence[str]
) -> None:
    """K folds: fold i holds out the i-th contiguous block of every file in ``names`` (all files when empty) and trains
    on the rest; prints each fold's scores and the pooled scores for each threshold. Blocks, not random draws,
    because neighbouring lines were written together and share phrasings."""
    chosen = set(names) or {item["_file"] for item in items}
    sizes: dict[str, int] = {}
    for item in items:
        sizes[item["_file"]] = max(sizes.get(item["_file"], 0), item["_line"])
    folds = []
    for fold in range(k):
        held = [
            i for i in items if i["_file"] in chosen and (i["_line"] - 1) * k // sizes[i["_file"]] == fold
        ]
        ids = {id(i) for i in held}
        model = SentenceModel(train([i for i in items if id(i) not in ids], checker, c, min_df))
        folds.append((model, held))
        print(f"{'fold ' + str(fold + 1):36s} {_summary(_metrics(_predict(with_model(checker, model), held)))}")
    for t in grid:
        pairs = []
        for model, held in folds:
            pairs.extend(_predict(with_model(checker, model, dict.fromkeys(BLOCKING_CATEGORIES, t)), held))
        print(f"{'pooled, threshold ' + format(t, '.2f'):36s} {_summary(_metrics(pairs))}")


def main() -> None:
    global WORDS, CHARS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "prompts" / "checker" / "classifier.json")
    parser.add_argument("--c", type=float, default=4.0, help="inverse regularisation strength")
    parser.add_argument("--min-df", type=int, default=2, help="ignore n-grams seen in fewer examples")
    parser.add_argument("--cross-validate", action="store_true", help="leave-one-file-out scores; writes nothing")
    parser.add_argument(
        "--leave-out", nargs="*", default=[], metavar="FILE", help="with --cross-validate: only these files are scored"
    )
    parser.add_argument("--folds", type=int, default=5, help="with --cross-validate: number of folds")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8])
    parser.add_argument("--words", type=int, nargs=2, default=WORDS, metavar=("MIN", "MAX"), help="word n-grams")
    parser.add_argument("--chars", type=int, nargs=2, default=CHARS, metavar=("MIN", "MAX"), help="0 0 = none")
    args = parser.parse_args()
    WORDS, CHARS = tuple(args.words), tuple(args.chars)
    files = sorted(p for p in (ROOT / "evals").glob("checker*.jsonl") if p.name not in BLIND_SETS)
    items = load_items(files)
    # The rules alone (a model that never fires) decide which sentence of a reply carries its labels.
    checker = Checker.load(ROOT / "prompts" / "checker", model=silent(BLOCKING_CATEGORIES))
    if args.cross_validate:
        cross_validate(items, checker, args.c, args.min_df, args.thresholds, args.folds, args.leave_out)
        return
    data = train(items, checker, args.c, args.min_df, trained_on=[p.name for p in files], replies=len(items))
    args.out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"trained on {len(items)} replies from {len(files)} files; {len(data['terms'])} features -> {args.out}")


if __name__ == "__main__":
    main()

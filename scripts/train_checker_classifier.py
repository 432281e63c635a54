"""Train the checker's sentence classifier from the labelled sets and write its weights as data.

    python scripts/train_checker_classifier.py [--out prompts/checker/classifier.json]

TF-IDF over word unigrams and bigrams, one logistic regression per blocking category, trained on every
evals/checker*.jsonl set except the holdouts kept for honest measurement (checker_holdout3.jsonl). The weights are
plain JSON that copilot.checker reads without scikit-learn; retrain after adding labelled examples.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("blame", "defensiveness", "empty_apology")
HELD_OUT = {"checker_holdout3.jsonl"}
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "prompts" / "checker" / "classifier.json")
    parser.add_argument("--c", type=float, default=4.0, help="inverse regularisation strength")
    args = parser.parse_args()
    files = sorted(p for p in (ROOT / "evals").glob("checker*.jsonl") if p.name not in HELD_OUT)
    items = [
        json.loads(line) for path in files for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    texts = [item["text"].replace("\u2019", "'").lower() for item in items]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=TOKEN_PATTERN, lowercase=True)
    matrix = vectorizer.fit_transform(texts)
    vocabulary = vectorizer.get_feature_names_out()
    weights: dict[str, dict[str, float]] = {}
    intercepts: dict[str, float] = {}
    for category in CATEGORIES:
        labels = [category in item["labels"] for item in items]
        model = LogisticRegression(C=args.c, class_weight="balanced", max_iter=5000).fit(matrix, labels)
        weights[category] = {
            t: round(float(w), 5) for t, w in zip(vocabulary, model.coef_[0], strict=True) if abs(w) >= 1e-4
        }
        intercepts[category] = round(float(model.intercept_[0]), 5)
    data = {
        "format": "copilot-tfidf-logreg-1",
        "token_pattern": TOKEN_PATTERN,
        "ngram_range": [1, 2],
        "trained_on": [p.name for p in files],
        "examples": len(items),
        "idf": {t: round(float(v), 5) for t, v in zip(vocabulary, vectorizer.idf_, strict=True)},
        "weights": weights,
        "intercepts": intercepts,
    }
    args.out.write_text(
        json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"trained on {len(items)} examples from {len(files)} files; {len(vocabulary)} features -> {args.out}")


if __name__ == "__main__":
    main()

"""Training the checker's learned rules: `copilot train` (and `copilot train --cross-validate`).

TF-IDF over word 1-3-grams (copilot.classifier.features; in-word character n-grams can be added, and measured no
better in cross-validation), one logistic regression per blocking category, fitted with scikit-learn and written
as plain JSON that copilot.classifier reads without it.

The labels in evals/ belong to whole replies, but the checker judges sentence by sentence, so a reply of several
sentences is split: its sentences are clean when the reply is clean; when it carries a category, the sentences the
precise rules flag for it, or else the one a first model finds likeliest, carry it.

Every evals/checker*.jsonl is training data except the blind holdouts (copilot.classifier.BLIND_SETS), which only
measure. Cross-validation holds out contiguous blocks of the files in turn, trains on the rest and scores the whole
checker (rules and model) on what it held out: the figure for phrasings the model has not seen, and the way to pick
each learned rule's threshold without touching the blind holdouts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.checker import BLOCKING_CATEGORIES, Checker, ClassifierRule, _Doc
from copilot.classifier import BLIND_SETS, SentenceModel, features, silent, to_data
from copilot.errors import CopilotError, DataFileError
from copilot.workshop import atomic_write

Item = dict[str, Any]
Example = tuple[str, set[str]]
Pairs = list[tuple[set[str], set[str]]]


@dataclass(frozen=True)
class Options:
    """How the model is fitted."""

    c: float = 4.0  # inverse regularisation strength
    min_df: int = 2  # n-grams seen in fewer training sentences are ignored
    words: tuple[int, int] = (1, 3)
    chars: tuple[int, int] = (0, 0)


def training_files(evals_dir: Path) -> list[Path]:
    """The labelled sets the model learns from: all but the blind holdouts."""
    return sorted(p for p in evals_dir.glob("checker*.jsonl") if p.name not in BLIND_SETS)


def load_items(files: Sequence[Path]) -> list[Item]:
    """Every labelled reply in ``files``, with the file and line it came from; a bad line is named."""
    items = []
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                text, labels = str(item["text"]), list(item["labels"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataFileError(
                    path, f"not a labelled reply ({exc})", line=n, fix='write {"text": "...", "labels": ["blame"]}'
                ) from exc
            unknown = set(labels) - set(BLOCKING_CATEGORIES)
            if unknown:
                raise DataFileError(
                    path, f"unknown label(s) {sorted(unknown)}", line=n, fix=f"use {', '.join(BLOCKING_CATEGORIES)}"
                )
            items.append({"text": text, "labels": labels, "_file": path.name, "_line": n})
    return items


def sentences(text: str) -> list[str]:
    """The sentences the checker will score, as it scores them (lower-cased, quotations blanked)."""
    doc = _Doc(text)
    return [doc.scan[s:e] for s, e in doc.sentences] or [doc.scan]


def _fit(examples: Sequence[Example], options: Options, **info: Any) -> dict[str, Any]:
    # scikit-learn is only needed here, never by the checker.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        analyzer=lambda t: features(t, options.words, options.chars),
        sublinear_tf=True,
        min_df=options.min_df,
        lowercase=False,
    )
    matrix = vectorizer.fit_transform([t for t, _ in examples])
    vocabulary = vectorizer.get_feature_names_out()
    columns: list[list[float]] = [[round(float(v), 4) for v in vectorizer.idf_]]
    intercepts = []
    for category in BLOCKING_CATEGORIES:
        labels = [category in cats for _, cats in examples]
        if len(set(labels)) < 2:
            raise CopilotError(
                f"The labelled sets have no {'clean' if all(labels) else category} sentences to learn from.",
                fix="add labelled replies of both kinds to evals/ (see evals/LABELLING.md)",
            )
        model = LogisticRegression(C=options.c, class_weight="balanced", max_iter=5000).fit(matrix, labels)
        columns.append([round(float(w), 4) for w in model.coef_[0]])
        intercepts.append(round(float(model.intercept_[0]), 4))
    terms = {str(t): [col[i] for col in columns] for i, t in enumerate(vocabulary)}
    return to_data(BLOCKING_CATEGORIES, terms, intercepts, words=options.words, chars=options.chars, **info)


def sentence_examples(items: Sequence[Item], rules: Checker, options: Options) -> list[Example]:
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
    first = SentenceModel(_fit(single, options))
    learned = {r.id for r in rules.rules if isinstance(r, ClassifierRule)}
    out = list(single)
    for parts, item in multi:
        doc = _Doc(item["text"])
        precise = [f for f in rules.check(item["text"]) if f.rule not in learned]
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


def train(items: Sequence[Item], rules: Checker, options: Options, **info: Any) -> dict[str, Any]:
    """The model file's contents for ``items`` (``info`` adds provenance)."""
    return _fit(sentence_examples(items, rules, options), options, **info)


def rules_only(prompts_dir: Path) -> Checker:
    """The checker with a model that never fires: it decides which sentence of a reply carries its labels."""
    return Checker.load(prompts_dir / "checker", model=silent(BLOCKING_CATEGORIES))


def with_model(checker: Checker, model: SentenceModel, thresholds: dict[str, float] | None = None) -> Checker:
    """The same rules, the learned ones using ``model`` (and optionally other thresholds)."""
    rules = []
    for rule in checker.rules:
        if isinstance(rule, ClassifierRule):
            t = (thresholds or {}).get(rule.category, rule.threshold)
            rule = dataclasses.replace(rule, model=model, threshold=t)
        rules.append(rule)
    return Checker(rules)


def metrics(pairs: Pairs) -> dict[str, Any]:
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


def summary(result: dict[str, Any]) -> str:
    """One line: F1, precision and recall per category, false flags, cases."""
    cats = "  ".join(
        f"{c} {v['f1']:.3f} (P {v['precision']:.2f} R {v['recall']:.2f})" for c, v in result["per_category"].items()
    )
    return f"{cats}  false flags {result['false_flag_rate']:.3f}  n={result['n']}"


def _predict(checker: Checker, items: Sequence[Item]) -> Pairs:
    return [(set(i["labels"]), {f.category for f in checker.check(i["text"]) if f.severity == "block"}) for i in items]


def cross_validate(
    items: Sequence[Item],
    rules: Checker,
    options: Options,
    thresholds: Sequence[float],
    folds: int = 5,
    scored: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> dict[float, dict[str, Any]]:
    """K folds: fold i holds out the i-th contiguous block of every file in ``scored`` (all when empty) and trains on
    the rest. Says each fold's scores, then returns (and says) the pooled scores for each threshold. Blocks, not
    random draws, because neighbouring lines were written together and share phrasings."""
    if folds < 2:
        raise CopilotError(f"--folds {folds} leaves nothing to train on.", fix="use 2 or more folds (5 is usual)")
    chosen = set(scored) or {item["_file"] for item in items}
    sizes: dict[str, int] = {}
    for item in items:
        sizes[item["_file"]] = max(sizes.get(item["_file"], 0), item["_line"])
    trained = []
    for fold in range(folds):
        held = [i for i in items if i["_file"] in chosen and (i["_line"] - 1) * folds // sizes[i["_file"]] == fold]
        ids = {id(i) for i in held}
        model = SentenceModel(train([i for i in items if id(i) not in ids], rules, options))
        trained.append((model, held))
        say(f"{'fold ' + str(fold + 1):28s} {summary(metrics(_predict(with_model(rules, model), held)))}")
    pooled = {}
    for t in thresholds:
        pairs: Pairs = []
        for model, held in trained:
            pairs.extend(_predict(with_model(rules, model, dict.fromkeys(BLOCKING_CATEGORIES, t)), held))
        pooled[t] = metrics(pairs)
        say(f"{'pooled, threshold ' + format(t, '.2f'):28s} {summary(pooled[t])}")
    return pooled


def write_model(evals_dir: Path, prompts_dir: Path, options: Options) -> tuple[Path, dict[str, Any]]:
    """Train on every labelled set but the blind ones and replace the model file atomically."""
    files = training_files(evals_dir)
    items = load_items(files)
    data = train(items, rules_only(prompts_dir), options, trained_on=[p.name for p in files], replies=len(items))
    out = prompts_dir / "checker" / "classifier.json"
    atomic_write(out, json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
    return out, data

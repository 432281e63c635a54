"""The checker's learned sentence model: features and inference in plain Python, the weights as data.

``copilot train`` (copilot/training.py) fits TF-IDF + one logistic regression per category with scikit-learn,
using :func:`features` as its analyzer, and writes the result as JSON; this module reads that JSON and computes
the same probabilities without scikit-learn, so ``copilot check`` stays fast to start. With the C build
(copilot/native.py) the per-sentence sums run in C (copilot/_sentence_model.c); the Python code is the reference.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot import native

FORMAT = "copilot-tfidf-logreg-2"
# Labelled sets written blind (from evals/LABELLING.md alone) that the model is never trained on: they only measure.
BLIND_SETS = ("checker_holdout4.jsonl", "checker_holdout5.jsonl")
# Contractions stay whole ("didn't", "you're"): they carry most of the meaning in blame and refusals.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[?!]")


class ModelFileError(ValueError):
    """The JSON file is not a classifier this version can read."""


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (and ? and !) of ``text``."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def features(text: str, words: Sequence[int] = (1, 3), chars: Sequence[int] = (0, 0)) -> list[str]:
    """The n-grams the model looks at: word n-grams in ``words`` and in-word character n-grams in ``chars``.

    Character n-grams (off by default; the model file says which it was trained with) let "refunding" share evidence
    with "refund".
    """
    toks = tokens(text)
    lo, hi = words
    # Unrolled for the usual 1-3-grams: this runs once per sentence of every checked reply.
    out: list[str] = ["w:" + t for t in toks] if lo <= 1 <= hi else []
    if lo <= 2 <= hi:
        out += ["w:" + a + " " + b for a, b in zip(toks, toks[1:], strict=False)]
    if lo <= 3 <= hi:
        out += ["w:" + a + " " + b + " " + c for a, b, c in zip(toks, toks[1:], toks[2:], strict=False)]
    for n in range(max(lo, 4), hi + 1):
        out.extend("w:" + " ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
    c_lo, c_hi = chars
    if c_hi >= c_lo > 0:
        for tok in toks:
            padded = f" {tok} "
            size = len(padded)
            for n in range(c_lo, min(c_hi, size) + 1):
                out.extend("c:" + padded[i : i + n] for i in range(size - n + 1))
    return out


class SentenceModel:
    """P(category | sentence) for each blocking category, as the trainer's vectorizer and regressions compute it."""

    def __init__(self, data: dict[str, Any]) -> None:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ModelFileError(f"format {found!r}, expected {FORMAT!r}")
        spec = data["features"]
        self.words = (int(spec["words"][0]), int(spec["words"][1]))
        self.chars = (int(spec["chars"][0]), int(spec["chars"][1]))
        self.categories: tuple[str, ...] = tuple(str(c) for c in data["categories"])
        self.intercepts = [float(v) for v in data["intercepts"]]
        width = len(self.categories)
        if len(self.intercepts) != width:
            raise ModelFileError(f"{len(self.intercepts)} intercepts for {width} categories")
        # One row per n-gram: (idf squared, for the norm; then idf * weight for each category). A sentence's sums are
        # then one lookup per n-gram and a C-level sum over the rows' columns.
        self.rows: dict[str, tuple[float, ...]] = {}
        for term, row in data["terms"].items():
            if len(row) != width + 1:
                raise ModelFileError(f"term {term!r} has {len(row)} numbers, expected idf + {width} weights")
            idf = float(row[0])
            self.rows[str(term)] = (idf * idf, *(idf * float(w) for w in row[1:]))
        # The usual model (word 1-3-grams only) is looked up without the "w:" prefix, so the n-grams of a sentence
        # are built as bare joins of its tokens: this runs for every sentence of every checked reply.
        self._bare = self.words == (1, 3) and not self.chars[1] >= self.chars[0] > 0
        if self._bare:
            self.rows = {term[2:]: row for term, row in self.rows.items() if term.startswith("w:")}
        # The same sums in C (copilot/_sentence_model.c) where the C build is in use; None: the Python code below.
        self.scorer: Any = _c_scorer(self.rows, width + 1) if self._bare else None
        self._intercepts = tuple(self.intercepts)
        self._recent: OrderedDict[str, dict[str, float]] = OrderedDict()

    @classmethod
    def load(cls, path: Path) -> SentenceModel:
        """Read a model file; raise OSError or ModelFileError (a ValueError) when it cannot be used."""
        return cls.from_bytes(path.read_bytes())

    @classmethod
    def from_bytes(cls, raw: bytes) -> SentenceModel:
        """Parse a model file's bytes; raise ModelFileError (a ValueError) when they are not a usable model."""
        try:
            return cls(json.loads(raw.decode("utf-8")))
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ModelFileError(f"missing or malformed field: {exc}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"not JSON: {exc}") from exc

    def probabilities(self, sentence: str) -> dict[str, float]:
        """P(category | sentence) for every category in one pass."""
        hit = self._recent.get(sentence)
        if hit is not None:
            return hit
        # Sublinear tf times idf, L2-normalised, dotted with each category's weights, as TfidfVectorizer and
        # LogisticRegression compute it.
        z: Sequence[float] = self.intercepts
        if self.scorer is not None:
            if sentence.isascii():
                # Nearly every sentence: split into tokens, summed and turned into probabilities in C as well.
                return self._keep(
                    sentence, self.scorer.ascii_probabilities(sentence, self._intercepts, self.categories)
                )
            summed = self.scorer.sums(tokens(sentence))
            if summed is not None:
                norm = math.sqrt(summed[0]) or 1.0
                z = [b + v / norm for b, v in zip(z, summed[1:], strict=True)]
            return self._remember(sentence, z)
        if self._bare:
            toks = tokens(sentence)
            grams = toks + list(map(" ".join, zip(toks, toks[1:], strict=False)))
            grams += map(" ".join, zip(toks, toks[1:], toks[2:], strict=False))
        else:
            grams = features(sentence, self.words, self.chars)
        rows = self.rows
        found = [g for g in grams if g in rows]
        if found:
            if len(set(found)) == len(found):  # every n-gram once, so tf is 1: plain column sums
                sums: list[float] = list(map(sum, zip(*map(rows.__getitem__, found), strict=True)))
            else:  # a repeated word or phrase ("the ... the"): tf = 1 + log(count) for those few, squared in the norm
                counts = Counter(found)
                once = [g for g, n in counts.items() if n == 1]
                sums = list(map(sum, zip(*map(rows.__getitem__, once), strict=True))) if once else [0.0] * (len(z) + 1)
                for g, n in counts.items():
                    if n > 1:
                        tf = 1.0 + math.log(n)
                        row = rows[g]
                        sums[0] += tf * tf * row[0]
                        for k in range(1, len(sums)):
                            sums[k] += tf * row[k]
            norm = math.sqrt(sums[0]) or 1.0
            z = [b + v / norm for b, v in zip(z, sums[1:], strict=True)]
        return self._remember(sentence, z)

    def _remember(self, sentence: str, z: Sequence[float]) -> dict[str, float]:
        result = {c: 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, v)))) for c, v in zip(self.categories, z, strict=True)}
        return self._keep(sentence, result)

    def _keep(self, sentence: str, result: dict[str, float]) -> dict[str, float]:
        # A short memory: a live re-check of a draft being edited asks about the same sentences again, and so does the
        # trainer picking each reply's most likely sentence per category. It is kept small so it never stands in for
        # the computation on new text (the checker itself asks once per sentence, see checker._Doc.learned).
        self._recent[sentence] = result
        if len(self._recent) > 64:
            self._recent.popitem(last=False)
        return result

    def probability(self, sentence: str, category: str) -> float:
        """P(category | sentence)."""
        return self.probabilities(sentence).get(category, 0.0)


def _c_scorer(rows: dict[str, tuple[float, ...]], width: int) -> Any:
    """A C Scorer holding ``rows`` (word 1-3-grams) numbered as it looks them up; None without the C build."""
    # Only beside the compiled modules, and only while they match their sources (copilot/native.py);
    # COPILOT_PURE_PYTHON=1 keeps to the Python code.
    scorer = getattr(native.extension("_sentence_model"), "Scorer", None)
    if scorer is None:
        return None
    ids: dict[str, int] = {}
    split = [(term.split(" "), row) for term, row in rows.items()]
    if not all(1 <= len(words) <= 3 and all(words) for words, _ in split):
        return None
    for words, _ in split:
        for word in words:
            ids.setdefault(word, len(ids) + 1)
    base = len(ids) + 1
    if base**3 >= 2**63:  # n-gram numbers must fit the scorer's 64 bits
        return None
    codes = []
    for words, _ in split:
        code = 0
        for word in words:
            code = code * base + ids[word]
        codes.append(code)
    return scorer(ids, codes, [row for _, row in split], width)


def to_data(
    categories: Sequence[str],
    terms: dict[str, list[float]],
    intercepts: Sequence[float],
    *,
    words: Sequence[int],
    chars: Sequence[int],
    **info: Any,
) -> dict[str, Any]:
    """The JSON document for a trained model: ``terms`` maps each n-gram to [idf, weight per category].

    ``info`` adds provenance such as the files trained on.
    """
    return {
        "format": FORMAT,
        "features": {"words": list(words), "chars": list(chars)},
        **info,
        "categories": list(categories),
        "intercepts": list(intercepts),
        "terms": terms,
    }


def silent(categories: Sequence[str]) -> SentenceModel:
    """A model that never fires, so a checker built with it judges by its precise rules alone."""
    return SentenceModel(to_data(categories, {}, [-30.0] * len(categories), words=(1, 1), chars=(0, 0)))

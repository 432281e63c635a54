"""The checker's learned sentence model: features and inference in plain Python, the weights as data.

``copilot train`` (copilot/training.py) fits TF-IDF + one logistic regression per category with scikit-learn,
using :func:`features` as its analyzer, and writes the result as JSON; this module reads that JSON and computes
the same probabilities without scikit-learn, so ``copilot check`` stays fast to start.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        # One dictionary per quantity, so a sentence's sums run as C-level map() over its n-grams: idf squared (for
        # the norm) and idf * weight for each category.
        self.idf: dict[str, float] = {}
        self.square: dict[str, float] = {}
        self.scaled: list[dict[str, float]] = [{} for _ in range(width)]
        for term, row in data["terms"].items():
            if len(row) != width + 1:
                raise ModelFileError(f"term {term!r} has {len(row)} numbers, expected idf + {width} weights")
            key = str(term)
            idf = float(row[0])
            self.idf[key] = idf
            self.square[key] = idf * idf
            for scaled, weight in zip(self.scaled, row[1:], strict=True):
                scaled[key] = idf * float(weight)
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
        idf = self.idf
        found = [g for g in features(sentence, self.words, self.chars) if g in idf]
        z = list(self.intercepts)
        if found:
            if len(set(found)) == len(found):  # every n-gram once, so tf is 1
                once, many = found, []
            else:  # a repeated word or phrase: tf = 1 + log(count) for those few
                counts = Counter(found)
                once = [g for g, n in counts.items() if n == 1]
                many = [(g, 1.0 + math.log(n)) for g, n in counts.items() if n > 1]
            square = sum(map(self.square.__getitem__, once)) + sum(t * t * self.square[g] for g, t in many)
            norm = math.sqrt(square) or 1.0
            z = [
                b + (sum(map(w.__getitem__, once)) + sum(t * w[g] for g, t in many)) / norm
                for b, w in zip(z, self.scaled, strict=True)
            ]
        result = {c: 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, v)))) for c, v in zip(self.categories, z, strict=True)}
        # A short memory: the three classifier rules ask about the same sentences, and so does a live re-check of a
        # draft being edited. It is kept small so it never stands in for the computation on new text.
        self._recent[sentence] = result
        if len(self._recent) > 64:
            self._recent.popitem(last=False)
        return result

    def probability(self, sentence: str, category: str) -> float:
        """P(category | sentence)."""
        return self.probabilities(sentence).get(category, 0.0)


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

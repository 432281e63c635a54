"""Hybrid retrieval of guidance: keyword (BM25) and vector search, fused by normalised score."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from copilot.embeddings import MiniLMEmbeddings
from copilot.errors import DataFileError, yaml_error
from copilot.store import GuidanceStore, StoredPassage

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "they",
        "them",
        "their",
        "his",
        "her",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "when",
        "where",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "not",
        "no",
        "nor",
        "too",
        "very",
        "just",
        "about",
        "into",
        "over",
        "than",
        "also",
        "any",
        "all",
        "some",
        "such",
        "only",
        "own",
        "same",
        "there",
        "here",
        "again",
        "further",
        "once",
        "more",
        "most",
        "other",
        "each",
        "few",
        "both",
        "am",
        "s",
        "t",
        "don",
        "now",
        "get",
        "got",
        "let",
        "lets",
        "make",
        "sure",
        "one",
    ]
    # up/down/out/off stay: phrasal verbs ("calm down", "hang up", "point out") carry the guidance.
)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
KEYWORD_WEIGHT = 0.6
SYNONYM_WEIGHT = 0.6


def _stem(word: str) -> str:
    for suffix in ("ational", "ization", "fulness", "ousness", "iveness", "ing", "edly", "ed", "ies", "ly", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case, drop stop words, strip common suffixes: enough for keyword matching in English guidance."""
    text = text.lower().replace("’", "'")
    return [_stem(t.split("'")[0]) for t in _TOKEN.findall(text) if t not in _STOPWORDS and len(t) > 1]


class Thesaurus:
    """Groups of words that mean the same in customer service, so an agent's wording finds the guidance's."""

    def __init__(self, groups: list[list[str]]) -> None:
        self.groups = [
            set(terms(" ".join(group))) | {"_".join(tokenize(w)) for w in group if " " in w} for group in groups
        ]

    @classmethod
    def load(cls, path: Path) -> Thesaurus:
        """Read prompts/synonyms.yaml (missing file: no expansion)."""
        if not path.is_file():
            return cls([])
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise yaml_error(path, exc, what="not valid YAML", fix="each group is a list: [word, word]") from exc
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list) or not all(isinstance(g, list) and len(g) >= 2 for g in groups):
            raise DataFileError(
                path,
                "must have `groups:`, a list of lists of at least two words",
                fix="write each group as - [word, other word]",
            )
        return cls([[str(w) for w in g] for g in groups])

    def expand(self, query_terms: set[str]) -> set[str]:
        """Terms from every group the query touches, minus the query's own."""
        extra: set[str] = set()
        for group in self.groups:
            if group & query_terms:
                extra |= group
        return extra - query_terms


def terms(text: str) -> list[str]:
    """Tokens plus adjacent-pair bigrams, so a phrase like "calm down" outranks its words scattered apart."""
    tokens = tokenize(text)
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:], strict=False)]


class KeywordIndex:
    """An in-memory BM25 index with postings lists, so a query touches only passages sharing its terms."""

    def __init__(self, passages: list[StoredPassage], k1: float = 1.4, b: float = 0.7) -> None:
        self.passages = passages
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for number, passage in enumerate(passages):
            found = terms(f"{passage.heading} {passage.text}")
            self.lengths.append(len(found))
            for term, count in Counter(found).items():
                self.postings[term].append((number, count))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0

    def search(self, query: str, k: int, thesaurus: Thesaurus | None = None) -> list[tuple[StoredPassage, float]]:
        """Best passages for the query's terms (and, at a lower weight, their synonyms), best first."""
        n = len(self.passages)
        scores: dict[int, float] = defaultdict(float)
        own = set(terms(query))
        weighted = [(t, 1.0) for t in own]
        if thesaurus is not None:
            weighted += [(t, SYNONYM_WEIGHT) for t in thesaurus.expand(own)]
        for term, weight in weighted:
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for number, count in postings:
                norm = count + self.k1 * (1 - self.b + self.b * self.lengths[number] / self.average)
                scores[number] += weight * idf * count * (self.k1 + 1) / norm
        best = sorted(scores.items(), key=lambda item: -item[1])[:k]
        return [(self.passages[i], s) for i, s in best]


@dataclass(frozen=True)
class RetrievedPassage:
    """A guidance passage with its citation and how well it matched."""

    id: str
    text: str
    title: str
    heading: str
    source: str
    score: float
    similarity: float

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return asdict(self)

    @property
    def citation(self) -> str:
        """Short human citation: document title and section."""
        return f"{self.title} › {self.heading}" if self.heading and self.heading != self.title else self.title


class Retriever:
    """Finds the guidance passages for a question or a customer message."""

    def __init__(
        self,
        store: GuidanceStore,
        embedder: MiniLMEmbeddings,
        *,
        candidates: int = 24,
        thesaurus: Thesaurus | None = None,
    ) -> None:
        self.store = store
        self.thesaurus = thesaurus
        self.embedder = embedder
        self.candidates = candidates
        self._keywords: KeywordIndex | None = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Rebuild the keyword index from the store (after a re-index)."""
        with self._lock:
            self._keywords = KeywordIndex(self.store.all_passages())

    def warm(self) -> None:
        """Load the embedding model and build the keyword index ahead of the first query."""
        self.embedder.embed_query("warm up")
        self._keyword_index()

    def _keyword_index(self) -> KeywordIndex:
        if self._keywords is None:
            self.refresh()
        assert self._keywords is not None
        return self._keywords

    def retrieve(self, query: str, k: int = 4) -> list[RetrievedPassage]:
        """Top-k passages for the query, fusing vector and keyword rankings."""
        query = query.strip()
        if not query:
            return []
        vector_hits = self.store.query(self.embedder.embed_query(query), self.candidates)
        keyword_hits = self._keyword_index().search(query, self.candidates, self.thesaurus)
        # Score fusion rather than rank fusion: a decisive keyword match (a rare phrase such as "calm down")
        # must be able to outvote a crowd of passages that are only vaguely similar in meaning.
        fused: dict[str, float] = defaultdict(float)
        similarity: dict[str, float] = {}
        by_id: dict[str, StoredPassage] = {}
        if vector_hits:
            top, bottom = vector_hits[0][1], vector_hits[-1][1]
            for passage, sim in vector_hits:
                fused[passage.id] += (1 - KEYWORD_WEIGHT) * (sim - bottom) / (top - bottom or 1.0)
                similarity[passage.id] = sim
                by_id[passage.id] = passage
        if keyword_hits:
            best = keyword_hits[0][1] or 1.0
            for passage, score in keyword_hits:
                fused[passage.id] += KEYWORD_WEIGHT * score / best
                by_id.setdefault(passage.id, passage)
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [
            RetrievedPassage(
                id=pid,
                text=by_id[pid].text,
                title=by_id[pid].title,
                heading=by_id[pid].heading,
                source=by_id[pid].source,
                score=round(score, 4),
                similarity=round(similarity.get(pid, 0.0), 4),
            )
            for pid, score in ranked
        ]

"""Retrieval benchmark: index throughput and warm query latency, on the real knowledge base and a synthetic 10k base.

Run: python benchmarks/retrieval_bench.py [--synthetic 10000]. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from copilot.documents import Passage, load_documents  # noqa: E402
from copilot.embeddings import MiniLMEmbeddings  # noqa: E402
from copilot.index import build_index  # noqa: E402
from copilot.retrieval import Retriever  # noqa: E402
from copilot.store import open_store  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def query_latency(retriever: Retriever, questions: list[str], rounds: int) -> tuple[float, float, float]:
    retriever.warm()
    for q in questions:  # warm the caches the way a running app has them, then measure fresh phrasings
        retriever.retrieve(q, 3)
    timings = []
    for r in range(rounds):
        for q in questions:
            query = f"{q} (variant {r})"  # defeats the query-embedding cache: every timed query is new
            t = time.perf_counter()
            retriever.retrieve(query, 3)
            timings.append((time.perf_counter() - t) * 1000)
    return statistics.median(timings), percentile(timings, 0.95), len(timings)


def synthetic_passages(n: int, seed: int = 7) -> list[Passage]:
    """Plausible guidance-like passages: sentences of the real documents recombined, with varied vocabulary."""
    rng = random.Random(seed)
    sentences = []
    for document in load_documents(ROOT / "knowledge", ROOT).documents:
        for _, body in document.sections:
            sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if len(s.strip()) > 30]
    topics = [
        "billing",
        "refunds",
        "deliveries",
        "outages",
        "bookings",
        "accounts",
        "warranty",
        "returns",
        "roaming",
        "claims",
        "repairs",
        "subscriptions",
        "invoices",
        "upgrades",
        "cancellations",
        "loyalty points",
    ]
    passages = []
    for i in range(n):
        topic = rng.choice(topics)
        text = f"When handling {topic} case {i}: " + " ".join(rng.sample(sentences, 3))
        passages.append(
            Passage(
                id=f"syn{i:06d}",
                text=text[:600],
                title=f"Synthetic playbook {i // 50}",
                heading=topic.title(),
                source=f"synthetic/{i // 50}.md",
                position=i % 50,
            )
        )
    return passages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    questions = [c["question"] for c in yaml.safe_load((ROOT / "evals" / "retrieval.yaml").read_text())["cases"]]
    embedder = MiniLMEmbeddings()
    embedder.embed_query("load the model before timing")

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(embedder, index_dir=Path(tmp) / "real", chroma_url=None, collection="guidance")
        report = build_index(store, embedder, ROOT / "knowledge", root=ROOT)
        print(
            f"real knowledge base: {report.passages} passages indexed in {report.seconds:.2f} s "
            f"= {report.passages / report.seconds:.0f} passages/s"
        )
        p50, p95, n = query_latency(Retriever(store, embedder), questions, args.rounds)
        print(f"real knowledge base: query p50 {p50:.1f} ms, p95 {p95:.1f} ms over {n} queries (k=3, warm model)")

        store = open_store(embedder, index_dir=Path(tmp) / "synthetic", chroma_url=None, collection="synthetic")
        passages = synthetic_passages(args.synthetic)
        t = time.perf_counter()
        for start in range(0, len(passages), 256):
            batch = passages[start : start + 256]
            store.add(batch, embedder.embed_documents([p.embedding_text for p in batch]))
        seconds = time.perf_counter() - t
        print(
            f"synthetic base: {len(passages)} passages indexed in {seconds:.1f} s = {len(passages) / seconds:.0f} "
            "passages/s"
        )
        retriever = Retriever(store, embedder)
        t = time.perf_counter()
        retriever.warm()
        print(f"synthetic base: keyword index built in {(time.perf_counter() - t):.2f} s")
        p50, p95, n = query_latency(retriever, questions, args.rounds)
        print(f"synthetic base: query p50 {p50:.1f} ms, p95 {p95:.1f} ms over {n} queries (k=3, warm model)")
        print(f"goal: p50 <= 20 ms at 10k passages -> ratio {p50 / 20:.2f} of the budget")


if __name__ == "__main__":
    main()

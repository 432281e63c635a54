"""Throughput and latency of the reply checker on a few thousand realistic replies, single process.

Replies are built by combining 3-6 sentences drawn from all the labelled sets in evals/ (about 5,000 distinct
sentences, fixed seed), so they mix clean and flagged sentences the way real drafts do and rarely repeat one.
Prints replies/s and p50/p99 latency per reply, and which engine ran (the C build made at install, or the source:
COPILOT_PURE_PYTHON=1 asks for the source); asserts nothing.

    python benchmarks/checker_bench.py [--replies 5000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copilot import native  # noqa: E402
from copilot.checker import CheckContext, Checker  # noqa: E402

SENTENCE = re.compile(r"(?<=[.!?])\s+")
GREETINGS = ("Hi {name},", "Hello {name},", "Dear {name},", "{name},", "")
NAMES = ("Dana", "Mr Okafor", "Priya", "Ms Lopez", "Tom", "Aisha", "Kofi", "Mrs Novak")


def build_replies(n: int, seed: int) -> list[tuple[str, CheckContext]]:
    """Combine labelled sentences into ``n`` replies of 3-6 sentences with a greeting and a known name."""
    sentences: list[str] = []
    for path in sorted((ROOT / "evals").glob("checker*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = json.loads(line)["text"]
                sentences.extend(s for s in SENTENCE.split(text) if len(s.split()) > 2)
    sentences = sorted(set(sentences))
    rng = random.Random(seed)
    replies = []
    for _ in range(n):
        name = rng.choice(NAMES)
        greeting = rng.choice(GREETINGS).format(name=name)
        body = " ".join(rng.sample(sentences, rng.randint(3, 6)))
        replies.append(((greeting + " " + body).strip(), CheckContext(customer_name=name)))
    return replies


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    t0 = time.perf_counter()
    checker = Checker.load(ROOT / "prompts" / "checker")
    load_ms = (time.perf_counter() - t0) * 1000
    replies = build_replies(args.replies, args.seed)
    for text, context in replies[:200]:  # warm caches so the figures reflect steady state
        checker.check(text, context)

    latencies = []
    findings = 0
    start = time.perf_counter()
    for text, context in replies:
        t = time.perf_counter()
        findings += len(checker.check(text, context))
        latencies.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - start

    latencies.sort()
    chars = statistics.mean(len(t) for t, _ in replies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    distinct = len({s for text, _ in replies for s in SENTENCE.split(text)})
    print(f"engine: {native.describe(native.STATE)}")
    print(
        f"rules: {len(checker.rules)}  load: {load_ms:.0f} ms  replies: {len(replies)}  mean length: {chars:.0f} chars"
        f"  distinct sentences: {distinct:,}"
    )
    print(f"throughput: {len(replies) / total:,.0f} replies/s  ({findings / len(replies):.1f} findings per reply)")
    print(f"latency per reply: p50 {statistics.median(latencies):.3f} ms  p99 {p99:.3f} ms  max {latencies[-1]:.3f} ms")


if __name__ == "__main__":
    main()

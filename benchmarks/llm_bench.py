"""Embedded model latency: raw openai SDK against llama.cpp vs our LangChainChatModel, on a ~500-token prompt.

Run: `python benchmarks/llm_bench.py [--rounds 2] [--max-tokens 64] [--prompt-cache]`. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from copilot.llm import ChatMessage, openai_chat_model
from copilot.local_model import LocalModelServer, ensure_model_file
from copilot.settings import default_data_dir

# Static instructions first, so llama.cpp can reuse their KV cache across requests.
SYSTEM = """You are an assistant that drafts replies for customer-service agents. The agent will review,
edit and send your draft, so write only the reply itself, addressed to the customer.

How to write the reply:
1. Acknowledge the customer's feeling and the concrete problem in your first sentence, in your own words.
   Do not repeat their message back verbatim, and do not exaggerate or minimise what happened.
2. Apologise specifically for what went wrong ("I'm sorry your parcel arrived two days late"), not with
   an empty formula such as "we apologise for any inconvenience". One apology is enough.
3. Never blame the customer, another department, a courier or "the system". Take ownership on behalf
   of the company: "we" made the mistake, and "I" will fix it.
4. Do not be defensive. Do not explain policy before you have acknowledged the problem, and never use
   policy as the reason nothing can be done. If something is truly impossible, say what you can do.
5. Offer at most three concrete next steps, each with who does what and by when.
6. If the customer is angry, stay calm and warm; do not mirror sarcasm; do not lecture them about tone.
   If they threaten or abuse staff, set one calm boundary and keep helping with the issue.
7. If the message is vague, ask one or two precise questions instead of guessing.
8. If there are several issues, address each one in order, briefly.
9. Use the customer's name once if you know it. Match their language and a friendly, plain register.
10. Close with a specific follow-up: when they will hear from us next, and how to reach us directly.

Company guidance you may rely on (quote facts only from here):
- Late deliveries: we refund the shipping fee for any order that arrives after the promised date, and
  we can send a replacement by express courier at no cost if the customer prefers.
- Damaged items: the customer does not have to return a damaged item under 50 EUR; we send a
  replacement or refund within 3 working days of a photo being received.
- Billing errors: duplicate charges are reversed within 5 working days; the agent can confirm the
  reversal by email the same day.
- Escalation: any customer who has contacted us three times about the same issue is offered a direct
  call-back from a team lead within 24 hours.

Keep the reply under 150 words. Do not use bullet points unless there are several issues."""

CUSTOMER = [
    "This is the THIRD time I'm writing. My order #48213 was supposed to arrive last Monday, it's now "
    "Thursday, and your tracking page still says 'in transit'. Nobody has answered my emails. I'm done.",
    "Hi, the lamp I ordered arrived with a cracked base and I was also charged twice for it. Can you "
    "help me sort this out? I need it for my daughter's room by the weekend. Thanks, Priya",
]


@dataclass
class Sample:
    """Timings for one streamed reply."""

    first_token_s: float
    total_s: float
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        """Generation speed after the first token."""
        gen = self.total_s - self.first_token_s
        return (self.tokens - 1) / gen if self.tokens > 1 and gen > 0 else float("nan")


def _timed(pieces: Iterator[str]) -> Sample:
    began = time.perf_counter()
    first = None
    count = 0
    for piece in pieces:
        if not piece:
            continue
        if first is None:
            first = time.perf_counter() - began
        count += 1  # llama-cpp-python streams one token per chunk
    total = time.perf_counter() - began
    return Sample(first if first is not None else total, total, count)


def _messages(prefix: str, customer: str) -> list[ChatMessage]:
    return [ChatMessage("system", f"[{prefix}]\n{SYSTEM}"), ChatMessage("user", customer)]


def _prompt_tokens(server: LocalModelServer, messages: list[ChatMessage]) -> int:
    text = "\n".join(m.content for m in messages)
    request = urllib.request.Request(
        server.base_url.removesuffix("/v1") + "/extras/tokenize",
        data=json.dumps({"input": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return len(json.load(response)["tokens"])
    except OSError:
        return -1


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt-cache", action="store_true", help="start the server with its RAM prompt cache")
    args = parser.parse_args()

    began = time.perf_counter()
    model_path = ensure_model_file(default_data_dir() / "models")
    print(f"model file ready in {time.perf_counter() - began:.1f} s")

    import openai

    with LocalModelServer(model_path, prompt_cache=args.prompt_cache) as server:
        print(f"server ready in {server.started_s:.1f} s: {' '.join(server.command()[1:])}")
        print(f"prompt ≈ {_prompt_tokens(server, _messages('x' * 8, CUSTOMER[0]))} tokens (+ chat template)")
        raw = openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0, timeout=300)
        ours = openai_chat_model(model=server.model_name, base_url=server.base_url, api_key=None, timeout_s=300)

        def raw_stream(messages: list[ChatMessage]) -> Iterator[str]:
            stream = raw.chat.completions.create(
                model=server.model_name,
                messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                temperature=0.0,
                max_tokens=args.max_tokens,
                seed=1,
                stream=True,
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

        def ours_stream(messages: list[ChatMessage]) -> Iterator[str]:
            return ours.stream(messages, temperature=0.0, max_tokens=args.max_tokens, seed=1)

        clients: dict[str, Callable[[list[ChatMessage]], Iterator[str]]] = {"raw SDK": raw_stream, "ours": ours_stream}
        results: dict[tuple[str, str], list[Sample]] = {}
        _timed(raw_stream(_messages("warm-up", "Hello.")))  # loads weights into memory, not measured
        for round_no in range(args.rounds):
            for name, stream in clients.items():
                prefix = uuid.uuid4().hex[:8]  # a fresh first line: nothing of this prompt is cached
                cases = [
                    ("uncached", _messages(prefix, CUSTOMER[0])),
                    # same instructions, new customer message: only the tail after the shared prefix is computed
                    ("prefix cached", _messages(prefix, CUSTOMER[1])),
                ]
                for case, messages in cases:
                    sample = _timed(stream(messages))
                    results.setdefault((name, case), []).append(sample)
                    print(
                        f"  round {round_no + 1} {name:8} {case:14} first {sample.first_token_s:6.2f} s  "
                        f"total {sample.total_s:6.2f} s  {sample.tokens} tok"
                    )

    # Medians, plus the best run: on a shared 2-core machine the best run is the least disturbed one.
    print(
        f"\n{'client':10} {'case':15} {'first token s':>14} {'total s':>9} {'tokens':>7} {'tok/s':>7}"
        f" {'best first/total/tok/s':>24}"
    )
    medians: dict[tuple[str, str], tuple[float, float]] = {}
    for (name, case), samples in results.items():
        first = statistics.median(s.first_token_s for s in samples)
        total = statistics.median(s.total_s for s in samples)
        rate = statistics.median(s.tokens_per_s for s in samples)
        tokens = statistics.median(s.tokens for s in samples)
        medians[(name, case)] = (first, total)
        best = min(samples, key=lambda s: s.total_s)
        best_text = f"{best.first_token_s:.2f} / {best.total_s:.2f} / {best.tokens_per_s:.1f}"
        print(f"{name:10} {case:15} {first:14.2f} {total:9.2f} {tokens:7.0f} {rate:7.1f} {best_text:>24}")
    print()
    for case in ("uncached", "prefix cached"):
        raw_first, raw_total = medians[("raw SDK", case)]
        our_first, our_total = medians[("ours", case)]
        print(
            f"overhead ours/raw, {case:13}: first token {our_first / raw_first:.3f}x "
            f"({(our_first - raw_first) * 1000:+.0f} ms), total {our_total / raw_total:.3f}x "
            f"({(our_total - raw_total) * 1000:+.0f} ms)"
        )


if __name__ == "__main__":
    main()

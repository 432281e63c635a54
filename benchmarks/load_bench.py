"""Load: N agents at once through the Gradio API (gradio_client on loopback), bounded in count and time.

Run: python benchmarks/load_bench.py [--agents 20] [--requests 2] [--pace 0.02]
The model is the echo fake (its replies quote each request's REF token), paced to stand in for a busy model, so
the figures measure the app: queueing, streaming, the checker and retrieval. Prints throughput and latency.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copilot.assembly import build_copilot  # noqa: E402
from copilot.feedback import FeedbackStore  # noqa: E402
from copilot.settings import load_settings  # noqa: E402
from copilot.testing import echo_chat_model  # noqa: E402


def run_load(data_dir: Path, agents: int, requests: int, pace: float, deadline_s: float = 300) -> dict[str, Any]:
    """Start the app, send agents × requests drafts (+ one feedback each) concurrently, return the figures."""
    import socket

    from gradio_client import Client

    from copilot.ui import build_ui, launch

    settings = load_settings({"COPILOT_DATA_DIR": str(data_dir)})
    assembly = build_copilot(settings, chat=echo_chat_model(pace))
    demo = build_ui(assembly)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = launch(demo, "127.0.0.1", port)
    latencies: list[float] = []
    errors: list[str] = []
    mismatches: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s

    def agent(number: int) -> None:
        client = Client(url, verbose=False)
        for _ in range(requests):
            if time.monotonic() > stop_at:
                with lock:
                    errors.append(f"agent {number}: deadline passed")
                return
            ref = f"REF-{uuid.uuid4().hex[:10]}"
            message = f"My parcel {ref} is two weeks late and nobody answers my emails. Fix it now!"
            t = time.perf_counter()
            try:
                result = client.predict(message, "", "email", "neutral", api_name="/draft")
                stored = client.predict(
                    "used_as_is", result.get("draft", ""), result.get("draft", ""), "", ref, api_name="/feedback"
                )
            except Exception as exc:  # noqa: BLE001 - every failure is counted, whatever its type
                with lock:
                    errors.append(f"agent {number}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - t
            with lock:
                latencies.append(elapsed)
                if ref not in result.get("draft", "") or result.get("error"):
                    mismatches.append(f"{ref}: {result.get('draft', result)!r:.120}")
                if not stored.get("stored"):
                    errors.append(f"feedback for {ref} not stored: {stored}")

    started = time.perf_counter()
    threads = [threading.Thread(target=agent, args=(i,)) for i in range(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline_s + 30)
    wall = time.perf_counter() - started
    demo.close()
    assembly.close()
    records = FeedbackStore(settings.feedback_file).load()
    ordered = sorted(latencies)
    return {
        "requests": agents * requests,
        "completed": len(latencies),
        "errors": errors,
        "mismatches": mismatches,
        "feedback_records": len(records),
        "wall_s": wall,
        "throughput_rps": len(latencies) / wall if wall else 0.0,
        "p50_s": statistics.median(ordered) if ordered else 0.0,
        "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0,
        "max_s": ordered[-1] if ordered else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--pace", type=float, default=0.02, help="seconds per streamed chunk of the fake model")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="copilot-load-"))
    try:
        figures = run_load(data_dir, args.agents, args.requests, args.pace)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"{figures['completed']}/{figures['requests']} drafts from {args.agents} concurrent agents in "
        f"{figures['wall_s']:.1f} s: {figures['throughput_rps']:.2f} drafts/s; latency p50 {figures['p50_s']:.2f} s, "
        f"p95 {figures['p95_s']:.2f} s, max {figures['max_s']:.2f} s"
    )
    print(
        f"errors {len(figures['errors'])}, mixed-up drafts {len(figures['mismatches'])}, "
        f"feedback records stored {figures['feedback_records']}"
    )
    for line in (figures["errors"] + figures["mismatches"])[:10]:
        print("  ", line)


if __name__ == "__main__":
    main()

"""Web app startup time when the guidance index already exists (the language model is left out).

Builds the index once in a scratch data directory (not timed), then times, in a fresh process each round:
imports + build_copilot(with_model=False) + build_ui + launch, until the URL answers HTTP 200. Prints seconds per
round and the median; asserts nothing.

    python benchmarks/ui_startup_bench.py [--rounds 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from copilot.settings import OFFLINE_ENV as OFFLINE  # noqa: E402

# One timed start, run in a child so imports are cold (as for `copilot ui`); prints the phases as JSON.
CHILD = r"""
import json, socket, sys, time, urllib.request
t0 = time.perf_counter()
from copilot.assembly import build_copilot
from copilot.settings import load_settings
from copilot.ui import build_ui, launch
t_import = time.perf_counter()
settings = load_settings({"COPILOT_DATA_DIR": sys.argv[1]})
assembly = build_copilot(settings, with_model=False)
t_build = time.perf_counter()
demo = build_ui(assembly)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
url = launch(demo, "127.0.0.1", port)
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        time.sleep(0.05)
t_ready = time.perf_counter()
print(json.dumps({"imports": t_import - t0, "build_copilot": t_build - t_import, "ui_and_launch": t_ready - t_build,
                  "total": t_ready - t0, "notices": assembly.startup_notices}))
demo.close()
assembly.close()
"""


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, help="reuse this data directory (default: a scratch one)")
    args = parser.parse_args()
    env = {**os.environ, **OFFLINE}
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        print(f"Preparing the index in {data_dir} (not timed)…", flush=True)
        subprocess.run([sys.executable, "-c", CHILD, str(data_dir)], env=env, check=True, capture_output=True)
        totals = []
        for number in range(1, args.rounds + 1):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(data_dir)], env=env, check=True, capture_output=True, text=True
            )
            phases = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
            if phases["notices"]:
                print(f"  warning: the index was rebuilt in round {number}: {phases['notices']}")
            totals.append(phases["total"])
            print(
                f"round {number}: {phases['total']:.1f} s until the URL answers (imports {phases['imports']:.1f} s, "
                f"build_copilot {phases['build_copilot']:.1f} s, UI + launch {phases['ui_and_launch']:.1f} s)",
                flush=True,
            )
        print(
            f"median startup with an existing index, no model: {statistics.median(totals):.1f} s "
            f"over {len(totals)} round(s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

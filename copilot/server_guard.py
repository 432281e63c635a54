"""Runs the model server as its child and ends it when the app that started it is gone, even after a SIGKILL.

    python -m copilot.server_guard PARENT_PID PID_FILE -- COMMAND...

The app cannot clean up after a SIGKILL, and llama.cpp's server runs in its own process group (so a Ctrl-C
meant for the terminal does not kill it mid-answer); this small guard notices the parent is gone and stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType


def main(argv: list[str]) -> int:
    """Start the command, write its pid, and supervise it until it exits or the parent disappears."""
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m copilot.server_guard PARENT_PID PID_FILE -- COMMAND...", file=sys.stderr)
        return 2
    parent, pid_file, command = int(argv[0]), Path(argv[1]), argv[3:]
    child = subprocess.Popen(command)
    pid_file.write_text(str(child.pid), encoding="utf-8")

    def stop(signum: int | None = None, frame: FrameType | None = None) -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        code = child.poll()
        if code is not None:
            return code
        if os.getppid() != parent:  # re-parented: the app died without stopping us
            stop()
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""How long checking a running site takes (target: one command, under 20 s for two hosts).

    python bench/check_time.py [--inventory inventory/lab.py] [--runs 5] [--chats N]

Times, --runs times each and as a person runs them (own processes, SSH connections included), against a site that
is already deployed: the compliance suite alone, and `tools/check.py` (`make check`: drift, compliance, latency with
its default chats, or --chats per path). Prints median, min and max of both. Every run must pass: a failing control
or a drifted host would time a different amount of work.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 20.0


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    process = subprocess.run(command, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        print(process.stdout[-3000:], file=sys.stderr)
        raise SystemExit(f"{' '.join(command[1:3])} failed (exit {process.returncode}): nothing to time")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chats", type=int, help="latency chats per path (default: make check's)")
    args = parser.parse_args()
    chats = [f"--chats={args.chats}"] if args.chats else []
    bin_dir = Path(sys.executable).parent
    commands = {
        "compliance suite": [str(bin_dir / "pytest"), "tests/compliance", "--inventory", args.inventory, "-q",
                             "-p", "no:cacheprovider"],
        "make check": [sys.executable, "tools/check.py", "--inventory", args.inventory, *chats],
    }  # fmt: skip
    durations: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):  # interleaved: a slow minute of the machine weighs on both alike
        for name, command in commands.items():
            durations[name].append(timed(command))
    print(f"against {args.inventory}, {args.runs} runs each (target {TARGET_S:.0f} s):")
    for name, times in durations.items():
        median = statistics.median(times)
        print(
            f"  {name:<16} median {median:5.2f} s  min {min(times):5.2f} s  max {max(times):5.2f} s"
            f"  median/target {median / TARGET_S:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

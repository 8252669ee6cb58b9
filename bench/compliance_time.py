"""How long the compliance suite takes against a running site (target: <= 20 s for two hosts).

    python bench/compliance_time.py [--inventory inventory/lab.py] [--runs 5]

Runs the suite as a person does (its own pytest process, connections included) --runs times against a site
that is already deployed, and prints the median, min and max. Every run must pass: a failing control would
time a different amount of work.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pytest = str(Path(sys.executable).with_name("pytest"))
    durations = []
    for _ in range(args.runs):
        started = time.perf_counter()
        process = subprocess.run(
            [pytest, "tests/compliance", "--inventory", args.inventory, "-q", "-p", "no:cacheprovider"],
            cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        durations.append(time.perf_counter() - started)
        if process.returncode != 0:
            print(process.stdout[-3000:], file=sys.stderr)
            return 1
    median = statistics.median(durations)
    print(f"compliance suite against {args.inventory}, {args.runs} runs:")
    print(f"  median {median:.2f} s  min {min(durations):.2f} s  max {max(durations):.2f} s")
    print(f"  target {TARGET_S:.1f} s: median/target = {median / TARGET_S:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

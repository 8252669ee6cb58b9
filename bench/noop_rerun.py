"""How long a re-run of deploys/full.py takes on a converged lab (target: <= 5 s for two hosts).

    python bench/noop_rerun.py [--runs 7] [--keep]

Brings the lab up if it is not, converges it once, then times --runs re-runs of the real pyinfra
CLI, each of which must report zero changes, and prints the median, min and max.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.core import INVENTORY, Lab  # noqa: E402
from lab.runner import REPO, run_pyinfra  # noqa: E402

TARGET_S = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="leave a lab this script brought up running")
    args = parser.parse_args()
    inventory = str(INVENTORY.relative_to(REPO))

    lab = Lab(log=lambda message: print(message, file=sys.stderr, flush=True))
    with lab.locked():
        was_up = all(row["ssh"] == "open" for row in lab.status())
        lab.up()
        try:
            run_pyinfra(inventory, "deploys/full.py")
            durations = []
            for _ in range(args.runs):
                started = time.perf_counter()
                result = run_pyinfra(inventory, "deploys/full.py")
                durations.append(time.perf_counter() - started)
                if result.changed:
                    print(f"not a no-op: {sorted(result.changed)}", file=sys.stderr)
                    return 1
        finally:
            if not was_up and not args.keep:
                lab.down()

    median = statistics.median(durations)
    print(f"no-op re-run of deploys/full.py on {len(lab.hosts)} lab hosts, {args.runs} runs:")
    print(f"  median {median:.2f} s  min {min(durations):.2f} s  max {max(durations):.2f} s")
    print(f"  target {TARGET_S:.1f} s: median/target = {median / TARGET_S:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

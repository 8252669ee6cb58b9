"""How a no-op re-run scales with hosts: deploys/base.py on 2, 4 and 8 lab hosts (goal: 8 hosts <= 1.5 x 2 hosts).

    python bench/noop_scaling.py [--runs 5] [--keep]

Brings up the eight hosts of inventory/lab_many.py (the base role only, so the lab stays small), converges them
once, checks that a re-run on all eight changes nothing, then has farm-bench time the pyinfra CLI's re-run limited
to 4 and to 8 hosts, each paired against the re-run limited to 2 (A B A B ..., the ratio taken pair by pair, so
the machine's drift cancels), and prints farm-bench's reports: quote the medians. Leaves a lab it brought up
running only with --keep (`python -m lab down` removes it).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.core import Lab  # noqa: E402
from lab.runner import PYINFRA, REPO, run_pyinfra  # noqa: E402

INVENTORY = "inventory/lab_many.py"
DEPLOY = "deploys/base.py"
GOAL_RATIO = 1.5


def rerun_command(hosts: list[str]) -> list[str]:
    limits = [arg for name in hosts for arg in ("--limit", name)]
    return [PYINFRA, "-y", INVENTORY, DEPLOY, *limits]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave a lab this script brought up running")
    args = parser.parse_args()

    lab = Lab(log=lambda message: print(message, file=sys.stderr, flush=True), inventory=REPO / INVENTORY)
    names = [host.name for host in lab.hosts]
    with lab.locked():
        was_up = all(row["ssh"] == "open" for row in lab.status())
        lab.up()
        try:
            run_pyinfra(INVENTORY, DEPLOY)
            changed = run_pyinfra(INVENTORY, DEPLOY).changed
            if changed:
                print(f"not a no-op: {sorted(changed)}", file=sys.stderr)
                return 1
            two = shlex.join(rerun_command(names[:2]))
            for count in (4, 8):
                print(f"\n## deploys/base.py no-op re-run: {count} hosts (A) against 2 hosts (B)", flush=True)
                subprocess.run(
                    ["farm-bench", "-n", str(args.runs), "--warmup", "1", "--timeout", "1800", "--vs", two, "--",
                     *rerun_command(names[:count])],
                    cwd=REPO, check=True,
                )  # fmt: skip
            print(f"\ngoal: the 8-host median ratio A/B <= {GOAL_RATIO}")
        finally:
            if not was_up and not args.keep:
                lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())

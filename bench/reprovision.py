"""How long a swapped backend takes to reprovision: the box replaced by a blank one with a new host key, then one
deploy of the whole site, with the control machine's wheelhouse warm (goal: <= 3 min on the lab).

    python bench/reprovision.py [--runs 3]

Against a deployed lab (inventory/lab.py). Each run: lab-back's container replaced by a blank one at the same
address (its new host key trusted, as `make enrol` would after checking the fingerprint), then
`pyinfra inventory/lab.py deploys/full.py` timed, then a re-run that must change nothing. The lab model is 4.6 MB,
so its copy is inside the figure but negligible; a reference model's copy is not (~45 GiB over the LAN). Prints each
run and the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.core import Lab  # noqa: E402
from lab.runner import run_pyinfra  # noqa: E402

INVENTORY = "inventory/lab.py"
BACKEND = "lab-back"
GOAL_S = 180


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    lab = Lab(log=lambda message: print(message, file=sys.stderr, flush=True))
    seconds = []
    with lab.locked():
        if not all(row["ssh"] == "open" for row in lab.status()):
            print("the lab is not up: python -m lab up && pyinfra -y inventory/lab.py deploys/full.py", file=sys.stderr)
            return 2
        for run in range(1, args.runs + 1):
            lab.recreate(BACKEND, trust=True)
            started = time.perf_counter()
            result = run_pyinfra(INVENTORY, "deploys/full.py")
            seconds.append(time.perf_counter() - started)
            if "Model server | Install llama-cpp-python" not in " ".join(result.changed_ops(BACKEND)):
                print("the backend was not reprovisioned", file=sys.stderr)
                return 1
            if run_pyinfra(INVENTORY, "deploys/full.py").changed:
                print("the re-run after the reprovision changed something", file=sys.stderr)
                return 1
            print(f"run {run}: {seconds[-1]:.1f} s", flush=True)
    median = statistics.median(seconds)
    print(f"median {median:.1f} s over {len(seconds)} runs (min {min(seconds):.1f}, max {max(seconds):.1f}); "
          f"goal <= {GOAL_S} s: {'met' if median <= GOAL_S else 'missed'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

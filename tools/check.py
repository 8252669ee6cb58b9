"""Is a running site still what was deployed, and does it meet its latency targets? One command, one answer.

    python tools/check.py --inventory inventory/site.py [--no-latency]      (make check INVENTORY=...)

1. drift: `pyinfra INVENTORY deploys/full.py --dry` must plan zero changes;
2. compliance: the controls in tests/compliance against every inventory host;
3. latency: tests/latency, streamed chats through the gateway and straight to the backend, against the
   inventory's targets.
Each step runs even when an earlier one failed; the exit code is non-zero when any failed, and the last lines
say which. JUnit XML of both suites lands in --reports (default .check/).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def drift(inventory: str) -> tuple[bool, str]:
    """The operations a deploy would change now; none on a site that is as deployed."""
    process = subprocess.run(
        [str(BIN / "pyinfra"), "--dry", "--json", inventory, "deploys/full.py"],
        cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900,
    )  # fmt: skip
    if process.returncode != 0:
        return False, f"pyinfra failed (exit {process.returncode}): {process.stderr.strip().splitlines()[-1:]}"
    # The plan: "hosts_with_change" is certain; "..._conditional_change" depends on an earlier change (a restart
    # after a config write), so with no certain change there is none of those either.
    plan = json.loads(process.stdout)["plan"]
    changes = sorted((host, op["name"]) for op in plan for host in op["hosts_with_change"])
    if not changes:
        return True, "no drift: a deploy would change nothing"
    listed = "\n".join(f"      {host}: {name}" for host, name in changes)
    return False, f"{len(changes)} operations would change:\n{listed}"


def suite(path: str, inventory: str, report: Path, *extra: str) -> tuple[bool, str]:
    process = subprocess.run(
        [str(BIN / "pytest"), path, "--inventory", inventory, f"--junitxml={report}", "-q", "-rfE",
         "-p", "no:cacheprovider", *extra],
        cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return process.returncode == 0, "passed" if process.returncode == 0 else f"failed (see above and {report})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py")
    parser.add_argument("--reports", default=".check", help="directory for the JUnit XML reports")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency suite (it loads the model)")
    args = parser.parse_args()
    reports = REPO / args.reports
    reports.mkdir(parents=True, exist_ok=True)

    results = []
    started = time.perf_counter()
    print("== drift", flush=True)
    ok, detail = drift(args.inventory)
    print(f"   {detail}", flush=True)
    results.append(("drift", ok, detail.splitlines()[0]))
    print("== compliance", flush=True)
    ok, detail = suite("tests/compliance", args.inventory, reports / "compliance.xml")
    results.append(("compliance", ok, detail))
    if not args.no_latency:
        print("== latency", flush=True)
        ok, detail = suite("tests/latency", args.inventory, reports / "latency.xml")
        results.append(("latency", ok, detail))

    print(f"\n== {args.inventory}, {time.perf_counter() - started:.1f} s")
    for name, ok, detail in results:
        print(f"   {'ok  ' if ok else 'FAIL'}  {name}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

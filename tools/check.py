"""Is a running site still what was deployed, and does it meet its latency targets? One command, one answer.

    python tools/check.py --inventory inventory/site.py [--no-latency] [--chats N] [--deep]   (make check INVENTORY=...)

1. drift: `pyinfra INVENTORY deploys/full.py --dry` must plan zero changes;
2. compliance: the controls in tests/compliance against every inventory host;
3. latency: tests/latency, streamed chats through the gateway and straight to the backend, against the
   inventory's targets; with --deep (make check-deep) also its checks that take minutes: the prompt cache's answers
   against fresh evaluations on every backend, a prompt near the context limit through the gateway, and people
   chatting at once.
Drift runs beside the two suites, which share one pytest session; the exit code is non-zero when any step
failed, and the last lines say which. The suites' JUnit XML lands in --reports (default .check/check.xml).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree

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


SUITES = {"compliance": "tests/compliance", "latency": "tests/latency"}
# Per path, as the suite alone. The inter-token p99 of 150 gateway gaps (10 chats) took two stalled gaps to fail, and
# OpenClaw stalls one gap in ~500 over 40 ms on the lab even when idle: ~4 % of checks failed on nothing wrong, one of
# them in CI. Of 300 gaps it takes four (~0.3 %). A gateway chat takes ~0.6 s on the lab: ~6 s more per check.
CHECK_CHATS = 20


def suites(inventory: str, report: Path, names: list[str], *extra: str) -> dict[str, tuple[bool, str]]:
    """The suites in one pytest session (one start-up, one set of SSH connections); the latency suite's chats
    come last, after the compliance suite's audit has left the frontend. Each suite's verdict from the JUnit XML."""
    report.unlink(missing_ok=True)
    process = subprocess.run(
        [str(BIN / "pytest"), *(SUITES[name] for name in names), "--inventory", inventory, f"--junitxml={report}",
         "-q", "-rfE", "-p", "no:cacheprovider", *extra],
        cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if process.returncode not in (0, 1) or not report.is_file():  # interrupted, a usage or an internal error
        return {name: (False, f"pytest ended with exit {process.returncode} (see above)") for name in names}
    failed = dict.fromkeys(names, 0)
    cases = dict.fromkeys(names, 0)
    for case in ElementTree.parse(report).iter("testcase"):
        name = next((n for n in names if case.get("classname", "").startswith(SUITES[n].replace("/", "."))), None)
        if name is None:
            continue
        cases[name] += 1
        failed[name] += any(child.tag in ("failure", "error") for child in case)
    return {
        name: (False, f"{failed[name]} of {cases[name]} failed (see above and {report})")
        if failed[name] or not cases[name]
        else (True, f"{cases[name]} passed or not applicable")
        for name in names
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py")
    parser.add_argument("--reports", default=".check", help="directory for the JUnit XML report")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency suite (it loads the model)")
    parser.add_argument(
        "--chats",
        type=int,
        default=CHECK_CHATS,
        help=f"latency: chats per path (default {CHECK_CHATS}; the suite alone runs 20)",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="latency: also the checks that take minutes (the prompt cache's answers, the longest prompt)",
    )
    args = parser.parse_args()
    if args.deep and args.no_latency:
        parser.error("--deep adds to the latency suite, which --no-latency leaves out")
    reports = REPO / args.reports
    reports.mkdir(parents=True, exist_ok=True)
    names = ["compliance"] if args.no_latency else ["compliance", "latency"]

    started = time.perf_counter()
    # Drift is pyinfra reading facts over SSH, beside the suites: the check takes as long as the longer of the two.
    with ThreadPoolExecutor(max_workers=1) as pool:
        planned = pool.submit(drift, args.inventory)
        print(f"== {' and '.join(names)}", flush=True)
        # tests/latency's conftest adds the option, so it is given only with that suite.
        extra = [] if args.no_latency else [f"--chats={args.chats}", *(["--deep"] if args.deep else [])]
        verdicts = suites(args.inventory, reports / "check.xml", names, *extra)
        print("== drift", flush=True)
        drift_ok, drift_detail = planned.result()
    print(f"   {drift_detail}", flush=True)
    results = [("drift", drift_ok, drift_detail.splitlines()[0])]
    results += [(name, ok, detail) for name, (ok, detail) in verdicts.items()]

    print(f"\n== {args.inventory}, {time.perf_counter() - started:.1f} s")
    for name, ok, detail in results:
        print(f"   {'ok  ' if ok else 'FAIL'}  {name}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

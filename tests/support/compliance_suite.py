"""The compliance suite run as a person runs it, against the lab, and the wait for a settled site before it."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from lab.core import INVENTORY
from lab.runner import REPO
from roles.monitor.alerts import WATCHDOG
from tests.support.prometheus import alertmanager_alerts, api, prometheus_url

BIN = Path(sys.executable).parent
LAB_INVENTORY = str(INVENTORY.relative_to(REPO))


def compliance(
    tmp_path, inventory: str = LAB_INVENTORY, only: tuple[str, str] | None = None
) -> tuple[int, set[tuple[str, str]], set[tuple[str, str]], float]:
    """Run the suite, or only one control on one host (``only``: its ID and the host's name); (exit code, failed
    (control, host), passed (control, host), seconds)."""
    report = tmp_path / f"compliance-{time.monotonic_ns()}.xml"
    started = time.perf_counter()
    process = subprocess.run(
        [str(BIN / "pytest"), "tests/compliance", "--inventory", inventory, f"--junitxml={report}", "-q",
         "-p", "no:cacheprovider", *(["-k", f"{only[0].replace('-', '_')}_ and {only[1]}"] if only else [])],
        cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    print(process.stdout[-4000:])
    failed, passed = set(), set()
    for _, properties, outcome in junit_cases(report):
        if outcome != "skipped":
            (failed if outcome == "failed" else passed).add((properties.get("control"), properties.get("host", "*")))
    return process.returncode, failed, passed, seconds


def junit_cases(report: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """Each case of a JUnit report: its name, its properties (a control's ID and host) and how it ended, "skipped"
    (also when it then failed), "failed" (a failure or an error) or "passed"."""
    for case in ET.parse(report).iter("testcase"):
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "passed"
        yield case.get("name"), {p.get("name"): p.get("value") for p in case.iter("property")}, outcome


def settled(site) -> bool:
    """Both probe paths succeeded in their last round, as Prometheus saw it (not yet: while it starts, 503), and
    the Watchdog is in Alertmanager (Prometheus sends it again a minute after an Alertmanager that was not up yet)."""
    try:
        result = api(prometheus_url(site), "query", query="min(clawlan_probe_success)")["result"]
        return bool(result) and float(result[0]["value"][1]) == 1 and bool(alertmanager_alerts(site, WATCHDOG))
    except OSError:  # urllib's HTTPError and URLError
        return False


def wait_until_settled(site, timeout_s: float = 240) -> None:
    """Until the site is settled (or the time is up; the suite then says what fails)."""
    deadline = time.monotonic() + timeout_s
    while not settled(site) and time.monotonic() < deadline:
        time.sleep(2)

"""The compliance suite: is a running site still what its inventory says it is?

    pytest tests/compliance --inventory inventory/site.py --junitxml compliance.xml

Hosts, their roles and how to reach them come from the pyinfra inventory the deploy used (SSH with paramiko,
host keys checked against the inventory's known_hosts). Each test is a control in the InSpec manner: a stable
ID in its name (``test_BASE_05_...``), a title and an impact in its ``@control`` marker, the rationale in its
docstring. Controls run once per inventory host; where a control does not apply to a host's role it is
skipped with the reason. The run ends with a table (control, host, result, reason).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from roles.common.names import ROLE_GROUPS
from roles.gateway.config import AUDIT_MAX_AGE_S, AUDIT_PROGRAM, AUDIT_REPORT, AUDIT_UNIT
from roles.inventory.load import load_inventory, site_from_inventory
from tests.support.hosts import remote_host

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    impact: float  # 0.0-1.0: how bad a failure is for the appliance (InSpec's scale)
    roles: tuple[str, ...]


def control(control_id: str, title: str, impact: float, roles: Iterable[str] = ROLE_GROUPS):
    """Mark a test as the control ``control_id``, applying to hosts in ``roles``."""
    if not 0.0 <= impact <= 1.0:
        raise ValueError(f"{control_id}: impact must be within 0.0-1.0")
    return pytest.mark.control(Control(control_id, title, impact, tuple(roles)))


def pytest_addoption(parser):
    with contextlib.suppress(ValueError):  # the latency suite's conftest may have added it first
        parser.addoption(
            "--inventory",
            default=os.environ.get("CLAWLAN_INVENTORY", "inventory/lab.py"),
            help="the pyinfra inventory file of the site to check (default: the lab)",
        )


_inventory_cache: dict[str, object] = {}


def _inventory(config):
    path = str((REPO / config.getoption("--inventory")).resolve())
    if path not in _inventory_cache:
        _inventory_cache[path] = load_inventory(path, cwd=str(REPO))
    return _inventory_cache[path]


def pytest_generate_tests(metafunc):
    """Every control runs once per inventory host: the host list is the inventory's, never a second one."""
    if "host_name" in metafunc.fixturenames:
        names = [host.name for host in _inventory(metafunc.config)]
        metafunc.parametrize("host_name", names, scope="session")


def pytest_collection_modifyitems(items):
    """Controls that wait for the background gateway checks go last, so everything else runs meanwhile."""
    items.sort(key=lambda item: "gateway_audit" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def inventory(request):
    return _inventory(request.config)


@pytest.fixture(scope="session")
def site(inventory):
    return site_from_inventory(inventory)


@pytest.fixture(scope="session")
def connections(inventory):
    """One SSH connection per host for the whole run."""
    return {host.name: remote_host(host) for host in inventory}


# The audit loads and validates the configuration first: a configuration openclaw rejects ends it with exit 1 and
# {"ok": false, "issues": [...]}, so one audit answers GW-04 and GW-05. It costs ~10 s of Node, so the frontend runs
# it (after a deploy that changed the gateway, and hourly) and keeps the report; the suite reads that report while
# it speaks for the gateway as it is now, and otherwise has the unit run the audit again and reads the new one.
_SHOW_AUDIT = f"python3 {AUDIT_PROGRAM} show {AUDIT_REPORT} --max-age {AUDIT_MAX_AGE_S}"
# A unit that failed leaves the old report behind: only a current one is shown, or nothing (with the reason).
GATEWAY_AUDIT = f"{_SHOW_AUDIT} 2>/dev/null || {{ systemctl restart {AUDIT_UNIT}.service && {_SHOW_AUDIT}; }}"


@pytest.fixture(scope="session", autouse=True)
def _gateway_audits_started(inventory, site):
    """The audit's report from each frontend, fetched on connections of their own while the other controls run:
    when it is stale, the audit runs again (~10 s)."""
    frontends = {h.name for h in site.topology.hosts if h.role == "frontend"}
    pool = ThreadPoolExecutor(max_workers=max(1, len(frontends)))
    futures = {
        host.name: pool.submit(lambda h=host: remote_host(h).run(GATEWAY_AUDIT))
        for host in inventory
        if host.name in frontends
    }
    yield futures
    pool.shutdown(wait=True)


@pytest.fixture
def spec(site, host_name):
    return site.topology.host(host_name)


@pytest.fixture
def host(connections, host_name):
    return connections[host_name]


@pytest.fixture(autouse=True)
def _applies(request, record_property):
    marker = request.node.get_closest_marker("control")
    if marker is None:
        return
    item: Control = marker.args[0]
    record_property("control", item.id)
    record_property("title", item.title)
    record_property("impact", item.impact)
    if "host_name" in request.fixturenames:
        host_name = request.getfixturevalue("host_name")
        record_property("host", host_name)
        role = request.getfixturevalue("site").topology.host(host_name).role
        if role not in item.roles:
            pytest.skip(f"n/a: applies to {' and '.join(item.roles)} hosts")


_RESULTS: list[tuple[str, str, str, float, str]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("control")
    if marker is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    control_ = marker.args[0]
    host_name = getattr(getattr(item, "callspec", None), "params", {}).get("host_name", "*")
    if report.skipped:
        result, reason = "n/a", str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed:
        result, reason = "FAIL", _reason(report)
    else:
        result, reason = "pass", ""
    label = control_.id + _variant(item)
    _RESULTS.append((label, host_name, result, control_.impact, reason or control_.title))


def _variant(item) -> str:
    """The parameter besides the host that tells one case of a control from another (a sysctl key, a port)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    others = [str(value) for key, value in params.items() if key != "host_name"]
    return f" {'/'.join(others)}" if others else ""


def _reason(report) -> str:
    message = getattr(report.longrepr, "reprcrash", None)
    text = message.message if message else str(report.longrepr)
    first = text.strip().splitlines()[0] if text.strip() else "failed"
    return first[:160]


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("compliance")
    width = max(len(row[0]) for row in _RESULTS)
    hosts_width = max(len(row[1]) for row in _RESULTS)
    write(f"{'control':<{width}}  {'host':<{hosts_width}}  result  impact  title or reason")
    order = {"FAIL": 0, "pass": 1, "n/a": 2}
    for label, host_name, result, impact, reason in sorted(_RESULTS, key=lambda r: (order[r[2]], r[0], r[1])):
        write(f"{label:<{width}}  {host_name:<{hosts_width}}  {result:<6}  {impact:<6.1f}  {reason}")
    failed = sum(1 for row in _RESULTS if row[2] == "FAIL")
    passed = sum(1 for row in _RESULTS if row[2] == "pass")
    write(f"{failed} failed, {passed} passed, {len(_RESULTS) - failed - passed} not applicable")

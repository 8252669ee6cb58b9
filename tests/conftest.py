"""The whole suite's order and its cost: unit tests first (a broken one stops the run before the lab is built), then
the end-to-end modules, each one's wall time reported at the end against its budget.

A budget is a report, not a timed assertion: a module over it is named in the summary, so a slow change is seen in
the run that made it, not at the end of the week.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

# Minutes of wall time per e2e module (session fixtures, such as the lab's first deploy, count toward the module that
# first needs them). Their sum is the suite's goal on a 2-core machine with the lab image and builds cached.
BUDGET_MIN = {
    "test_01_base.py": 2.0,
    "test_02_backend.py": 1.5,
    "test_03_egress.py": 0.5,
    "test_04_gateway.py": 3.0,
    "test_05_monitor.py": 1.0,
    "test_06_compliance.py": 3.0,
    "test_07_engine.py": 2.0,
    "test_08_scaleout.py": 2.0,
    "test_09_rebuild.py": 3.5,
    "test_10_lan.py": 1.5,
    "test_11_faults.py": 4.0,
    "unit": 1.0,
}

_spent: dict[str, float] = defaultdict(float)
_counted: dict[str, int] = defaultdict(int)
_started: dict[str, float] = {}
_unit_failures: list[str] = []


def _module(item_or_nodeid) -> str:
    nodeid = item_or_nodeid if isinstance(item_or_nodeid, str) else item_or_nodeid.nodeid
    path = nodeid.split("::", 1)[0]
    return "unit" if path.startswith("tests/unit/") else path.rsplit("/", 1)[-1]


def _is_e2e(item) -> bool:
    return "/tests/e2e/" in str(item.path)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_is_e2e)  # stable: each group keeps its own order


def pytest_runtest_setup(item):
    if _is_e2e(item) and _unit_failures:
        pytest.exit(f"{len(_unit_failures)} unit test(s) failed: the lab is not built ({_unit_failures[0]})", 1)


def pytest_runtest_logstart(nodeid, location):
    _started[nodeid] = time.monotonic()


def pytest_runtest_logfinish(nodeid, location):
    module = _module(nodeid)
    _spent[module] += time.monotonic() - _started.pop(nodeid, time.monotonic())
    _counted[module] += 1


def pytest_runtest_logreport(report):
    if report.failed and _module(report.nodeid) == "unit":
        _unit_failures.append(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if not any(module in BUDGET_MIN for module in _spent):  # the compliance and latency suites are not budgeted here
        return
    write = terminalreporter.write_line
    terminalreporter.section("time per module (budgets: tests/conftest.py)")
    write(f"{'module':<24} {'tests':>5} {'minutes':>8} {'budget':>7}")
    for module in sorted(_spent, key=lambda name: (name != "unit", name)):
        budget = BUDGET_MIN.get(module)
        over = "  OVER" if budget is not None and _spent[module] / 60 > budget else ""
        shown = f"{budget:>7.1f}" if budget is not None else f"{'-':>7}"
        write(f"{module:<24} {_counted[module]:>5} {_spent[module] / 60:>8.1f} {shown}{over}")
    total = sum(_spent.values()) / 60
    write(f"{'total':<24} {sum(_counted.values()):>5} {total:>8.1f} {sum(BUDGET_MIN.values()):>7.1f}")

"""The lab, brought up from nothing for the session and torn down after it.

The suite owns the lab while it runs (a `python -m lab` command meanwhile says it is busy), and it
starts from bare hosts: a demo lab left running is replaced. CLAWLAN_KEEP_LAB=1 leaves it up after.
CLAWLAN_REUSE_LAB=1 (for working on one suite) keeps a running lab instead of rebuilding it; a suite that
assumes bare hosts may then fail, and CI never sets it.

What a finished host must be (a mode, a listener, a unit's state, a score) is stated once, by a control of the
compliance suite (tests/compliance): these tests call that control (``run_control``) instead of restating it, and
keep what only they can do: deploys, changes, breakage, restarts, upgrades, refusals over the network.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
import urllib.parse

import pytest

from lab.core import INVENTORY, Lab
from lab.runner import REPO, run_pyinfra
from roles.inventory.load import load_inventory, site_from_inventory
from tests.support.alert_receiver import AlertReceiver
from tests.support.hosts import remote_host

LAB_INVENTORY = str(INVENTORY.relative_to(REPO))


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def lab():
    lab = Lab(log=lambda message: print(message, file=sys.stderr, flush=True))
    with lab.locked():
        running = all(row["ssh"] == "open" for row in lab.status())
        if not (os.environ.get("CLAWLAN_REUSE_LAB") and running):
            lab.down()
            lab.up()
        try:
            yield lab
        finally:
            if not os.environ.get("CLAWLAN_KEEP_LAB"):
                lab.down()


@pytest.fixture(scope="session")
def inventory():
    return load_inventory(str(INVENTORY), cwd=str(REPO))


@pytest.fixture(scope="session")
def site(inventory):
    return site_from_inventory(inventory)


@pytest.fixture(scope="session")
def first_deploy(lab):
    """The whole appliance deployed once onto the bare lab hosts."""
    return run_pyinfra(LAB_INVENTORY, "deploys/full.py")


@pytest.fixture(scope="module")
def hosts(first_deploy, inventory):
    """testinfra connections to the deployed lab hosts, fresh for each module: a module may replace the boxes
    (test_09 does), and a connection to a box that is gone stays dead."""
    return {host.name: remote_host(host) for host in inventory}


@pytest.fixture(scope="session")
def alert_receiver(lab, inventory):
    """The lab's person: the webhook the lab inventory's Alertmanager sends to (monitor_alert_webhook_url), on the
    lab network's gateway address, which this machine holds."""
    url = urllib.parse.urlsplit(next(iter(inventory)).data.monitor_alert_webhook_url)
    with AlertReceiver(url.hostname, url.port) as receiver:
        yield receiver


def deploy(*args: str, check: bool = True):
    return run_pyinfra(LAB_INVENTORY, "deploys/full.py", *args, check=check)


def status() -> subprocess.CompletedProcess:
    """make status against the lab, as a person runs it (tools/status.py)."""
    return subprocess.run(
        [sys.executable, "tools/status.py", "--inventory", LAB_INVENTORY],
        cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip


def control_of(function):
    """The compliance ``Control`` (ID, title, impact, roles) a control function is marked with."""
    return next(mark.args[0] for mark in getattr(function, "pytestmark", ()) if mark.name == "control")


def run_control(function, host, site, host_name: str, **params):
    """Run a compliance control on one host with the fixtures it takes (``host``, ``site``, ``host_name``, ``spec``)
    and its own parameters (``pair``, ``unit``); it raises AssertionError when the host is not what it states."""
    given = {"host": host, "site": site, "host_name": host_name, "spec": site.topology.host(host_name), **params}
    return function(**{name: given[name] for name in inspect.signature(function).parameters})


def wait_until_passes(function, *args, timeout_s: float):
    """Call a control until it passes, once a second; after ``timeout_s`` its last AssertionError fails the test.

    For what Prometheus shows: it lags a scrape (or a probe round) behind the hosts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return function(*args)
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)

"""The lab, brought up from nothing for the session and torn down after it.

The suite owns the lab while it runs (a `python -m lab` command meanwhile says it is busy), and it
starts from bare hosts: a demo lab left running is replaced. CLAWLAN_KEEP_LAB=1 leaves it up after.
CLAWLAN_REUSE_LAB=1 (for working on one suite) keeps a running lab instead of rebuilding it; a suite that
assumes bare hosts may then fail, and CI never sets it.
"""

from __future__ import annotations

import os
import sys

import pytest

from lab.core import INVENTORY, Lab
from lab.runner import REPO, run_pyinfra
from roles.inventory import load_inventory, site_from_inventory
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


@pytest.fixture(scope="session")
def hosts(first_deploy, inventory):
    """testinfra connections to the deployed lab hosts."""
    return {host.name: remote_host(host) for host in inventory}


def deploy(*args: str, check: bool = True):
    return run_pyinfra(LAB_INVENTORY, "deploys/full.py", *args, check=check)

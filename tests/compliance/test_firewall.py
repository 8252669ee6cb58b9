"""FW: each box's own firewall (role firewall): what it admits from the LAN, and that it stays that way."""

from __future__ import annotations

import re

import pytest

from roles.firewall.config import LOADED, PREVIOUS, ROLLBACK_UNIT, RULES, TABLE, UNIT
from tests.compliance.conftest import control
from tests.support.remote import HARDENING_LIMIT, hardening_exposure, unit_property

# One rule per opening, as nft lists it: `tcp dport 22 ip saddr { 10.0.0.0/8, ... } accept comment "ssh"`.
ACCEPT_RULE = re.compile(r"tcp dport (\d+) ip saddr (\{ [^}]* \}|\S+) accept")


def live_table(host) -> str:
    """The live table, stateless: rules without their counters' values."""
    return host.check_output(f"nft -s list table inet {TABLE}")


@control("FW-01", "The box's firewall table is live and is the one deployed", impact=0.9)
def test_FW_01_firewall_live_as_deployed(host, site, host_name):
    """A flushed table, a rule added by hand or a ruleset an admin loaded and forgot leaves the box open (or shut)
    without anyone knowing: the live table must be what the deploy confirmed, from what the inventory says."""
    assert host.file(RULES).content_string == site.firewall_config(host_name).ruleset(), f"{RULES} is not the site's"
    assert live_table(host) + "\n" == host.file(LOADED).content_string, "the live table drifted from the deployed one"


@control("FW-02", "Inbound from the LAN: only what the box serves, to whom it serves it; the rest dropped", impact=1.0)
@pytest.mark.parametrize("aspect", ["openings", "drops the rest"])
def test_FW_02_only_the_roles_services(host, site, host_name, aspect):
    """Listen addresses and per-unit IP filters are one line of defence each; the firewall is the box's own: SSH to
    the admin networks, the gateway to its client networks, the model's mTLS port to the frontends and the monitor,
    exporters to the monitor."""
    table = live_table(host)
    if aspect == "openings":
        live = {(int(port), sources.strip("{} ")) for port, sources in ACCEPT_RULE.findall(table)}
        wanted = {(o.port, ", ".join(o.sources)) for o in site.firewall_config(host_name).openings}
        assert live == wanted, f"extra: {sorted(live - wanted)}, missing: {sorted(wanted - live)}"
    else:
        assert "hook input priority filter; policy drop;" in table
        assert table.rstrip().splitlines()[-3].strip() == 'counter name "dropped" drop', table


@control("FW-03", "The firewall is loaded at boot", impact=0.7)
def test_FW_03_firewall_at_boot(host):
    """Rules that exist only in the kernel are gone after the next power cut: the boot unit loads the deployed file."""
    assert unit_property(host, UNIT, "UnitFileState") == "enabled"
    assert RULES in unit_property(host, UNIT, "ExecStart")


@control("FW-04", "No firewall change waits for its confirmation", impact=0.5)
def test_FW_04_no_rollback_pending(host):
    """A load that was never confirmed (a deploy killed at that moment) rolls back within a minute by itself; one
    still pending after that means the rollback itself failed."""
    assert unit_property(host, f"{ROLLBACK_UNIT}.timer", "ActiveState") != "active"
    assert not host.file(PREVIOUS).exists


@control("FW-05", "The firewall's boot unit is hardened", impact=0.3)
def test_FW_05_firewall_unit_hardened(host):
    """It runs as root at every boot: it may talk netlink to the kernel and read one file, nothing else."""
    score, report = hardening_exposure(host, UNIT)
    assert score <= HARDENING_LIMIT, report

"""Each box's firewall: what the site model opens on it and to whom, the ruleset nft accepts, and the refusals."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from roles.firewall.config import FirewallSettings, control_path_problem
from roles.firewall.facts import FirewallState, SshClientAddress
from roles.site.exposure import lan_listeners
from tests.support.sites import problems_of, site_with, with_change


def openings(site, name) -> dict[str, tuple[int, tuple[str, ...]]]:
    return {o.service: (o.port, o.sources) for o in site.firewall_config(name).openings}


def test_a_frontend_opens_ssh_the_gateway_and_its_metrics_each_to_its_own_clients():
    site = site_with(front={"gateway_client_networks": ["10.0.0.0/24"], "firewall_admin_networks": ["10.9.0.0/16"]})
    assert openings(site, "front") == {
        "ssh": (22, ("10.9.0.0/16",)),
        "node exporter": (9100, ("10.0.0.10",)),
        "gateway (HTTPS)": (18789, ("10.0.0.0/24",)),
        "latency probe metrics": (9464, ("10.0.0.10",)),
        "balancer metrics": (8405, ("10.0.0.10",)),
        "Prometheus": (9090, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),  # the monitor host
        "Alertmanager": (9093, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    }


def test_a_backend_opens_ssh_the_mtls_port_to_the_frontends_and_the_monitor_and_its_exporter():
    site = site_with(front={"mtls_port": 9443}, back={"ssh_port": 2222, "mtls_port": 9443})
    assert openings(site, "back") == {
        "ssh": (2222, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
        "node exporter": (9100, ("10.0.0.10",)),
        "model (mutual TLS)": (9443, ("10.0.0.10",)),  # the frontend is the monitor: listed once
    }


def test_sources_are_collapsed_so_the_ruleset_depends_on_what_is_allowed_not_how_it_is_listed():
    a = site_with(front={"gateway_client_networks": ["10.1.0.0/16", "10.0.0.0/8", "10.0.5.7/32"]})
    b = site_with(front={"gateway_client_networks": ["10.0.0.0/8"]})
    assert a.firewall_config("front").ruleset() == b.firewall_config("front").ruleset()


def test_the_ruleset_is_one_table_of_its_own_replaced_whole_dropping_and_counting_the_rest():
    text = site_with().firewall_config("back").ruleset()
    assert "flush ruleset" not in text  # a container engine's tables stay
    assert text.count("table inet clawlan\ndelete table inet clawlan\n") == 1  # replaced in one transaction
    assert "type filter hook input priority filter; policy drop;" in text
    assert text.rstrip().splitlines()[-3].strip() == 'counter name "dropped" drop'
    assert 'tcp dport 8443 ip saddr { 10.0.0.10 } accept comment "model (mutual TLS)"' in text


def test_only_the_icmp_ip_needs_is_admitted_never_a_redirect():
    text = site_with().firewall_config("back").ruleset()
    accepted = [line.strip() for line in text.splitlines() if "icmp" in line and line.strip().endswith("accept")]
    assert accepted == [
        "icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept",
        "icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem }"
        " accept",
        "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept",
    ]
    rules = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
    assert "redirect" not in rules and "l4proto { icmp" not in rules


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="nft -c needs root and nftables")
@pytest.mark.parametrize("name", ["front", "back"])
def test_nft_accepts_the_ruleset(tmp_path, name):
    path = tmp_path / "rules.nft"
    path.write_text(site_with().firewall_config(name).ruleset())
    result = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_a_control_machine_outside_the_admin_networks_is_named_with_the_host_and_key():
    settings = FirewallSettings(admin_networks=("192.168.1.0/24",))
    assert control_path_problem(settings, "back", "192.168.1.5") is None
    problem = control_path_problem(settings, "back", "10.0.0.1")
    assert (problem.host, problem.key) == ("back", "firewall_admin_networks") and "10.0.0.1" in problem.message


@pytest.mark.parametrize("value", [[], ["10.0.0.0/33"], ["fd00::/8"], "10.0.0.0/8", ["10.0.0.0/8; drop"]])
def test_admin_networks_refuse_what_is_not_a_list_of_ipv4_networks(value):
    problems, _ = problems_of(with_change(lambda h: h["back"][1].update(firewall_admin_networks=value)))
    assert ("back", "firewall_admin_networks") in problems


def test_facts_read_the_state_and_the_ssh_client():
    state = FirewallState().process(["rules 3f2a", "live yes"])
    assert state == {"rules": "3f2a", "live": True}
    assert FirewallState().process(["rules", "live no"]) == {"rules": "", "live": False}
    assert SshClientAddress().process(["10.242.17.1"]) == "10.242.17.1"
    assert SshClientAddress().process([""]) == ""


@pytest.mark.parametrize("name", ["front", "back"])
def test_the_firewall_opens_exactly_what_the_listener_control_expects_on_the_lan(name):
    """Both come from one declaration (roles/site/exposure.SERVICES): sshd on every address, the rest on the box's
    LAN address; the loopback services are in neither."""
    site = site_with()
    ports = {o.port for o in site.firewall_config(name).openings}
    listeners = lan_listeners(site.topology, name, site.settings[name])
    assert {int(listener.rsplit(":", 1)[1]) for listener in listeners} == ports
    assert {"0.0.0.0:22", "[::]:22"} <= listeners
    assert not {8000, 18080, 8406} & ports  # the model server, the balancer and its session table: loopback

"""One rule for names: a host's FQDN, short name and service aliases are worked out once (roles.common.names), and
/etc/hosts, the certificate SANs, the egress proxy's upstream name and the gateway's origins all read that result."""

from __future__ import annotations

import pytest

from roles.common.names import HostSpec, site_names
from roles.inventory.load import build_site
from tests.support.sites import good_hosts, with_change

HOSTS = (
    HostSpec("front", "10.0.0.10", "frontend", 16, 4),
    HostSpec("front2", "10.0.0.11", "frontend", 16, 4),
    HostSpec("back", "10.0.0.20", "backend", 128, 16),
)


def test_a_host_has_its_fqdn_its_short_name_and_the_aliases_of_the_group_it_leads():
    names = site_names(HOSTS, "home.arpa", {"llm": "backend", "chat": "frontend"}, {})
    assert names.of("front") == ("front.home.arpa", "front", "chat.home.arpa", "chat")
    assert names.of("front2") == ("front2.home.arpa", "front2")  # a frontend alias pins the first frontend only
    assert names.of("back") == ("back.home.arpa", "back", "llm.home.arpa", "llm")


def test_a_backend_alias_names_every_backend_a_frontend_alias_the_first_frontend():
    """Backends are a pool (the same model, balanced); a frontend holds its own people's chats."""
    hosts = (*HOSTS, HostSpec("back2", "10.0.0.21", "backend", 128, 16))
    names = site_names(hosts, "home.arpa", {"llm": "backend", "chat": "frontend"}, {})
    assert names.of("back2") == ("back2.home.arpa", "back2", "llm.home.arpa", "llm")
    assert names.of("back") == ("back.home.arpa", "back", "llm.home.arpa", "llm")
    assert names.of("front2") == ("front2.home.arpa", "front2")
    assert names.services["backend"] == "llm.home.arpa"


def test_a_service_is_reached_by_its_first_alias_or_else_its_first_host():
    assert site_names(HOSTS, "lan", {"model": "backend", "llm": "backend"}, {}).services["backend"] == "model.lan"
    assert site_names(HOSTS, "lan", {}, {}).services == {"frontend": "front.lan", "backend": "back.lan"}


def test_the_hosts_block_is_the_inventory_in_order_then_the_extra_hosts():
    names = site_names(HOSTS, "lan", {}, {"nas": "10.0.0.5", "printer.office.lan": "10.0.0.6"})
    assert names.hosts_entries == (
        ("10.0.0.10", ("front.lan", "front")),
        ("10.0.0.11", ("front2.lan", "front2")),
        ("10.0.0.20", ("back.lan", "back")),
        ("10.0.0.5", ("nas.lan", "nas")),
        ("10.0.0.6", ("printer.office.lan",)),
    )


@pytest.mark.parametrize(
    "aliases", [{"llm": "backend", "chat": "frontend"}, {"model": "backend"}, {}], ids=["default", "renamed", "none"]
)
def test_every_reader_of_a_name_reads_the_one_result(aliases):
    site = build_site(with_change(lambda hosts: [data.update(base_host_aliases=aliases) for _, data in hosts.values()]))
    pinned = dict(site.base_config("front").hosts_entries)
    assert pinned == dict(site.base_config("back").hosts_entries)  # every box pins the same block
    for spec in site.topology.hosts:
        assert site.pki_config(spec.name).issuance.spec.dns_names == pinned[spec.address]
        assert site.pki_config(spec.name).issuance.spec.common_name == pinned[spec.address][0]
    service = site.egress_config("front").service_name
    assert service in pinned["10.0.0.20"], "the probe reaches the backends by a name their certificates carry"
    (member,) = site.egress_config("front").members
    assert member.server_name == pinned[member.address][0], "the balancer verifies each backend by its own FQDN"
    assert site.probe_config("front").backend_url.startswith(f"https://{service}:")
    origins = site.gateway_config("front").origins
    assert origins == tuple(f"https://{name}:18789" for name in (*pinned["10.0.0.10"], "10.0.0.10"))


def test_the_names_are_worked_out_once_per_site():
    site = build_site(good_hosts())
    assert site.topology.names is site.topology.names

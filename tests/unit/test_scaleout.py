"""A site of several backends, as the site model builds it: every frontend balances across every backend (each capped
at its slots), and monitoring, pins and certificates cover each; dropping a backend from the inventory drops it
from all of them."""

from __future__ import annotations

from roles.inventory.load import build_site
from tests.support.remote import chats_in_flight, pool_states
from tests.support.sites import good_hosts


def grown(**second):
    hosts = good_hosts()
    hosts["back2"] = (("backend",), {**hosts["back"][1], "ssh_hostname": "10.0.0.21", **second})
    return build_site(hosts)


def test_every_backend_is_in_the_pool_capped_at_its_own_slots():
    site = grown(model_server_parallel_slots=2, hw_memory_gib=64)
    members = site.egress_config("front").members
    assert [(m.name, m.address, m.server_name, m.slots) for m in members] == [
        ("back", "10.0.0.20", "back.home.arpa", 4),
        ("back2", "10.0.0.21", "back2.home.arpa", 2),
    ]


def test_a_llama_cpp_python_backend_takes_one_chat_at_a_time():
    hosts = good_hosts()
    hosts["back"][1]["model_server_engine"] = "llama-cpp-python"
    assert [m.slots for m in build_site(hosts).egress_config("front").members] == [1]


def test_the_shared_name_and_each_backends_own_name_are_pinned_and_certified():
    site = grown()
    pinned = dict(site.base_config("front").hosts_entries)
    for address, name in (("10.0.0.20", "back"), ("10.0.0.21", "back2")):
        assert "llm.home.arpa" in pinned[address]
        assert site.pki_config(name).issuance.spec.dns_names == pinned[address]


def test_monitoring_covers_every_backend_and_every_balancer():
    site = grown()
    prometheus = site.prometheus_config()
    assert [t.host for t in prometheus.node_targets] == ["front", "back", "back2"]
    assert [t.host for t in prometheus.model_server.targets] == ["back", "back2"]
    assert [(t.host, t.address) for t in prometheus.balancer_targets] == [("front", "10.0.0.10:8405")]
    assert {"10.0.0.20", "10.0.0.21"} <= set(site.probe_config("front").allowed_addresses)
    assert site.egress_config("front").metrics_clients == ("10.0.0.10",)  # the monitor is the frontend itself


def test_dropping_a_backend_from_the_inventory_drops_it_everywhere():
    before, after = grown(), build_site(good_hosts())
    assert "10.0.0.21" in dict(before.base_config("front").hosts_entries)
    assert "10.0.0.21" not in dict(after.base_config("front").hosts_entries)
    assert [m.name for m in after.egress_config("front").members] == ["back"]
    assert "back2" not in {t.host for t in after.prometheus_config().node_targets}
    assert "10.0.0.21" not in after.probe_config("front").allowed_addresses


def test_the_revocation_list_spares_every_certificate_each_host_holds():
    """The host's own everywhere, the probe's on frontends, the monitor's on the monitor host: a certificate left out
    here would be revoked while in use."""
    site = grown()
    assert site.identities.certificate_paths("back2") == ("/etc/clawlan/pki/host.crt",)
    assert site.identities.certificate_paths("front") == (
        "/etc/clawlan/pki/host.crt", "/etc/clawlan/pki/probe.crt", "/etc/clawlan/pki/gateway.crt",
            "/etc/clawlan/pki/monitor.crt",
    )  # fmt: skip


EXPORTER = """\
# HELP haproxy_server_status Current status of the server.
haproxy_server_status{proxy="model_servers",server="back-1",state="UP"} 1
haproxy_server_status{proxy="model_servers",server="back-1",state="DOWN"} 0
haproxy_server_status{proxy="model_servers",server="back-2",state="UP"} 0
haproxy_server_status{proxy="model_servers",server="back-2",state="MAINT"} 1
haproxy_server_status{proxy="clawlan_metrics",server="back-1",state="DOWN"} 1
haproxy_backend_current_queue{proxy="model_servers"} 2
haproxy_backend_current_queue{proxy="clawlan_metrics"} 7
haproxy_server_current_sessions{proxy="model_servers",server="back-1"} 3
haproxy_server_current_sessions{proxy="model_servers",server="back-2"} 0
"""


class ExporterHost:
    def check_output(self, command: str) -> str:
        assert command.startswith("curl -sf --max-time 5 http://10.0.0.10:8405/metrics")
        return EXPORTER


def test_the_pools_states_and_chats_in_flight_are_read_from_the_balancers_exporter():
    """What the e2e suite and the deep check read of the balancer: the pool's own series, no other proxy's."""
    site = build_site(good_hosts())
    config = site.egress_config(next(h.name for h in site.topology.hosts if h.role == "frontend"))
    config = type(config)(**{**config.__dict__, "metrics_address": "10.0.0.10", "metrics_port": 8405})
    assert pool_states(ExporterHost(), config) == {"back-1": "UP", "back-2": "MAINT"}
    assert chats_in_flight(ExporterHost(), config) == 5

"""A malformed inventory stops the run with a message naming the host and the key."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from roles.common.settings import InventoryError
from roles.common.values.network import PrivateNetworks
from roles.inventory.load import build_site, load_inventory, site_from_inventory
from roles.inventory.schema import SETTINGS, SITE_WIDE
from roles.site.exposure import served
from tests.support.sites import good_hosts, on_both_hosts, problems_of, with_change

REPO = Path(__file__).resolve().parents[2]


def test_the_good_site_is_valid():
    site = build_site(good_hosts())
    assert [h.name for h in site.topology.hosts] == ["front", "back"]


CASES = {
    "missing address": (lambda h: h["back"][1].pop("ssh_hostname"), ("back", "ssh_hostname")),
    "address is a name": (lambda h: h["back"][1].update(ssh_hostname="backend.lan"), ("back", "ssh_hostname")),
    "duplicate address": (lambda h: h["back"][1].update(ssh_hostname="10.0.0.10"), ("back", "ssh_hostname")),
    "host in no group": (lambda h: h.update(back=((), h["back"][1])), ("back", "groups")),
    "host in both roles": (lambda h: h.update(back=(("frontend", "backend"), h["back"][1])), ("back", "groups")),
    "no backend": (lambda h: h.pop("back"), ("*", "backend")),
    "a second backend with another model": (
        lambda h: h.update(
            back2=(("backend",), {**h["back"][1], "ssh_hostname": "10.0.0.21", "model_server_model_sha256": "cd" * 32})
        ),
        ("*", "model_server_model_sha256"),
    ),  # fmt: skip
    "a second backend with another context": (
        lambda h: h.update(
            back2=(("backend",), {**h["back"][1], "ssh_hostname": "10.0.0.21", "model_server_context_tokens": 4096})
        ),
        ("*", "model_server_context_tokens"),
    ),  # fmt: skip
    "more backends wanted healthy than the site has": (
        lambda h: [d.update(monitor_alert_backends_min=2) for _, d in h.values()],
        ("*", "monitor_alert_backends_min"),
    ),
    "balancer metrics on the gateway's port": (
        lambda h: h["front"][1].update(mtls_balancer_metrics_port=18789),
        ("front", "mtls_balancer_metrics_port"),
    ),
    "no frontend": (lambda h: h.pop("front"), ("*", "frontend")),
    "swap over 20 % of RAM": (lambda h: h["front"][1].update(base_swap_size_mib=4096), ("front", "base_swap_size_mib")),
    "hugetlb pool beside the model": (
        lambda h: h["back"][1].update(base_hugetlb_pool_mib=80 * 1024),
        ("back", "base_hugetlb_pool_mib"),
    ),
    "model alone does not fit": (
        lambda h: h["back"][1].update(model_server_model_size_gib=110),
        ("back", "model_server_model_size_gib"),
    ),
    "misspelt role key": (lambda h: h["front"][1].update(base_swapines=10), ("front", "base_swapines")),
    "key of no role": (lambda h: h["front"][1].update(swappiness=10), ("front", "swappiness")),
    "text for a number": (lambda h: h["front"][1].update(base_swappiness="10"), ("front", "base_swappiness")),
    "boolean for a number": (lambda h: h["front"][1].update(base_swappiness=True), ("front", "base_swappiness")),
    "number out of range": (lambda h: h["front"][1].update(base_swappiness=250), ("front", "base_swappiness")),
    "unknown THP mode": (lambda h: h["front"][1].update(base_thp_enabled="on"), ("front", "base_thp_enabled")),
    "swap size word other than auto": (
        lambda h: h["front"][1].update(base_swap_size_mib="big"),
        ("front", "base_swap_size_mib"),
    ),
    "RAM missing": (lambda h: h["front"][1].pop("hw_memory_gib"), ("front", "hw_memory_gib")),
    "RAM given as text with unit": (
        lambda h: h["front"][1].update(hw_memory_gib="16G"),
        ("front", "hw_memory_gib"),
    ),
    "cores as a fraction": (lambda h: h["front"][1].update(hw_cpu_cores=3.5), ("front", "hw_cpu_cores")),
    "alias to no role group": (
        lambda h: [data.update(base_host_aliases={"llm": "gpu"}) for _, data in h.values()],
        ("front", "base_host_aliases"),
    ),
    "alias that is a host name": (
        lambda h: [data.update(base_host_aliases={"back": "backend"}) for _, data in h.values()],
        ("*", "base_host_aliases"),
    ),
    "aliases differ between hosts (the site's names are worked out once)": (
        lambda h: h["front"][1].update(base_host_aliases={"model": "backend"}),
        ("*", "base_host_aliases"),
    ),
    "extra hosts differ between hosts (every box pins the same block)": (
        lambda h: h["front"][1].update(base_extra_hosts={"nas": "10.0.0.5"}),
        ("*", "base_extra_hosts"),
    ),
    "a key renamed since (monitor_target_* are the latency suite's)": (
        lambda h: h["front"][1].update(monitor_target_ttft_p99_s=0.7),
        ("front", "monitor_target_ttft_p99_s"),
    ),
    "extra host without an address": (
        lambda h: h["front"][1].update(base_extra_hosts={"nas": "nas.lan"}),
        ("front", "base_extra_hosts"),
    ),
    "extra host on a host's address": (
        lambda h: h["front"][1].update(base_extra_hosts={"nas": "10.0.0.20"}),
        ("front", "base_extra_hosts"),
    ),
    "relative swap path": (lambda h: h["front"][1].update(base_swap_path="swapfile"), ("front", "base_swap_path")),
    "invalid domain": (lambda h: h["front"][1].update(base_dns_domain="Home_Net"), ("front", "base_dns_domain")),
    "list for a mapping": (lambda h: h["front"][1].update(base_extra_hosts=["nas"]), ("front", "base_extra_hosts")),
    "unknown engine": (
        lambda h: h["back"][1].update(model_server_engine="vllm"),
        ("back", "model_server_engine"),
    ),
    "slots whose KV cache does not fit beside the model": (
        lambda h: h["back"][1].update(model_server_parallel_slots=64, model_server_context_tokens=131072),
        ("back", "model_server_parallel_slots"),
    ),
    "one slot's context too big for llama-cpp-python": (
        lambda h: h["back"][1].update(
            model_server_engine="llama-cpp-python",
            model_server_context_tokens=1048576,
            model_server_kv_cache_kib_per_token=96,
        ),  # fmt: skip
        ("back", "model_server_context_tokens"),
    ),
    "slots for llama-cpp-python (one slot)": (
        lambda h: h["back"][1].update(model_server_engine="llama-cpp-python", model_server_parallel_slots=4),
        ("back", "model_server_parallel_slots"),
    ),
    "llama-cpp-python's chat format for llama-server": (
        lambda h: h["back"][1].update(model_server_chat_format="chatml"),
        ("back", "model_server_chat_format"),
    ),
    "llama-server's template for llama-cpp-python": (
        lambda h: h["back"][1].update(model_server_engine="llama-cpp-python", model_server_chat_template="chatml"),
        ("back", "model_server_chat_template"),
    ),
    "zero slots": (
        lambda h: h["back"][1].update(model_server_parallel_slots=0),
        ("back", "model_server_parallel_slots"),
    ),
    "backend without a model": (
        lambda h: h["back"][1].pop("model_server_model_source"),
        ("back", "model_server_model_source"),
    ),
    "model pinned by a short hash": (
        lambda h: h["back"][1].update(model_server_model_sha256="abc123"),
        ("back", "model_server_model_sha256"),
    ),
    "model from a relative path": (
        lambda h: h["back"][1].update(model_server_model_source="models/qwen.gguf"),
        ("back", "model_server_model_source"),
    ),
    "model that is not a GGUF": (
        lambda h: h["back"][1].update(model_server_model_source="https://nas/qwen.safetensors"),
        ("back", "model_server_model_source"),
    ),
    "answer as long as the context": (
        lambda h: h["back"][1].update(model_server_max_answer_tokens=32768),
        ("back", "model_server_max_answer_tokens"),
    ),
    "state dir differs between hosts": (
        lambda h: h["back"][1].update(site_state_dir="/elsewhere"),
        ("*", "site_state_dir"),
    ),
    "Node.js older than openclaw needs": (
        lambda h: h["front"][1].update(gateway_node_version="22.11.0"),
        ("front", "gateway_node_version"),
    ),
    "Node.js as a range": (
        lambda h: h["front"][1].update(gateway_node_version="24"),
        ("front", "gateway_node_version"),
    ),
    "openclaw as a tag, not a pin": (
        lambda h: h["front"][1].update(gateway_openclaw_version="latest"),
        ("front", "gateway_openclaw_version"),
    ),
    "gateway networks without the frontend": (
        lambda h: h["front"][1].update(gateway_client_networks=["192.168.0.0/16"]),
        ("front", "gateway_client_networks"),
    ),
    "gateway network that is not one": (
        lambda h: h["front"][1].update(gateway_client_networks=["lan"]),
        ("front", "gateway_client_networks"),
    ),
    "registry that is not a URL": (
        lambda h: h["front"][1].update(gateway_npm_registry="registry.npmjs.org"),
        ("front", "gateway_npm_registry"),
    ),
    "monitor host that is not in the inventory": (
        lambda h: [d.update(monitor_host="nas") for _, d in h.values()],
        ("*", "monitor_host"),
    ),
    "monitor setting on one host only": (
        lambda h: h["back"][1].update(monitor_scrape_interval_s=5),
        ("*", "monitor_scrape_interval_s"),
    ),
    "two monitoring services on one port": (
        lambda h: [d.update(monitor_probe_port=9100) for _, d in h.values()],
        ("front", "monitor_probe_port"),
    ),
    "Prometheus UI networks without the monitor": (
        lambda h: [d.update(monitor_client_networks=["192.168.0.0/16"]) for _, d in h.values()],
        ("front", "monitor_client_networks"),
    ),
    "probe interval of one second": (
        lambda h: [d.update(monitor_probe_interval_s=1) for _, d in h.values()],
        ("front", "monitor_probe_interval_s"),
    ),
    "memory alert above 100 %": (
        lambda h: [d.update(monitor_alert_memory_used_percent=185) for _, d in h.values()],
        ("back", "monitor_alert_memory_used_percent"),
    ),
    "keepalive of zero seconds": (
        lambda h: h["back"][1].update(base_tcp_keepalive_time_s=0),
        ("back", "base_tcp_keepalive_time_s"),
    ),
    "host name that is no DNS label": (lambda h: h.update({"Front_1": h.pop("front")}), ("Front_1", "name")),
    "host name with a space": (lambda h: h.update({"front 1": h.pop("front")}), ("front 1", "name")),
    "address on loopback": (lambda h: h["back"][1].update(ssh_hostname="127.0.0.1"), ("back", "ssh_hostname")),
    "address that is IPv6": (lambda h: h["back"][1].update(ssh_hostname="fd00::20"), ("back", "ssh_hostname")),
    "address that is link-local": (
        lambda h: h["back"][1].update(ssh_hostname="169.254.0.20"),
        ("back", "ssh_hostname"),
    ),
    "address that is multicast": (lambda h: h["back"][1].update(ssh_hostname="239.0.0.1"), ("back", "ssh_hostname")),
    "address given as a number": (lambda h: h["back"][1].update(ssh_hostname=167772180), ("back", "ssh_hostname")),
    "RAM of NaN GiB": (lambda h: h["front"][1].update(hw_memory_gib=float("nan")), ("front", "hw_memory_gib")),
    "RAM of infinite GiB": (lambda h: h["front"][1].update(hw_memory_gib=float("inf")), ("front", "hw_memory_gib")),
    "no cores": (lambda h: h["front"][1].update(hw_cpu_cores=0), ("front", "hw_cpu_cores")),
    "a number too long to print": (
        lambda h: h["front"][1].update(base_swappiness=10**5000),
        ("front", "base_swappiness"),
    ),
    "a key that is not text": (lambda h: h["front"][1].update({5: "x"}), ("front", "5")),
    "SSH port out of range": (lambda h: h["front"][1].update(ssh_port=70000), ("front", "ssh_port")),
    "SSH port as text": (lambda h: h["front"][1].update(ssh_port="22"), ("front", "ssh_port")),
    "SSH user with shell syntax": (lambda h: h["front"][1].update(ssh_user="root;id"), ("front", "ssh_user")),
    "SSH key path with a line break": (
        lambda h: h["front"][1].update(ssh_key="/keys/id\nProxyCommand x"),
        ("front", "ssh_key"),
    ),
    "host key checking pyinfra does not know": (
        lambda h: h["front"][1].update(ssh_strict_host_key_checking="maybe"),
        ("front", "ssh_strict_host_key_checking"),
    ),
    "host key checking turned off": (
        lambda h: h["back"][1].update(ssh_strict_host_key_checking="no"),
        ("back", "ssh_strict_host_key_checking"),
    ),
    "misspelt SSH key": (lambda h: h["front"][1].update(ssh_usr="admin"), ("front", "ssh_usr")),
    "misspelt operation argument": (lambda h: h["front"][1].update(_sudoo=True), ("front", "_sudoo")),
    "sudo given as text": (lambda h: h["front"][1].update(_sudo="yes"), ("front", "_sudo")),
    "sudo user with shell syntax": (lambda h: h["front"][1].update(_sudo_user="$(id)"), ("front", "_sudo_user")),
    "gateway on the probe's port": (
        lambda h: [d.update(gateway_port=9464) for _, d in h.values()],
        ("front", "monitor_probe_port"),
    ),
    "gateway on the SSH port": (lambda h: h["front"][1].update(gateway_port=22), ("front", "gateway_port")),
    "gateway on a custom SSH port": (
        lambda h: h["front"][1].update(ssh_port=2222, gateway_port=2222),
        ("front", "gateway_port"),
    ),
    "egress proxy on the node exporter's port": (
        lambda h: [d.update(mtls_egress_port=9100) for _, d in h.values()],
        ("front", "mtls_egress_port"),
    ),
    "Prometheus on the gateway's port": (
        lambda h: [d.update(monitor_prometheus_port=18789) for _, d in h.values()],
        ("front", "monitor_prometheus_port"),
    ),
    "model server on the TLS port": (
        lambda h: h["back"][1].update(model_server_port=8443),
        ("back", "model_server_port"),
    ),
    "extra host named like an inventory host": (
        lambda h: [d.update(base_extra_hosts={"back": "10.0.0.5"}) for _, d in h.values()],
        ("*", "base_extra_hosts"),
    ),
    "extra host named like a service alias": (
        lambda h: [d.update(base_extra_hosts={"llm.home.arpa": "10.0.0.5"}) for _, d in h.values()],
        ("*", "base_extra_hosts"),
    ),
    "extra host with shell syntax in its name": (
        lambda h: [d.update(base_extra_hosts={"nas;reboot": "10.0.0.5"}) for _, d in h.values()],
        ("front", "base_extra_hosts"),
    ),
    "extra host on IPv6": (
        lambda h: [d.update(base_extra_hosts={"nas": "fd00::5"}) for _, d in h.values()],
        ("front", "base_extra_hosts"),
    ),
    "swap path on a system file": (
        lambda h: h["back"][1].update(base_swap_path="/etc/passwd"),
        ("back", "base_swap_path"),
    ),
    "swap path with a space": (
        lambda h: h["back"][1].update(base_swap_path="/srv/swap file"),
        ("back", "base_swap_path"),
    ),
    "swap path climbing out of its root": (
        lambda h: h["back"][1].update(base_swap_path="/srv/../etc/shadow"),
        ("back", "base_swap_path"),
    ),
    "model URL with shell syntax": (
        lambda h: h["back"][1].update(model_server_model_source="http://nas/$(reboot).gguf"),
        ("back", "model_server_model_source"),
    ),
    "organization with a quote": (
        lambda h: [d.update(pki_organization='Acme "Labs"') for _, d in h.values()],
        ("front", "pki_organization"),
    ),
    "chat format with a line break": (
        lambda h: h["back"][1].update(model_server_chat_format="chatml\nLD_PRELOAD=/tmp/x.so"),
        ("back", "model_server_chat_format"),
    ),
    "build flags with a line break": (
        lambda h: h["back"][1].update(model_server_cmake_args="-DX=1\nY=2"),
        ("back", "model_server_cmake_args"),
    ),
    "npm registry with a quote": (
        lambda h: h["front"][1].update(gateway_npm_registry="https://npm.lan/'x"),
        ("front", "gateway_npm_registry"),
    ),
    "gateway network that is IPv6": (
        lambda h: h["front"][1].update(gateway_client_networks=["10.0.0.0/8", "fd00::/8"]),
        ("front", "gateway_client_networks"),
    ),
    "NTP server with a space": (
        lambda h: h["front"][1].update(base_ntp_servers=["ntp.lan other"]),
        ("front", "base_ntp_servers"),
    ),
    "llama-cpp-python as a range": (
        lambda h: h["back"][1].update(model_server_version=">=0.3"),
        ("back", "model_server_version"),
    ),
}


@pytest.mark.parametrize("change, expected", CASES.values(), ids=CASES.keys())
def test_malformed_inventory_names_host_and_key(change, expected):
    problems, message = problems_of(with_change(change))
    assert expected in problems
    host, key = expected
    assert key in message and (host == "*" or repr(host) in message)


# Every network-valued setting: each admits people (SSH, the gateway, the monitor's UIs) or names the CA signs.
NETWORK_KEYS = ["firewall_admin_networks", "pki_permitted_networks", "gateway_client_networks",
                "monitor_client_networks"]  # fmt: skip


@pytest.mark.parametrize("key", NETWORK_KEYS)
@pytest.mark.parametrize(
    "network, why",
    [
        ("0.0.0.0/0", "is every address"),
        ("8.8.8.0/24", "is not a private LAN range"),
        ("::/0", "IPv6 addresses are not supported"),
        ("the-lan", "is not a network"),
    ],
)
def test_a_network_setting_refuses_what_is_not_the_lans_own_naming_host_and_key(key, network, why):
    # The hosts' own network beside it: the refusal is for the one that reaches out, not for a host left outside.
    problems, message = problems_of(on_both_hosts(key, ["10.0.0.0/24", network]))
    assert {("front", key), ("back", key)} <= problems
    assert f"host 'front', key '{key}': " in message and why in message


def test_every_network_setting_is_typed_private():
    typed = {f"{prefix}_{f.name}": f.metadata["check"] for prefix, cls in SETTINGS.items() for f in fields(cls)}
    assert {key for key, check in typed.items() if isinstance(check, PrivateNetworks)} == set(NETWORK_KEYS)
    assert {key for key in typed if key.endswith("_networks")} == set(NETWORK_KEYS)


@pytest.mark.parametrize("key", NETWORK_KEYS)
def test_a_network_setting_takes_the_lans_own_networks(key):
    build_site(on_both_hosts(key, ["10.0.0.0/24", "192.168.1.0/24"]))


def everywhere(**data):
    """Both hosts get the values (some keys are site-wide, so must be equal)."""
    return with_change(lambda h: [d.update(data) for _, d in h.values()])


LIFETIMES = {
    "renewal window as long as the certificate": (
        {"pki_cert_days": 365, "pki_renew_before_days": 365, "pki_crl_days": 730}, "pki_renew_before_days",
        "pki_cert_days",
    ),
    "certificate shorter than the default renewal window": (
        {"pki_cert_days": 30}, "pki_renew_before_days", "pki_cert_days"
    ),
    "revocation list renewed only after its alert": (
        {"pki_crl_days": 14}, "pki_renew_before_days", "pki_crl_days"
    ),
    "certificate outliving the site CA": ({"pki_cert_days": 400, "pki_ca_days": 365}, "pki_cert_days", "pki_ca_days"),
}  # fmt: skip


@pytest.mark.parametrize("data, key, other", LIFETIMES.values(), ids=LIFETIMES.keys())
def test_a_renewal_window_reaching_past_its_lifetime_is_refused_naming_both_keys(data, key, other):
    problems, message = problems_of(everywhere(**data))
    assert ("front", key) in problems and ("back", key) in problems
    assert any(f"host 'front', key '{key}': " in line and other in line for line in message.split("\n"))


def test_renewal_windows_just_inside_their_lifetimes_are_accepted():
    build_site(everywhere(pki_cert_days=31, pki_renew_before_days=30, pki_crl_days=60, pki_ca_days=32))


def test_the_kv_cache_refusal_says_how_it_was_counted():
    _, message = problems_of(with_change(lambda h: h["back"][1].update(model_server_parallel_slots=64,
                                                                      model_server_context_tokens=131072)))  # fmt: skip
    # 64 x 131072 tokens x 24 KiB = 192 GiB, and 64 x (1 + 8) recurrent states of 75 MiB and the 2 GiB prompt
    # cache: 236.2 GiB; 128 GiB - 45 x 1.2 - 4 leaves 70 GiB.
    assert (
        "the KV cache and prompt reuse (64 slot(s) x 131072 tokens x 24 KiB + 64 x (1 + 8 checkpoints) x 75 MiB"
        " + 2048 MiB prompt cache) need 236.2 GiB" in message
    )
    assert "leaves 70.0 GiB" in message


def test_the_engine_is_one_inventory_change_either_way():
    site = build_site(with_change(lambda h: h["back"][1].update(model_server_engine="llama-cpp-python")))
    config = site.model_server_config("back")
    assert config.engine == "llama-cpp-python" and config.parallel_slots == 1
    assert site.prometheus_config().model_server.targets == ()  # no /metrics to scrape
    assert site.gateway_config("front").model_tools is False  # it does not parse tool calls
    site = build_site(good_hosts())
    assert site.model_server_config("back").parallel_slots == 4
    assert [t.host for t in site.prometheus_config().model_server.targets] == ["back"]
    assert site.gateway_config("front").model_tools is True


def test_slots_that_fit_only_as_one_are_fine_for_llama_cpp_python():
    # 32 slots x 131072 tokens x 24 KiB = 96 GiB would not fit; llama-cpp-python holds one slot: 3 GiB.
    big = {"model_server_context_tokens": 131072}
    with pytest.raises(InventoryError):
        build_site(with_change(lambda h: h["back"][1].update(model_server_parallel_slots=32, **big)))
    build_site(with_change(lambda h: h["back"][1].update(model_server_engine="llama-cpp-python", **big)))


def test_every_problem_is_reported_at_once():
    def two_mistakes(hosts):
        hosts["front"][1].update(base_swapines=1)
        hosts["back"][1].update(base_thp_defrag="sometimes")

    problems, _ = problems_of(with_change(two_mistakes))
    assert {("front", "base_swapines"), ("back", "base_thp_defrag")} <= problems


def test_pyinfra_own_keys_are_accepted():
    def pyinfra_keys(hosts):
        hosts["front"][1].update(
            ssh_user="admin", ssh_port=2222, _sudo=True, ssh_key="~/.ssh/id_ed25519",
            ssh_strict_host_key_checking="yes", ssh_known_hosts_file="/home/admin/.ssh/known_hosts",
            _sudo_user="root", _env={"LANG": "C.UTF-8"},
        )  # fmt: skip

    build_site(with_change(pyinfra_keys))


def test_a_misspelt_pyinfra_key_is_named_with_the_key_meant():
    _, message = problems_of(with_change(lambda h: h["front"][1].update(ssh_know_hosts_file="/k", _sudo_usr="root")))
    assert "did you mean 'ssh_known_hosts_file'?" in message
    assert "did you mean '_sudo_user'?" in message


def test_the_pyinfra_keys_are_pyinfras_own():
    """The known keys come from pyinfra itself; each value type here is for a key it still has."""
    from roles.common.connection import ARGUMENT_KEYS, SSH_KEYS, VALUE_TYPES

    assert {"ssh_user", "ssh_port", "ssh_key", "ssh_known_hosts_file", "ssh_strict_host_key_checking"} <= SSH_KEYS
    assert {"_sudo", "_sudo_user", "_env"} <= ARGUMENT_KEYS
    assert set(VALUE_TYPES) <= SSH_KEYS | ARGUMENT_KEYS


def test_ipv6_is_refused_as_unsupported():
    _, message = problems_of(with_change(lambda h: h["back"][1].update(ssh_hostname="fd00::20")))
    assert "IPv6 addresses are not supported" in message


def test_a_port_clash_names_both_keys():
    _, message = problems_of(with_change(lambda h: h["back"][1].update(model_server_port=8443)))
    assert (
        "host 'back', key 'model_server_port': port 8443 is also mtls_port, the model (mutual TLS), on this host"
        in message
    )


def test_a_password_is_never_shown():
    _, message = problems_of(with_change(lambda h: h["front"][1].update(ssh_password="hunter2\n")))
    assert "ssh_password" in message and "hunter2" not in message


def test_ports_of_different_hosts_may_be_equal():
    """The gateway's port is the frontend's, the TLS port the backend's: the same number on two hosts is fine."""
    build_site(with_change(lambda h: [d.update(gateway_port=8443) for _, d in h.values()]))


@pytest.mark.parametrize(
    "inventory", ["inventory/site.py", "inventory/lab.py", "inventory/lab_scaleout.py", "inventory/lab_many.py"]
)
def test_shipped_inventories_are_valid(inventory):
    site = site_from_inventory(load_inventory(str(REPO / inventory), cwd=str(REPO)))
    assert {h.role for h in site.topology.hosts} == {"frontend", "backend"}


@pytest.fixture
def listeners():
    """A TCP listener on each loopback address the CLI tests' hosts have: a connection pyinfra made would wait here."""
    opened = {}
    for address in ("127.0.0.2", "127.0.0.3"):
        sock = socket.socket()
        sock.bind((address, 0))
        sock.listen(8)
        sock.setblocking(False)
        opened[address] = sock
    yield opened
    for sock in opened.values():
        sock.close()


def connections(listeners) -> list[str]:
    made = []
    for address, sock in listeners.items():
        try:
            sock.accept()[0].close()
            made.append(address)
        except BlockingIOError:
            pass
    return made


def run_cli(tmp_path, listeners, *args, checked: bool) -> tuple[int, str]:
    """The real pyinfra CLI, from the repository (so config.py is read), on a two-host inventory on loopback."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "group_data").symlink_to(REPO / "inventory" / "group_data")
    port = {address: sock.getsockname()[1] for address, sock in listeners.items()}
    inventory = tmp_path / "site.py"
    inventory.write_text(
        ("from roles.inventory.load import check_inventory\n" if checked else "")
        + f"frontend = [('f', {{'ssh_hostname': '127.0.0.2', 'ssh_port': {port['127.0.0.2']}, 'hw_memory_gib': 4,"
        " 'hw_cpu_cores': 1, 'hw_debian': 13})]\n"
        f"backend = [('b', {{'ssh_hostname': '127.0.0.3', 'ssh_port': {port['127.0.0.3']}, 'hw_memory_gib': 4,"
        " 'hw_cpu_cores': 1, 'hw_debian': 13, 'base_swap_size_mib': 0})]\n"
        + ("check_inventory(__file__)\n" if checked else "")
    )
    pyinfra = Path(sys.executable).with_name("pyinfra")
    result = subprocess.run(
        [str(pyinfra), "-y", str(inventory), "deploys/base.py", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def problem_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("  - host ")]


@pytest.mark.parametrize("checked", [True, False], ids=["with check_inventory", "without check_inventory"])
def test_a_malformed_inventory_stops_pyinfra_before_it_connects(tmp_path, listeners, checked):
    """Through the real CLI: whether or not the inventory file calls check_inventory, pyinfra fails before it
    connects anywhere (config.py has it check the loaded inventory), naming host and key."""
    returncode, output = run_cli(tmp_path, listeners, checked=checked)
    assert returncode != 0
    assert "host 'f', key 'ssh_hostname': 127.0.0.2 is a loopback address" in output
    assert "host 'b', key 'ssh_hostname': 127.0.0.3 is a loopback address" in output
    assert "Connecting" not in output and "Traceback" not in output
    assert connections(listeners) == []


def test_both_checks_give_the_same_message(tmp_path, listeners):
    _, with_check = run_cli(tmp_path / "a", listeners, checked=True)
    _, without = run_cli(tmp_path / "b", listeners, checked=False)
    assert problem_lines(with_check) == problem_lines(without) != []


def test_a_bad_value_given_with_data_is_refused_before_any_connection(tmp_path, listeners):
    returncode, output = run_cli(tmp_path, listeners, "--data", 'base_ntp_servers=["ntp.lan; reboot"]', checked=False)
    assert returncode != 0
    assert "host 'f', key 'base_ntp_servers'" in output and "host 'b', key 'base_ntp_servers'" in output
    assert "Connecting" not in output and "Traceback" not in output
    assert connections(listeners) == []


def _clashes():
    """Every pair of services one host of the good site serves (roles/site/exposure.SERVICES), the later given the
    earlier's port: (host, earlier, later, port)."""
    site = build_site(good_hosts())
    pairs = []
    for spec in site.topology.hosts:
        services = served(spec.role, spec.name == site.topology.monitor_host.name, site.settings[spec.name], 22)
        pairs += [(spec.name, a, b, port) for i, (a, port) in enumerate(services) for b, _ in services[i + 1 :]]
    return pairs


@pytest.mark.parametrize("host, earlier, later, port", _clashes(), ids=lambda v: getattr(v, "key", str(v)))
def test_a_clash_of_any_two_ports_on_one_host_is_refused_naming_both(host, earlier, later, port):
    """Whatever the pair (LAN, loopback or sshd's; site-wide or per-host keys), the second service's key is named,
    with the first's."""
    # Site-wide keys must be the same on every host; the others are the host's own.
    targets = ("front", "back") if later.key in SITE_WIDE else (host,)
    hosts = with_change(lambda h: [h[name][1].update({later.key: port}) for name in targets])
    named, message = problems_of(hosts)
    assert (host, later.key) in named, message
    assert f"port {port} is also {earlier.key}" in message

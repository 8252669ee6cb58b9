"""The valid two-box site the unit tests start from, as inventory host data, and the site each variation of it makes.

Hosts are ``{name: (groups, data)}``, as pyinfra would merge them; a test changes what it is about and keeps the rest
valid, so a refusal names its own key only.
"""

from __future__ import annotations

import pytest

from roles.common.settings import InventoryError
from roles.inventory.load import build_site


def good_hosts():
    """A valid two-box site: {name: (groups, data)}, as pyinfra would merge it."""
    return {
        "front": (
            ("frontend",),
            {"ssh_hostname": "10.0.0.10", "hw_memory_gib": 16, "hw_cpu_cores": 4, "hw_debian": 13},
        ),
        "back": (
            ("backend",),
            {
                "ssh_hostname": "10.0.0.20",
                "hw_memory_gib": 128,
                "hw_cpu_cores": 16,
                "hw_debian": 13,
                "model_server_model_source": "/srv/models/qwen.gguf",
                "model_server_model_sha256": "ab" * 32,
                "model_server_model_size_gib": 45,
            },
        ),
    }


def with_change(change):
    hosts = good_hosts()
    change(hosts)
    return hosts


def on_both_hosts(key: str, value):
    """Both hosts get the value (site-wide keys must be equal), but for the backend's own address."""
    hosts = good_hosts()
    for name, (_, host_data) in hosts.items():
        if key != "ssh_hostname" or name == "back":
            host_data[key] = value
    return hosts


def problems_of(hosts):
    """The (host, key) pairs the site's refusal names, and its message."""
    with pytest.raises(InventoryError) as raised:
        build_site(hosts)
    return {(p.host, p.key) for p in raised.value.problems}, str(raised.value)


def site_with(front=None, back=None):
    """The good site with ``front``'s and ``back``'s values laid over its hosts' data."""
    hosts = good_hosts()
    hosts["front"][1].update(front or {})
    hosts["back"][1].update(back or {})
    return build_site(hosts)

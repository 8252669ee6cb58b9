"""The inventory: loaded as the pyinfra CLI loads it, validated as one, and turned into the ``Site``.

``check_inventory`` runs at the end of every inventory file, so a malformed inventory stops pyinfra
while it loads, before it connects to any host; deploys build the same ``Site`` to get each host's
role configs.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from roles.base.config import preflight
from roles.base.settings import BaseSettings
from roles.common.names import HostSpec, alias_problems
from roles.common.settings import InventoryError, Problem, parse_settings
from roles.gateway.config import preflight as gateway_preflight
from roles.gateway.settings import GatewaySettings
from roles.model_server.config import preflight as model_server_preflight
from roles.model_server.settings import ModelServerSettings
from roles.monitor.config import preflight as monitor_preflight
from roles.monitor.settings import MonitorSettings
from roles.mtls.settings import MtlsSettings
from roles.pki.settings import PkiSettings
from roles.site import Site
from roles.site_settings import LatencyTargets, SiteSettings

ROLE_GROUPS = ("frontend", "backend")
# Inventory key prefix -> settings class. Every key under a known prefix is checked on every host.
SETTINGS = {
    "site": SiteSettings,
    "base": BaseSettings,
    "pki": PkiSettings,
    "model_server": ModelServerSettings,
    "mtls": MtlsSettings,
    "gateway": GatewaySettings,
    "monitor": MonitorSettings,
    "latency": LatencyTargets,
}
# Keys whose value must be the same on every host.
# The site's names are worked out once (roles.common.names), so what makes them is site-wide too.
SITE_WIDE = (
    "site_state_dir",
    "site_cache_dir",
    "base_dns_domain",
    "base_host_aliases",
    "base_extra_hosts",
    "pki_organization",
    "mtls_port",
)
SITE_WIDE_PREFIXES = ("monitor_", "latency_")  # one Prometheus, one set of rules and targets for the whole site
# Per-host keys besides role settings: the address and the hardware the sizing rules use.
# Keys an older clawlan knew under another name: an inventory that still uses one is told the new name.
RENAMED = {
    "monitor_target_ttft_p99_s": "latency_ttft_p99_s",
    "monitor_target_inter_token_p99_s": "latency_inter_token_p99_s",
    "monitor_target_tokens_per_second": "latency_tokens_per_second",
}
HOST_KEYS = {
    "ssh_hostname": "the host's LAN address (an IP address: it is what /etc/hosts pins)",
    "hw_memory_gib": "installed RAM in GiB",
    "hw_cpu_cores": "physical CPU cores",
}


def merged_data(inventory, host) -> dict[str, Any]:
    """A host's data with pyinfra's precedence: override > host > groups (in order) > all."""
    data = dict(inventory.get_data())
    data.update(inventory.get_groups_data(host.groups))
    data.update(inventory.get_host_data(host.name))
    data.update(inventory.get_override_data())
    return data


def site_from_inventory(inventory) -> Site:
    return build_site({host.name: (tuple(host.groups), merged_data(inventory, host)) for host in inventory})


def build_site(hosts: Mapping[str, tuple[tuple[str, ...], Mapping[str, Any]]]) -> Site:
    """Validate every host and the rules across them; raise one InventoryError listing every problem."""
    problems: list[Problem] = []
    specs: list[HostSpec] = []
    settings: dict[str, dict[str, Any]] = {}

    for name, (groups, data) in hosts.items():
        spec = _host_spec(name, groups, data, problems)
        for key in data.keys() & RENAMED.keys():
            problems.append(Problem(name, key, f"renamed: spell it {RENAMED[key]!r}"))
        current = {key: value for key, value in data.items() if key not in RENAMED}
        parsed = {prefix: parse_settings(cls, prefix, name, current, problems) for prefix, cls in SETTINGS.items()}
        for key in data:
            if not _known_key(key):
                problems.append(Problem(name, key, "unknown key (role settings are spelled <role>_<setting>)"))
        if spec:
            specs.append(spec)
        settings[name] = parsed

    _check_addresses(hosts, problems)
    _check_site_wide(hosts, problems)
    backends = [s for s in specs if s.role == "backend"]
    if len(specs) == len(hosts) and len(backends) != 1:
        problems.append(Problem("*", "backend", f"the site needs exactly one backend host, found {len(backends)}"))
    if len(specs) == len(hosts) and not any(s.role == "frontend" for s in specs):
        problems.append(Problem("*", "frontend", "the site needs at least one frontend host"))

    if not problems:
        for spec in specs:
            model = settings[spec.name]["model_server"]
            model_gib = model.model_size_gib if spec.role == "backend" else 0.0
            problems += preflight(settings[spec.name]["base"], spec, model_gib)
            if spec.role == "backend":
                problems += model_server_preflight(model, spec)
            else:
                problems += gateway_preflight(settings[spec.name]["gateway"], spec.name, spec.address)
        problems += monitor_preflight(settings[specs[0].name]["monitor"], specs)
        problems += alias_problems(settings[specs[0].name]["base"].host_aliases, specs, "base_host_aliases")

    if problems:
        raise InventoryError(problems)
    return Site(hosts=tuple(specs), settings=settings)


def _known_key(key: str) -> bool:
    return (
        key in HOST_KEYS
        or key.startswith(("ssh_", "_"))  # pyinfra's own connection keys and operation arguments
        or any(key.startswith(f"{prefix}_") for prefix in SETTINGS)
    )


def _host_spec(name: str, groups: tuple[str, ...], data: Mapping[str, Any], problems: list[Problem]):
    roles = [g for g in groups if g in ROLE_GROUPS]
    before = len(problems)
    if len(roles) != 1:
        where = "in no role group" if not roles else f"in both {' and '.join(roles)}"
        problems.append(Problem(name, "groups", f"the host is {where}; put it in exactly one of {ROLE_GROUPS}"))
    for key in HOST_KEYS:
        if key not in data:
            problems.append(Problem(name, key, f"missing: {HOST_KEYS[key]}"))
    address = data.get("ssh_hostname")
    if address is not None and not _is_ip(address):
        problems.append(Problem(name, "ssh_hostname", f"must be an IP address, got {address!r}"))
    memory, cores = data.get("hw_memory_gib"), data.get("hw_cpu_cores")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, (int, float)) or memory <= 0):
        problems.append(Problem(name, "hw_memory_gib", f"must be a positive number of GiB, got {memory!r}"))
    if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int) or cores <= 0):
        problems.append(Problem(name, "hw_cpu_cores", f"must be a positive whole number, got {cores!r}"))
    if len(problems) > before:
        return None
    return HostSpec(name=name, address=address, role=roles[0], memory_gib=float(memory), cpu_cores=cores)


def _check_site_wide(hosts: Mapping[str, tuple[tuple[str, ...], Mapping[str, Any]]], problems: list[Problem]):
    prefixed = {key for _, data in hosts.values() for key in data if key.startswith(SITE_WIDE_PREFIXES)}
    for key in (*SITE_WIDE, *sorted(prefixed)):
        values = {name: data.get(key) for name, (_, data) in hosts.items()}
        if len(set(map(repr, values.values()))) > 1:
            differing = ", ".join(f"{name}={value!r}" for name, value in values.items())
            problems.append(Problem("*", key, f"must be the same on every host, got {differing}"))


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_addresses(hosts: Mapping[str, tuple[tuple[str, ...], Mapping[str, Any]]], problems: list[Problem]):
    owners: dict[str, str] = {}
    for name, (_, data) in hosts.items():
        address = data.get("ssh_hostname")
        if address in owners:
            message = f"address {address} is already used by host {owners[address]!r}"
            problems.append(Problem(name, "ssh_hostname", message))
        elif address is not None:
            owners[address] = name
    for name, (_, data) in hosts.items():
        extra = data.get("base_extra_hosts")
        for extra_name, extra_address in extra.items() if isinstance(extra, Mapping) else ():
            if not _is_ip(extra_address):
                problems.append(
                    Problem(name, "base_extra_hosts", f"{extra_name!r} needs an IP address, got {extra_address!r}")
                )
            elif extra_address in owners:
                problems.append(
                    Problem(name, "base_extra_hosts", f"{extra_name!r} reuses {owners[extra_address]!r}'s address")
                )


def load_inventory(inventory_file: str, cwd: str | None = None):
    """An Inventory built from ``inventory_file`` and its group_data exactly as the pyinfra CLI builds it."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory_from_files

    cwd = cwd or os.getcwd()
    if ctx_state.isset():
        return make_inventory_from_files(inventory_file, cwd=cwd)
    with ctx_state.use(State()):
        return make_inventory_from_files(inventory_file, cwd=cwd)


_loading = False


def check_inventory(inventory_file: str) -> None:
    """Load ``inventory_file`` the way the pyinfra CLI does and validate the whole site.

    Called at the bottom of an inventory file: pyinfra loads the inventory (and its group_data)
    before it connects anywhere, so a problem raised here never reaches a host.
    """
    global _loading
    if _loading:  # we are the nested load below
        return
    _loading = True
    try:
        inventory = load_inventory(inventory_file)
    finally:
        _loading = False
    site_from_inventory(inventory)

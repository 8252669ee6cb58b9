"""The whole site as the roles see it, built from a pyinfra inventory and validated as one.

``check_inventory`` runs at the end of every inventory file, so a malformed inventory stops pyinfra
while it loads, before it connects to any host; deploys build the same ``Site`` to get each host's
role configs.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roles.base.config import BaseConfig, HostSpec, build_base_config, fqdn, preflight
from roles.base.settings import BaseSettings
from roles.gateway.config import GatewayConfig, build_gateway_config
from roles.gateway.config import preflight as gateway_preflight
from roles.gateway.settings import GatewaySettings
from roles.model_server.config import ModelServerConfig, build_model_server_config
from roles.model_server.config import preflight as model_server_preflight
from roles.model_server.settings import ModelServerSettings
from roles.monitor.config import (
    TEXTFILE_DIR,
    NodeExporterConfig,
    ProbeConfig,
    PrometheusConfig,
    build_node_exporter_config,
    build_probe_config,
    build_prometheus_config,
    monitor_host,
)
from roles.monitor.config import preflight as monitor_preflight
from roles.monitor.settings import MonitorSettings
from roles.mtls.config import EgressConfig, IngressConfig, build_egress_config, build_ingress_config
from roles.mtls.settings import MtlsSettings
from roles.pki.config import PkiConfig, build_pki_config
from roles.pki.settings import PkiSettings
from roles.settings import InventoryError, Problem, parse_settings
from roles.site_settings import SiteSettings

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
}
# Keys whose value must be the same on every host.
SITE_WIDE = ("site_state_dir", "site_cache_dir", "base_dns_domain", "pki_organization", "mtls_port")
SITE_WIDE_PREFIXES = ("monitor_",)  # one Prometheus, one set of rules for the whole site
# Per-host keys besides role settings: the address and the hardware the sizing rules use.
HOST_KEYS = {
    "ssh_hostname": "the host's LAN address (an IP address: it is what /etc/hosts pins)",
    "hw_memory_gib": "installed RAM in GiB",
    "hw_cpu_cores": "physical CPU cores",
}


@dataclass(frozen=True)
class Site:
    hosts: tuple[HostSpec, ...]
    settings: Mapping[str, Mapping[str, Any]]  # host name -> prefix -> settings object

    def host(self, name: str) -> HostSpec:
        return next(h for h in self.hosts if h.name == name)

    @property
    def state_dir(self) -> Path:
        return Path(self.settings[self.hosts[0].name]["site"].state_dir).expanduser()

    @property
    def cache_dir(self) -> Path:
        return Path(self.settings[self.hosts[0].name]["site"].cache_dir).expanduser()

    def base_config(self, name: str) -> BaseConfig:
        return build_base_config(self.settings[name]["base"], self.host(name), list(self.hosts))

    def names_of(self, name: str) -> tuple[str, ...]:
        """The host's names as /etc/hosts pins them: FQDN, short name, then its service aliases."""
        address = self.host(name).address
        return next(names for entry_address, names in self.base_config(name).hosts_entries if entry_address == address)

    @property
    def model_server_api_key_file(self) -> Path:
        return self.state_dir / "secrets" / "model-server-api-key"

    def model_server_config(self, name: str) -> ModelServerConfig:
        return build_model_server_config(
            self.settings[name]["model_server"],
            self.host(name),
            wheelhouse_dir=str(self.cache_dir / "wheelhouse"),
            api_key_file=str(self.model_server_api_key_file),
        )

    def ingress_config(self, name: str) -> IngressConfig:
        frontends = tuple(self.pki_config(h.name).spec.subject_dn() for h in self.hosts if h.role == "frontend")
        return build_ingress_config(
            self.settings[name]["mtls"],
            self.host(name).address,
            self.settings[name]["model_server"].port,
            frontends,
        )

    def model_endpoint_name(self) -> str:
        """The name the frontend uses for the model: the backend's service alias (or its FQDN)."""
        backend = next(h for h in self.hosts if h.role == "backend")
        base = self.settings[backend.name]["base"]
        aliases = [alias for alias, group in base.host_aliases.items() if group == "backend"]
        return fqdn(aliases[0], base.dns_domain) if aliases else self.names_of(backend.name)[0]

    def egress_config(self, name: str) -> EgressConfig:
        return build_egress_config(self.settings[name]["mtls"], self.model_endpoint_name())

    @property
    def gateway_token_file(self) -> Path:
        return self.state_dir / "secrets" / "gateway-token"

    def gateway_config(self, name: str) -> GatewayConfig:
        """The model's id, context and answer length come from the backend's settings: one source of truth."""
        backend = next(h for h in self.hosts if h.role == "backend")
        model = self.settings[backend.name]["model_server"]
        return build_gateway_config(
            self.settings[name]["gateway"],
            self.host(name).address,
            self.names_of(name),
            egress_port=self.settings[name]["mtls"].egress_port,
            model_id=model.model_alias,
            context_tokens=model.context_tokens,
            max_tokens=model.max_answer_tokens,
            token_file=str(self.gateway_token_file),
            model_api_key_file=str(self.model_server_api_key_file),
            metrics_dir=TEXTFILE_DIR,
        )

    @property
    def monitor(self) -> MonitorSettings:
        return self.settings[self.hosts[0].name]["monitor"]

    def monitor_host(self) -> HostSpec:
        return monitor_host(self.monitor, self.hosts)

    def node_exporter_config(self, name: str) -> NodeExporterConfig:
        return build_node_exporter_config(self.monitor, self.host(name), self.monitor_host())

    def probe_config(self, name: str) -> ProbeConfig:
        backend = next(h for h in self.hosts if h.role == "backend")
        return build_probe_config(
            self.monitor,
            self.host(name),
            self.monitor_host(),
            backend,
            gateway_port=self.settings[name]["gateway"].port,
            backend_name=self.model_endpoint_name(),
            mtls_port=self.settings[name]["mtls"].port,
            backend_model=self.settings[backend.name]["model_server"].model_alias,
            pki=self.pki_config(name),
        )

    def prometheus_config(self) -> PrometheusConfig:
        monitor = self.monitor_host()
        renew = self.settings[monitor.name]["pki"].renew_before_days
        return build_prometheus_config(self.monitor, self.hosts, monitor, renew)

    def pki_config(self, name: str) -> PkiConfig:
        host, settings = self.host(name), self.settings[name]["pki"]
        return build_pki_config(
            settings, self.state_dir, host.role, self.names_of(name), host.address, metrics_dir=TEXTFILE_DIR
        )


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
        parsed = {prefix: parse_settings(cls, prefix, name, data, problems) for prefix, cls in SETTINGS.items()}
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
            problems += preflight(settings[spec.name]["base"], spec, specs, model_gib)
            if spec.role == "backend":
                problems += model_server_preflight(model, spec)
            else:
                problems += gateway_preflight(settings[spec.name]["gateway"], spec.name, spec.address)
        problems += monitor_preflight(settings[specs[0].name]["monitor"], specs)

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

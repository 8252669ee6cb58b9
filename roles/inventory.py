"""The inventory: loaded as the pyinfra CLI loads it, validated as one, and turned into the ``Site``.

``check_inventory`` runs at the end of every inventory file, so a malformed inventory stops pyinfra
while it loads, before it connects to any host; the repository's config.py has pyinfra check the loaded
inventory again (with --data overrides, and for a file that forgot the call) before the first
connection; deploys build the same ``Site`` to get each host's role configs.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from typing import Any, get_type_hints

from roles.base.config import preflight
from roles.base.settings import BaseSettings
from roles.common.connection import SSH_KEYS, is_pyinfra_key, pyinfra_key_problems
from roles.common.locks import LockMissing
from roles.common.names import ROLE_GROUPS, HostSpec, alias_problems, fqdn, site_names
from roles.common.settings import (
    InventoryError,
    Problem,
    every_key_site_wide,
    is_site_wide,
    parse_settings,
    prefixed_keys,
)
from roles.common.values import DnsLabel, LanIPv4, Number, WholeNumber, shown
from roles.gateway.config import PREFLIGHT as GATEWAY_PREFLIGHT
from roles.model_server.config import PREFLIGHT as MODEL_SERVER_PREFLIGHT
from roles.model_server.config import engine_problems, kv_cache
from roles.monitor.config import preflight as monitor_preflight
from roles.pki.config import PREFLIGHT as PKI_PREFLIGHT
from roles.site import Site
from roles.site_settings import HostSettings

# Inventory key prefix -> settings class. Every key under a known prefix is checked on every host.
SETTINGS: dict[str, type] = get_type_hints(HostSettings)
# Keys whose value must be the same on every host, and the prefixes under which every key is, as the settings
# declare them.
SITE_WIDE = tuple(key for prefix, cls in SETTINGS.items() for key, field in prefixed_keys(cls, prefix).items()
                  if is_site_wide(cls, field))  # fmt: skip
SITE_WIDE_PREFIXES = tuple(f"{prefix}_" for prefix, cls in SETTINGS.items() if every_key_site_wide(cls))
# Keys an older clawlan knew under another name, as the settings declare them: {old key: new key}.
RENAMED = {field.metadata["renamed_from"]: key for prefix, cls in SETTINGS.items()
           for key, field in prefixed_keys(cls, prefix).items() if field.metadata["renamed_from"]}  # fmt: skip
# Per-host keys besides role settings: the address and the hardware the sizing rules use.
HOST_KEYS = {
    "ssh_hostname": "the host's LAN address (an IP address: it is what /etc/hosts pins)",
    "hw_memory_gib": "installed RAM in GiB (every deploy checks it against the host's, see below)",
    "hw_cpu_cores": "physical CPU cores (checked likewise; SMT threads do not count)",
}
HOST_VALUES = {"ssh_hostname": LanIPv4(), "hw_memory_gib": Number(0.5, 65536), "hw_cpu_cores": WholeNumber(1, 4096)}
# The roles' own rules, each run on the hosts of the groups it names.
PREFLIGHTS = (PKI_PREFLIGHT, MODEL_SERVER_PREFLIGHT, GATEWAY_PREFLIGHT)
HOST_NAME = DnsLabel()  # an inventory host's name: its short name in /etc/hosts and in its certificate
SSH_PORT = 22  # pyinfra's (and sshd's) port when the inventory gives no ssh_port


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
    settings: dict[str, HostSettings] = {}

    for name, (_, raw) in hosts.items():
        problems += [Problem(name, shown(key), "a key must be text") for key in raw if not isinstance(key, str)]
    hosts = {
        name: (groups, {k: v for k, v in raw.items() if isinstance(k, str)}) for name, (groups, raw) in hosts.items()
    }

    for name, (groups, data) in hosts.items():
        spec = _host_spec(name, groups, data, problems)
        for key in data.keys() & RENAMED.keys():
            problems.append(Problem(name, key, f"renamed: spell it {RENAMED[key]!r}"))
        current = {key: value for key, value in data.items() if key not in RENAMED}
        parsed = {prefix: parse_settings(cls, prefix, name, current, problems) for prefix, cls in SETTINGS.items()}
        problems += pyinfra_key_problems(name, data)
        for key in data:
            if not _known_key(key):
                hint = _did_you_mean(key)
                problems.append(Problem(name, key, f"unknown key (role settings are spelled <role>_<setting>){hint}"))
        if spec:
            specs.append(spec)
        if all(each is not None for each in parsed.values()):
            settings[name] = HostSettings(**parsed)

    _check_addresses(hosts, problems)
    _check_site_wide(hosts, problems)
    if len(specs) == len(hosts) and not any(s.role == "backend" for s in specs):
        problems.append(Problem("*", "backend", "the site needs at least one backend host"))
    if len(specs) == len(hosts) and not any(s.role == "frontend" for s in specs):
        problems.append(Problem("*", "frontend", "the site needs at least one frontend host"))

    if not problems:
        for spec in specs:
            own = settings[spec.name]
            problems += [
                problem
                for each in PREFLIGHTS
                if spec.role in each.groups
                for problem in each.check(getattr(own, each.prefix), spec)
            ]
            problems += _memory_problems(spec, own)
            if spec.role == "backend":
                given = (key.removeprefix("model_server_") for key in hosts[spec.name][1])
                problems += engine_problems(spec.name, given, own.model_server.engine)
        problems += _pool_problems([s for s in specs if s.role == "backend"], settings)
        problems += monitor_preflight(settings[specs[0].name].monitor, specs)
        problems += alias_problems(settings[specs[0].name].base.host_aliases, specs, "base_host_aliases")
        problems += _name_problems(specs, settings[specs[0].name].base)
        for spec in specs:
            problems += _port_problems(spec, settings, specs, hosts[spec.name][1])

    if problems:
        raise InventoryError(problems)
    site = Site(hosts=tuple(specs), settings=settings)
    problems += _lock_problems(site) + _alert_secret_problems(site)
    if problems:
        raise InventoryError(problems)
    return site


def _memory_problems(spec: HostSpec, settings: HostSettings) -> list[Problem]:
    """The host's memory budget: base sizes the system's share and the swap, a backend's model server adds the model
    and its KV cache."""
    if spec.role != "backend":
        return preflight(settings.base, spec, 0.0)
    model = settings.model_server
    return preflight(settings.base, spec, model.model_size_gib, kv_cache(model))


# What makes backends interchangeable behind a balancer: every chat may land on any of them, and the gateway asks
# for one model id, context and answer length.
SAME_ON_EVERY_BACKEND = ("engine", "model_sha256", "model_alias", "context_tokens", "max_answer_tokens",
                         "chat_template")  # fmt: skip


def _pool_problems(backends: list[HostSpec], settings: Mapping[str, HostSettings]) -> list[Problem]:
    problems = []
    for key in SAME_ON_EVERY_BACKEND:
        values = {spec.name: getattr(settings[spec.name].model_server, key) for spec in backends}
        if len(set(values.values())) > 1:
            differing = ", ".join(f"{name}={shown(value)}" for name, value in values.items())
            problems.append(Problem("*", f"model_server_{key}", f"must be the same on every backend, got {differing}"))
    return problems


def _lock_problems(site: Site) -> list[Problem]:
    """Every pinned version a host installs has its lock: nothing is installed unhashed."""
    problems = []
    for spec in site.hosts:
        for key, (package, version) in site.locks_needed(spec.name).items():
            try:
                site.lock(package, version)
            except LockMissing as missing:
                problems.append(Problem(spec.name, key, str(missing)))
    return problems


def _alert_secret_problems(site: Site) -> list[Problem]:
    """A relay login needs its password, which a person puts in the state directory (it is never in the inventory)."""
    config = site.alertmanager_config()
    if not (config.sends_mail and config.smtp_username) or site.alert_smtp_password_file.is_file():
        return []
    return [Problem(site.monitor_host().name, "monitor_alert_smtp_username",
                    f"its password file {site.alert_smtp_password_file} is missing: put the relay's password there "
                    "(one line, chmod 600)")]  # fmt: skip


def _known_key(key: str) -> bool:
    return (
        key in HOST_KEYS
        or is_pyinfra_key(key)  # pyinfra's own connection keys and operation arguments: checked on their own
        or any(key.startswith(f"{prefix}_") for prefix in SETTINGS)
    )


def _did_you_mean(key: str) -> str:
    known = [*HOST_KEYS, *SSH_KEYS, *(k for prefix, cls in SETTINGS.items() for k in prefixed_keys(cls, prefix))]
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _port_problems(
    spec: HostSpec, settings: Mapping[str, HostSettings], specs: list[HostSpec], data: Mapping[str, Any]
) -> list[Problem]:
    """Two services of one host on one port: the second would not start (or, on loopback, take the other's
    traffic). sshd listens on every address, so the SSH port counts too."""
    own, monitor = settings[spec.name], settings[spec.name].monitor
    ports = {"ssh_port": data.get("ssh_port", SSH_PORT), "monitor_node_exporter_port": monitor.node_exporter_port}
    if spec.role == "frontend":
        ports |= {
            "gateway_port": own.gateway.port,
            "mtls_egress_port": own.mtls.egress_port,
            "mtls_balancer_metrics_port": own.mtls.balancer_metrics_port,
            "monitor_probe_port": monitor.probe_port,
        }
    else:
        ports |= {"mtls_port": own.mtls.port, "model_server_port": own.model_server.port}
    # Not monitor_host(): it needs monitor_host to name an inventory host, and a wrong one is the monitor
    # preflight's to report, in this same pass.
    monitor_name = monitor.host or next(s.name for s in specs if s.role == "frontend")
    if spec.name == monitor_name:
        ports["monitor_prometheus_port"] = monitor.prometheus_port
    problems, owners = [], {}
    for key, port in ports.items():
        other = owners.setdefault(port, key)
        if other != key and not (key.startswith("monitor_") and other.startswith("monitor_")):  # those: preflight
            problems.append(Problem(spec.name, key, f"port {port} is also {other} on this host: each needs its own"))
    return problems


def _name_problems(specs: list[HostSpec], base: BaseSettings) -> list[Problem]:
    """A name pinned twice in /etc/hosts resolves to whichever line comes first: the extra hosts must not take
    an inventory host's name or a service alias."""
    names = site_names(specs, base.dns_domain, base.host_aliases, {})
    taken = {}
    for host, pinned in names.hosts.items():
        fqdn_and_short, aliases = pinned[:2], pinned[2:]
        taken |= {name: f"the service alias {name.split('.', 1)[0]!r}" for name in aliases}
        taken |= dict.fromkeys(fqdn_and_short, f"inventory host {host!r}")
    problems = []
    for extra in base.extra_hosts:
        clash = next((taken[name] for name in (extra, fqdn(extra, base.dns_domain)) if name in taken), None)
        if clash:
            problems.append(Problem("*", "base_extra_hosts", f"{extra!r} is a name of {clash} already"))
    return problems


def _host_spec(name: str, groups: tuple[str, ...], data: Mapping[str, Any], problems: list[Problem]):
    roles = [g for g in groups if g in ROLE_GROUPS]
    before = len(problems)
    if len(roles) != 1:
        where = "in no role group" if not roles else f"in both {' and '.join(roles)}"
        problems.append(Problem(name, "groups", f"the host is {where}; put it in exactly one of {ROLE_GROUPS}"))
    problem = HOST_NAME(name)
    if problem:
        problems.append(Problem(name, "name", f"an inventory host's name is its short name on the LAN: {problem}"))
    for key, value_type in HOST_VALUES.items():
        problem = value_type(data[key]) if key in data else f"missing: {HOST_KEYS[key]}"
        if problem:
            problems.append(Problem(name, key, problem))
    if len(problems) > before:
        return None
    return HostSpec(
        name=name,
        address=data["ssh_hostname"],
        role=roles[0],
        memory_gib=float(data["hw_memory_gib"]),
        cpu_cores=data["hw_cpu_cores"],
        ssh_port=data.get("ssh_port", SSH_PORT),
    )


def _check_site_wide(hosts: Mapping[str, tuple[tuple[str, ...], Mapping[str, Any]]], problems: list[Problem]):
    prefixed = {key for _, data in hosts.values() for key in data if key.startswith(SITE_WIDE_PREFIXES)}
    for key in (*SITE_WIDE, *sorted(prefixed)):
        values = {name: data.get(key) for name, (_, data) in hosts.items()}
        if len(set(map(_comparable, values.values()))) > 1:
            differing = ", ".join(f"{name}={shown(value)}" for name, value in values.items())
            problems.append(Problem("*", key, f"must be the same on every host, got {differing}"))


def _comparable(value: Any) -> Any:
    """A value as the site-wide check compares it: repr tells 1 from True and 1.0; a huge int has none."""
    try:
        return repr(value)
    except Exception:  # ValueError: too many digits
        return value if isinstance(value, int) else id(value)


def _address(value: Any) -> ipaddress.IPv4Address | None:
    """A usable LAN address, or None (the value types report what is wrong with the others)."""
    return ipaddress.IPv4Address(value) if LanIPv4()(value) is None else None


def _check_addresses(hosts: Mapping[str, tuple[tuple[str, ...], Mapping[str, Any]]], problems: list[Problem]):
    owners: dict[ipaddress.IPv4Address, str] = {}
    for name, (_, data) in hosts.items():
        address = _address(data.get("ssh_hostname"))
        if address in owners:
            message = f"address {address} is already used by host {owners[address]!r}"
            problems.append(Problem(name, "ssh_hostname", message))
        elif address is not None:
            owners[address] = name
    for name, (_, data) in hosts.items():
        extra = data.get("base_extra_hosts")
        for extra_name, extra_address in extra.items() if isinstance(extra, Mapping) else ():
            address = _address(extra_address)
            if address in owners:
                problems.append(
                    Problem(name, "base_extra_hosts", f"{shown(extra_name)} reuses {owners[address]!r}'s address")
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


def check_before_connecting(state) -> None:
    """Have pyinfra validate the inventory it loaded (with --data overrides) before it connects to any host.

    For the repository's config.py, which the pyinfra CLI runs before it loads the inventory: an inventory file
    that forgets its ``check_inventory(__file__)`` is checked all the same. pyinfra's ``State.init`` runs once the
    inventory is loaded, before "Connecting to hosts", and starts a fresh list of callback handlers (so a
    ``host_before_connect`` callback added from config.py would be dropped, and one raised from would fail inside
    each host's connection greenlet): the check runs right after ``init``, and its InventoryError is the error
    pyinfra prints, exiting non-zero.
    """
    init = state.init

    def init_then_check(inventory, *args, **kwargs):
        init(inventory, *args, **kwargs)
        site_from_inventory(inventory)

    state.init = init_then_check


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

"""The inventory's rules across keys and hosts: each host's keys are checked one by one in ``schema`` first.

Three passes, each only if the one before found nothing, as each relies on what the one before holds: the raw
data across hosts (``data_problems``), the typed settings across roles and hosts (``settings_problems``), and the
control machine's files a built site needs (``control_problems``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from roles.base.config import preflight
from roles.common.locks import LockMissing
from roles.common.names import HostSpec, alias_problems, fqdn, site_names
from roles.common.settings import Problem
from roles.common.values.core import shown
from roles.common.values.network import LanIPv4
from roles.gateway.config import PREFLIGHT as GATEWAY_PREFLIGHT
from roles.inventory.schema import SITE_WIDE, SITE_WIDE_PREFIXES, SSH_PORT, Hosts
from roles.model_server.config import PREFLIGHT as MODEL_SERVER_PREFLIGHT
from roles.model_server.config import gtt_gib, gtt_problems, kv_cache, unread_problems
from roles.model_server.decode_floors import worst_chat_s, worst_cold_prompt_s
from roles.monitor.common import preflight as monitor_preflight
from roles.pki.config import PREFLIGHT as PKI_PREFLIGHT
from roles.site.exposure import served
from roles.site.settings import HostSettings
from roles.site.site import Site

# The roles' own rules, each run on the hosts of the groups it names.
PREFLIGHTS = (PKI_PREFLIGHT, MODEL_SERVER_PREFLIGHT, GATEWAY_PREFLIGHT)

# What makes backends interchangeable behind a balancer: every chat may land on any of them, and the gateway asks
# for one model id, context and answer length.
SAME_ON_EVERY_BACKEND = ("engine", "model_sha256", "model_alias", "context_tokens", "max_answer_tokens",
                         "chat_template")  # fmt: skip


def data_problems(hosts: Hosts, specs: Sequence[HostSpec]) -> list[Problem]:
    """What is wrong across the hosts' data as given: shared addresses, site-wide keys that differ, a role missing."""
    problems = _address_problems(hosts) + _site_wide_problems(hosts)
    if len(specs) == len(hosts) and not any(s.role == "backend" for s in specs):
        problems.append(Problem("*", "backend", "the site needs at least one backend host"))
    if len(specs) == len(hosts) and not any(s.role == "frontend" for s in specs):
        problems.append(Problem("*", "frontend", "the site needs at least one frontend host"))
    return problems


def settings_problems(hosts: Hosts, specs: Sequence[HostSpec], settings: Mapping[str, HostSettings]) -> list[Problem]:
    """The rules across settings: each role's own preflight, then those across roles and across hosts."""
    problems = []
    for spec in specs:
        own = settings[spec.name]
        for each in PREFLIGHTS:
            if spec.role in each.groups:
                problems += each.check(getattr(own, each.prefix), spec)
        problems += _memory_problems(spec, own)
        if spec.role == "backend":
            given = (key.removeprefix("model_server_") for key in hosts[spec.name][1])
            problems += unread_problems(spec.name, given, own.model_server)
        problems += _port_problems(spec, own, specs, hosts[spec.name][1])
    site_wide = settings[specs[0].name]
    problems += _pool_problems([s for s in specs if s.role == "backend"], settings)
    problems += _timeout_problems(specs, settings)
    problems += monitor_preflight(site_wide.monitor, specs, {key for _, data in hosts.values() for key in data})
    problems += alias_problems(site_wide.base.host_aliases, specs, "base_host_aliases")
    problems += _name_problems(specs, site_wide)
    return problems


# Each timeout on a chat's way covers the worst the site can send, and half as much again: a prompt filling the
# context, none of it cached, at the slowest backend's published (or, in the lab, measured) prompt rate, then its
# longest answer at the decode floor. Half again: the other slots share the device meanwhile.
TIMEOUT_MARGIN = 1.5


def _timeout_problems(specs: Sequence[HostSpec], settings: Mapping[str, HostSettings]) -> list[Problem]:
    """A chat that is still being evaluated must not be cut off on its way: the gateway's request timeout, the
    balancer's and the ingress's read timeouts (silence allowed before the first token)."""
    backends = [settings[s.name].model_server for s in specs if s.role == "backend"]
    prompts = [worst_cold_prompt_s(model) for model in backends]
    chats = [worst_chat_s(model) for model in backends]
    worst_prompt = max((p for p in prompts if p is not None), default=None)
    worst_chat = max((c for c in chats if c is not None), default=None)
    problems = []
    for spec in specs:
        own = settings[spec.name]
        needs = [("mtls_read_timeout_s", own.mtls.read_timeout_s, worst_prompt, "a prompt filling the context")]
        if spec.role == "frontend":
            needs.append(("gateway_request_timeout_s", own.gateway.request_timeout_s, worst_chat,
                          "a prompt filling the context and the longest answer"))  # fmt: skip
        for key, value, worst, what in needs:
            if worst is not None and value < TIMEOUT_MARGIN * worst:
                message = (
                    f"{value} s would cut off chats the site can send: {what} takes {worst:.0f} s on the slowest"
                    f" backend (docs/roles.md, role mtls: timeouts); set at least {TIMEOUT_MARGIN * worst:.0f}"
                )
                problems.append(Problem(spec.name, key, message))
    return problems


def control_problems(site: Site) -> list[Problem]:
    """What the site needs of the control machine before a deploy: its locks, the alert relay's password."""
    return _lock_problems(site) + _alert_secret_problems(site)


def _memory_problems(spec: HostSpec, settings: HostSettings) -> list[Problem]:
    """The host's memory budget: base sizes the system's share and the swap, a backend's model server adds the model
    and its KV cache, in RAM or, on a GPU's unified memory, in the GTT it sizes."""
    if spec.role != "backend":
        return preflight(settings.base, spec, 0.0)
    model, reserve = settings.model_server, settings.base.system_reserve_gib
    gtt = gtt_gib(model, spec.memory_gib, reserve)
    return preflight(settings.base, spec, model.model_size_gib, kv_cache(model), gtt) + gtt_problems(
        model, spec, reserve
    )


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
    for spec in site.topology.hosts:
        for key, (package, version) in site.locks_needed(spec.name).items():
            try:
                site.control.lock(package, version)
            except LockMissing as missing:
                problems.append(Problem(spec.name, key, str(missing)))
    return problems


def _alert_secret_problems(site: Site) -> list[Problem]:
    """A relay login needs its password, which a person puts in the state directory (it is never in the inventory)."""
    config = site.alertmanager_config()
    if (
        not (config.sends_mail and config.settings.alert_smtp_username)
        or site.control.alert_smtp_password_file.is_file()
    ):
        return []
    message = (
        f"its password file {site.control.alert_smtp_password_file} is missing: put the relay's password there "
        "(one line, chmod 600)"
    )
    return [Problem(site.topology.monitor_host.name, "monitor_alert_smtp_username", message)]


def _port_problems(
    spec: HostSpec, own: HostSettings, specs: Sequence[HostSpec], data: Mapping[str, Any]
) -> list[Problem]:
    """Two services of one host on one port (roles/site/exposure.SERVICES, loopback and sshd's included): the second
    would not start, or, on loopback, would take the other's traffic."""
    # Not monitor_host(): it needs monitor_host to name an inventory host, and a wrong one is the monitor
    # preflight's to report, in this same pass.
    monitor_name = own.monitor.host or next(s.name for s in specs if s.role == "frontend")
    ssh_port = data.get("ssh_port", SSH_PORT)
    problems, owners = [], {}
    for service, port in served(spec.role, spec.name == monitor_name, own, ssh_port):
        other = owners.setdefault(port, service)
        if other is not service:
            message = f"port {port} is also {other.key}, the {other.what}, on this host: each needs its own"
            problems.append(Problem(spec.name, service.key, message))
    return problems


def _name_problems(specs: Sequence[HostSpec], site_wide: HostSettings) -> list[Problem]:
    """A name pinned twice in /etc/hosts resolves to whichever line comes first: the extra hosts must not take
    an inventory host's name or a service alias."""
    base = site_wide.base
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


def _site_wide_problems(hosts: Hosts) -> list[Problem]:
    prefixed = {key for _, data in hosts.values() for key in data if key.startswith(SITE_WIDE_PREFIXES)}
    problems = []
    for key in (*SITE_WIDE, *sorted(prefixed)):
        values = {name: data.get(key) for name, (_, data) in hosts.items()}
        if len(set(map(_comparable, values.values()))) > 1:
            differing = ", ".join(f"{name}={shown(value)}" for name, value in values.items())
            problems.append(Problem("*", key, f"must be the same on every host, got {differing}"))
    return problems


def _comparable(value: Any) -> Any:
    """A value as the site-wide check compares it: repr tells 1 from True and 1.0; a huge int has none."""
    try:
        return repr(value)
    except Exception:  # ValueError: too many digits
        return value if isinstance(value, int) else id(value)


def _address(value: Any) -> ipaddress.IPv4Address | None:
    """A usable LAN address, or None (the value types report what is wrong with the others)."""
    return ipaddress.IPv4Address(value) if LanIPv4()(value) is None else None


def _address_problems(hosts: Hosts) -> list[Problem]:
    problems = []
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
    return problems

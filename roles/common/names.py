"""The site's names, worked out once: /etc/hosts, certificate SANs, the egress proxy's upstream name and the
gateway's allowed origins all read the one ``SiteNames``. If two rules computed them, a TLS name check would fail
the day they disagreed."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from roles.common.settings import Problem


@dataclass(frozen=True)
class HostSpec:
    """One inventory host as the rules see it."""

    name: str
    address: str
    role: str
    memory_gib: float
    cpu_cores: int
    ssh_port: int = 22  # sshd's port: the firewall keeps it open to the admin networks
    debian: int = 13  # the Debian release installed (VERSION_ID): packages, the GPU stack and the lab's image follow it


ROLE_GROUPS = ("frontend", "backend")  # the inventory groups that say what a host is: each host is in one
# Groups whose hosts are interchangeable: an alias of such a group is pinned to every host in it (llm.<domain> names
# each backend, and each backend's certificate carries it). A frontend holds its own people's chats, so an alias
# of a frontend stays with the first one.
POOLED_GROUPS = ("backend",)


def fqdn(name: str, domain: str) -> str:
    return name if "." in name else f"{name}.{domain}"


@dataclass(frozen=True)
class SiteNames:
    hosts: Mapping[str, tuple[str, ...]]  # inventory host -> its names: FQDN, short name, then its service aliases
    addresses: Mapping[str, str]  # inventory host -> its LAN address
    extra: tuple[tuple[str, tuple[str, ...]], ...]  # (address, names) of the other LAN machines pinned too
    services: Mapping[str, str]  # group -> the name a client uses for it: its first alias, else its first host

    def of(self, host: str) -> tuple[str, ...]:
        return self.hosts[host]

    @property
    def hosts_entries(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The /etc/hosts block: every inventory host in inventory order, then the extra hosts."""
        return (*((self.addresses[host], names) for host, names in self.hosts.items()), *self.extra)


def site_names(
    hosts: Sequence[HostSpec], domain: str, aliases: Mapping[str, str], extra_hosts: Mapping[str, str]
) -> SiteNames:
    """``aliases`` maps a service name to the group it pins: every host of a pooled group, else the group's first
    host (in inventory order)."""
    first: dict[str, HostSpec] = {}
    for spec in hosts:
        first.setdefault(spec.role, spec)
    names = {}
    for spec in hosts:
        own = [fqdn(spec.name, domain), spec.name]
        for alias, group in aliases.items():
            if first.get(group) is spec or (group == spec.role and group in POOLED_GROUPS):
                own += [fqdn(alias, domain), alias]
        names[spec.name] = tuple(own)
    extra = tuple(
        (address, (fqdn(name, domain),) + ((name,) if "." not in name else ())) for name, address in extra_hosts.items()
    )
    services = {}
    for group, spec in first.items():
        pinned = [fqdn(alias, domain) for alias, aliased in aliases.items() if aliased == group]
        services[group] = pinned[0] if pinned else names[spec.name][0]
    return SiteNames(
        hosts=types.MappingProxyType(names),
        addresses=types.MappingProxyType({spec.name: spec.address for spec in hosts}),
        extra=extra,
        services=types.MappingProxyType(services),
    )


def alias_problems(aliases: Mapping[str, str], hosts: Sequence[HostSpec], key: str) -> list[Problem]:
    """An alias must pin a group that has a host, and must not shadow a host's own name."""
    problems = []
    roles = {h.role for h in hosts}
    for alias, group in aliases.items():
        if group not in roles:
            problems.append(Problem("*", key, f"alias {alias!r} names group {group!r}, which has no host"))
        if alias in {h.name for h in hosts}:
            problems.append(Problem("*", key, f"alias {alias!r} is also a host name"))
    return problems

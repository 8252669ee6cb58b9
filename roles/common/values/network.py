"""Names and addresses on the LAN: DNS labels and names, IPv4 addresses, host names, private networks."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from roles.common.values.core import ValueType, shown

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"


@dataclass(frozen=True)
class DnsLabel(ValueType):
    """One DNS label (a short host name or an alias): lowercase letters, digits and -."""

    annotation = str

    @property
    def name(self) -> str:
        return "DNS label"

    @property
    def describe(self) -> str:
        return "a DNS label: 1 to 63 lowercase letters, digits and -, not starting or ending with -"

    def problem(self, value: str) -> str | None:
        return None if re.fullmatch(_LABEL, value, re.ASCII) else f"{shown(value)} is not a DNS label ({self.describe})"


@dataclass(frozen=True)
class DnsName(ValueType):
    """A DNS name: labels joined by dots, at most 253 characters."""

    annotation = str

    @property
    def name(self) -> str:
        return "DNS name"

    @property
    def describe(self) -> str:
        return "a DNS name: DNS labels joined by dots (lowercase letters, digits, -), at most 253 characters"

    def problem(self, value: str) -> str | None:
        labels = value.split(".")
        if len(value) > 253 or not all(re.fullmatch(_LABEL, label, re.ASCII) for label in labels):
            return f"{shown(value)} is not a valid DNS name ({self.describe})"
        if labels[-1].isdigit():
            return f"{shown(value)} is not a valid DNS name (its last label is a number: an address, not a name)"
        return None


NO_IPV6 = "IPv6 addresses are not supported (clawlan writes IPv4 into /etc/hosts, nginx and Prometheus): use IPv4"


@dataclass(frozen=True)
class LanIPv4(ValueType):
    """An IPv4 address a host on the LAN can be reached at."""

    annotation = str

    @property
    def name(self) -> str:
        return "LAN IPv4 address"

    @property
    def describe(self) -> str:
        return (
            "an IPv4 address usable on a LAN, like 192.168.1.10 (not loopback, link-local, multicast, broadcast, "
            "0.0.0.0/8 or reserved; IPv6 is not supported)"
        )

    def problem(self, value: str) -> str | None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return f"must be an IPv4 address like 192.168.1.10, got {shown(value)}"
        if address.version == 6:
            return f"{value}: {NO_IPV6}"
        refused = (
            (address.is_loopback, "a loopback address: no other host reaches it"),
            (address in ipaddress.ip_network("0.0.0.0/8"), "in 0.0.0.0/8 ('this network'), no host's address"),
            (address.is_multicast, "a multicast address"),
            (address == ipaddress.ip_address("255.255.255.255"), "the broadcast address"),
            (address.is_link_local, "link-local (169.254.0.0/16): made up by each host, never pinned"),
            (address.is_reserved, "reserved (240.0.0.0/4)"),
        )
        reason = next((reason for bad, reason in refused if bad), None)
        return f"{value} is {reason}; give the host's LAN address" if reason else None


@dataclass(frozen=True)
class HostName(ValueType):
    """A host as clients reach it: a DNS name or an IPv4 address (a time server, a URL's host)."""

    annotation = str

    @property
    def name(self) -> str:
        return "DNS name or IPv4 address"

    @property
    def describe(self) -> str:
        return "a DNS name or an IPv4 address (IPv6 is not supported)"

    def problem(self, value: str) -> str | None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return DnsName()(value) and f"{shown(value)} is neither a DNS name nor an IPv4 address"
        return LanIPv4()(value)


# RFC 1918's blocks: every network a setting names admits people (SSH, the gateway, the monitor's UIs) or is one the
# site CA may sign names for, so none may reach past them: not the internet, not "everything" (/0).
PRIVATE_BLOCKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_BLOCKS = "10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"


@dataclass(frozen=True)
class PrivateNetworks(ValueType):
    """Private IPv4 networks (RFC 1918), at least one: each admits people or names the CA signs, so none reaches past
    RFC 1918's own blocks."""

    annotation = tuple[str, ...]

    @property
    def describe(self) -> str:
        return (
            f"a non-empty list of private IPv4 networks like 192.168.1.0/24, each inside {_BLOCKS} (RFC 1918); "
            "public ranges, /0, link-local and IPv6 are refused"
        )

    def has_type(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)

    def problem(self, value: tuple[str, ...]) -> str | None:
        for network in value:
            try:
                parsed = ipaddress.ip_network(network) if network.isprintable() and " " not in network else None
            except ValueError:
                parsed = None
            if parsed is None:
                return f"{shown(network)} is not a network (like 192.168.0.0/16)"
            if parsed.version == 6:
                return f"{network}: {NO_IPV6}"
            if reason := _not_private(parsed):
                return f"{network} {reason}; name the LAN's own networks, inside {_BLOCKS}"
        return None if value else "must name at least one network, or nobody can reach the service"


def _not_private(network: ipaddress.IPv4Network) -> str | None:
    if any(network.subnet_of(block) for block in PRIVATE_BLOCKS):
        return None
    if network.prefixlen == 0:
        return "is every address, the whole internet's included"
    wider = [block for block in PRIVATE_BLOCKS if network.supernet_of(block)]
    if wider:
        return f"holds public addresses beside the private block {wider[0]}"
    if network.is_link_local:
        return "is link-local: addresses each host makes up, no LAN's own"
    return "is not a private LAN range (RFC 1918)"

"""The inventory's keys, host by host: what each key may hold, and the typed settings and host spec made of them.

Every key is checked here on its own; ``rules`` holds the rules across keys and hosts.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, get_type_hints

from roles.common.connection import SSH_KEYS, is_pyinfra_key, pyinfra_key_problems
from roles.common.names import ROLE_GROUPS, HostSpec
from roles.common.settings import Problem, every_key_site_wide, is_site_wide, parse_settings, prefixed_keys
from roles.common.values.core import shown
from roles.common.values.network import DnsLabel, LanIPv4
from roles.common.values.numbers import Number, WholeNumber
from roles.site.settings import HostSettings

# host name -> (its groups, its data): the inventory as pyinfra merges it, before any check.
Hosts = Mapping[str, tuple[tuple[str, ...], Mapping[str, Any]]]

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
    "hw_debian": "the Debian release installed, 12 or 13 (checked likewise; a GPU backend needs 13)",
}
HOST_VALUES = {
    "ssh_hostname": LanIPv4(),
    "hw_memory_gib": Number(0.5, 65536),
    "hw_cpu_cores": WholeNumber(1, 4096),
    "hw_debian": WholeNumber(12, 13),
}
HOST_NAME = DnsLabel()  # an inventory host's name: its short name in /etc/hosts and in its certificate
SSH_PORT = 22  # pyinfra's (and sshd's) port when the inventory gives no ssh_port


def text_keyed(hosts: Hosts, problems: list[Problem]) -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    """The hosts with their text keys only; every other key is a problem."""
    for name, (_, raw) in hosts.items():
        problems += [Problem(name, shown(key), "a key must be text") for key in raw if not isinstance(key, str)]
    return {
        name: (groups, {k: v for k, v in raw.items() if isinstance(k, str)}) for name, (groups, raw) in hosts.items()
    }


def parse_host(
    name: str, groups: tuple[str, ...], data: Mapping[str, Any], problems: list[Problem]
) -> tuple[HostSpec | None, HostSettings | None]:
    """The host's spec and settings, each None where a key of it is wrong (which ``problems`` then names)."""
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
    settings = HostSettings(**parsed) if all(each is not None for each in parsed.values()) else None
    return spec, settings


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
        debian=data["hw_debian"],
        ssh_port=data.get("ssh_port", SSH_PORT),
    )

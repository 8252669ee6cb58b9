"""Settings of the base role: inventory keys ``base_*``, one line each with the reason for the default."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from roles.common.settings import between, setting

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _dns_name(value: str) -> str | None:
    labels = value.split(".")
    return None if all(_LABEL.match(label) for label in labels) else f"{value!r} is not a valid DNS name"


def _aliases(value: Mapping[str, str]) -> str | None:
    bad = [alias for alias in value if not _LABEL.match(alias)]
    return f"alias names must be single DNS labels, not {bad}" if bad else None


@dataclass(frozen=True)
class BaseSettings:
    dns_domain: str = setting(
        "home.arpa", "Domain of every appliance name; home.arpa is reserved for home networks (RFC 8375).", _dns_name
    )
    host_aliases: dict[str, str] = setting(
        {"llm": "backend", "chat": "frontend"},
        "Service names pinned to the first host of a group, so clients never depend on LAN DNS.",
        _aliases,
    )
    extra_hosts: dict[str, str] = setting(
        {}, "Other LAN machines (name: address) pinned in /etc/hosts too, e.g. a NAS holding the model."
    )
    thp_enabled: Literal["always", "madvise", "never"] = setting(
        "always", "llama.cpp never calls madvise(MADV_HUGEPAGE), so only 'always' gives its buffers huge pages."
    )
    thp_defrag: Literal["always", "defer", "defer+madvise", "madvise", "never"] = setting(
        "defer+madvise", "Allocations never stall on compaction; khugepaged collapses pages in the background."
    )
    hugetlb_pool_mib: int = setting(
        0,
        "HugeTLB pool in MiB (2 MiB pages); llama.cpp cannot use it, so any pool only takes RAM from the model.",
        between(0, 16 * 1024 * 1024),
    )
    system_reserve_gib: float = setting(
        4.0, "RAM kept for the OS and services when checking that the model and a HugeTLB pool fit.", between(0, 1024)
    )
    swap_size_mib: int | Literal["auto"] = setting(
        "auto", "Swapfile size; 'auto' is ceil(sqrt(RAM GiB)) GiB capped at 20 % of RAM. 0 removes the swapfile."
    )
    swap_path: str = setting("/swapfile", "Where the swapfile lives; it must be on a filesystem that supports swap.")
    swappiness: int = setting(
        10, "Swap is a buffer against the OOM killer, not a home for the model's working set.", between(0, 200)
    )
    tcp_keepalive_time_s: int = setting(
        60,
        "Idle seconds before probing a connection: a dead peer of a token stream is found in minutes.",
        between(1, 7200),
    )
    tcp_keepalive_intvl_s: int = setting(10, "Seconds between keepalive probes.", between(1, 600))
    tcp_keepalive_probes: int = setting(6, "Unanswered probes before the connection is dropped.", between(1, 30))
    ntp_servers: tuple[str, ...] = setting(
        (), "Time servers for systemd-timesyncd; empty keeps Debian's default pool. Certificates need a true clock."
    )

"""Settings of the base role: inventory keys ``base_*``, one line each with the reason for the default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from roles.common.settings import setting
from roles.common.values.containers import ListOf, Mapping
from roles.common.values.network import DnsLabel, DnsName, HostName, LanIPv4
from roles.common.values.numbers import Choice, Either, Flag, Number, WholeNumber
from roles.common.values.paths import AbsPath

# Where a swapfile may live: the usual places (Debian's /swapfile, Ubuntu's /swap.img, a /swap volume) and data
# volumes; never /etc, /usr, /boot, /proc, /dev, /run or a home. The swap operation also refuses, on the host, to
# replace a file there that is not a swap area.
SWAP_ROOTS = ("/swapfile", "/swap.img", "/swap", "/var/lib/swap", "/var/swap", "/srv", "/mnt", "/data")


@dataclass(frozen=True)
class BaseSettings:
    # The site's names are worked out once (roles.common.names), so what makes them is site-wide.
    dns_domain: str = setting(
        "home.arpa", "Domain of every appliance name; home.arpa is reserved for home networks (RFC 8375).", DnsName(),
        site_wide=True,
    )  # fmt: skip
    host_aliases: dict[str, Literal["frontend", "backend"]] = setting(
        {"llm": "backend", "chat": "frontend"},
        "Service names pinned in /etc/hosts (a backend alias to every backend, a frontend one to the first).",
        Mapping(DnsLabel(), Choice("frontend", "backend")),
        site_wide=True,
    )
    extra_hosts: dict[str, str] = setting(
        {}, "Other LAN machines (name: address) pinned in /etc/hosts too, e.g. a NAS holding the model.",
        Mapping(DnsName(), LanIPv4()), site_wide=True,
    )  # fmt: skip
    thp_enabled: Literal["always", "madvise", "never"] = setting(
        "always", "llama.cpp never calls madvise(MADV_HUGEPAGE), so only 'always' gives its buffers huge pages.",
        Choice("always", "madvise", "never"),
    )  # fmt: skip
    thp_defrag: Literal["always", "defer", "defer+madvise", "madvise", "never"] = setting(
        "defer+madvise", "Allocations never stall on compaction; khugepaged collapses pages in the background.",
        Choice("always", "defer", "defer+madvise", "madvise", "never"),
    )  # fmt: skip
    hugetlb_pool_mib: int = setting(
        0,
        "HugeTLB pool in MiB (2 MiB pages); llama.cpp cannot use it, so any pool only takes RAM from the model.",
        WholeNumber(0, 16 * 1024 * 1024),
    )
    hw_memory_tolerance_percent: int = setting(
        10, "How far a host's RAM may be from hw_memory_gib: firmware, the kernel and an iGPU's reserve take a few %.",
        WholeNumber(0, 50),
    )  # fmt: skip
    system_reserve_gib: float = setting(
        4.0, "RAM kept for the OS and services when checking that the model and a HugeTLB pool fit.", Number(0, 1024)
    )
    swap_size_mib: int | Literal["auto"] = setting(
        "auto", "Swapfile size; 'auto' is ceil(sqrt(RAM GiB)) GiB capped at 20 % of RAM. 0 removes the swapfile.",
        Either(WholeNumber(0, 16 * 1024 * 1024), Choice("auto")),
    )  # fmt: skip
    swap_path: str = setting(
        "/swapfile", "Where the swapfile lives; it must be on a filesystem that supports swap.", AbsPath(SWAP_ROOTS)
    )
    swappiness: int = setting(
        10, "Swap is a buffer against the OOM killer, not a home for the model's working set.", WholeNumber(0, 200)
    )
    tcp_keepalive_time_s: int = setting(
        60,
        "Idle seconds before probing a connection: a dead peer of a token stream is found in minutes.",
        WholeNumber(1, 7200),
    )
    tcp_keepalive_intvl_s: int = setting(10, "Seconds between keepalive probes.", WholeNumber(1, 600))
    tcp_keepalive_probes: int = setting(6, "Unanswered probes before the connection is dropped.", WholeNumber(1, 30))
    ntp_servers: tuple[str, ...] = setting(
        (), "Time servers for systemd-timesyncd; empty keeps Debian's default pool. Certificates need a true clock.",
        ListOf(HostName(), max_items=16),
    )  # fmt: skip
    log_retention_days: int = setting(
        30, "The system journal keeps this many days (and at most 1 GiB): services' logs can quote what people send.",
        WholeNumber(1, 3650),
    )  # fmt: skip
    security_updates: bool = setting(
        True, "Debian security updates: pending ones applied by the deploy, new ones daily by unattended-upgrades. "
        "Off: the operator installs them; BASE-15 reports what waits either way.",
        Flag(),
    )  # fmt: skip

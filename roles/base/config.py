"""What the base role deploys on one host, resolved from validated settings, and the rules across them."""

from __future__ import annotations

from dataclasses import dataclass

from roles.base import sizing
from roles.base.settings import BaseSettings
from roles.settings import Problem


@dataclass(frozen=True)
class Sysctl:
    key: str
    value: int
    reason: str


@dataclass(frozen=True)
class BaseConfig:
    hosts_entries: tuple[tuple[str, tuple[str, ...]], ...]  # (address, names) for the /etc/hosts block
    thp_enabled: str
    thp_defrag: str
    swap_size_mib: int
    swap_path: str
    sysctls: tuple[Sysctl, ...]
    ntp_servers: tuple[str, ...]

    @property
    def hugetlb_pages(self) -> int:
        return next(s.value for s in self.sysctls if s.key == "vm.nr_hugepages")


@dataclass(frozen=True)
class HostSpec:
    """One inventory host as the rules see it."""

    name: str
    address: str
    role: str
    memory_gib: float
    cpu_cores: int


def fqdn(name: str, domain: str) -> str:
    return name if "." in name else f"{name}.{domain}"


def hosts_entries(settings: BaseSettings, hosts: list[HostSpec]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    entries = []
    for spec in hosts:
        names = [fqdn(spec.name, settings.dns_domain), spec.name]
        for alias, group in settings.host_aliases.items():
            members = [h for h in hosts if h.role == group]
            if members and members[0].name == spec.name:
                names += [fqdn(alias, settings.dns_domain), alias]
        entries.append((spec.address, tuple(names)))
    for name, address in settings.extra_hosts.items():
        names = (fqdn(name, settings.dns_domain),) + ((name,) if "." not in name else ())
        entries.append((address, names))
    return tuple(entries)


def swap_size_mib(settings: BaseSettings, spec: HostSpec) -> int:
    if settings.swap_size_mib == "auto":
        return sizing.auto_swap_mib(spec.memory_gib)
    return settings.swap_size_mib


def build_base_config(settings: BaseSettings, spec: HostSpec, hosts: list[HostSpec]) -> BaseConfig:
    sysctls = (
        Sysctl("vm.swappiness", settings.swappiness, "swap is a buffer against the OOM killer, not for the model"),
        Sysctl(
            "vm.nr_hugepages",
            sizing.hugetlb_pages(settings.hugetlb_pool_mib),
            "HugeTLB pool in 2 MiB pages; 0 unless something on this host maps hugetlbfs",
        ),
        Sysctl(
            "net.ipv4.tcp_keepalive_time",
            settings.tcp_keepalive_time_s,
            "probe idle connections early: a token stream's dead peer is found in minutes, not hours",
        ),
        Sysctl("net.ipv4.tcp_keepalive_intvl", settings.tcp_keepalive_intvl_s, "seconds between keepalive probes"),
        Sysctl("net.ipv4.tcp_keepalive_probes", settings.tcp_keepalive_probes, "unanswered probes before drop"),
        Sysctl(
            "net.ipv4.tcp_slow_start_after_idle",
            0,
            "a stream that pauses between tokens keeps its congestion window instead of restarting slow",
        ),
    )
    return BaseConfig(
        hosts_entries=hosts_entries(settings, hosts),
        thp_enabled=settings.thp_enabled,
        thp_defrag=settings.thp_defrag,
        swap_size_mib=swap_size_mib(settings, spec),
        swap_path=settings.swap_path,
        sysctls=sysctls,
        ntp_servers=settings.ntp_servers,
    )


def preflight(settings: BaseSettings, spec: HostSpec, hosts: list[HostSpec], model_gib: float) -> list[Problem]:
    """Rules across settings, checked for every host before any host is touched."""
    problems = []
    cap = sizing.swap_cap_mib(spec.memory_gib)
    if settings.swap_size_mib != "auto" and settings.swap_size_mib > cap:
        problems.append(
            Problem(
                spec.name,
                "base_swap_size_mib",
                f"{settings.swap_size_mib} MiB is more than 20 % of this host's {spec.memory_gib} GiB RAM "
                f"(at most {cap} MiB)",
            )
        )
    if settings.swap_size_mib != 0 and not settings.swap_path.startswith("/"):
        problems.append(Problem(spec.name, "base_swap_path", f"must be an absolute path, got {settings.swap_path!r}"))

    room = sizing.hugetlb_room_gib(spec.memory_gib, model_gib, settings.system_reserve_gib)
    if room < 0:
        problems.append(
            Problem(
                spec.name,
                "model_server_model_size_gib",
                f"a {model_gib} GiB model needs {model_gib * sizing.MODEL_OVERHEAD_FACTOR:.1f} GiB with its overhead, "
                f"plus {settings.system_reserve_gib} GiB for the system: more than this host's {spec.memory_gib} GiB",
            )
        )
    elif settings.hugetlb_pool_mib / 1024 > room:
        problems.append(
            Problem(
                spec.name,
                "base_hugetlb_pool_mib",
                f"a {settings.hugetlb_pool_mib} MiB pool does not fit: {spec.memory_gib} GiB RAM - model "
                f"{model_gib} GiB x {sizing.MODEL_OVERHEAD_FACTOR} - reserve {settings.system_reserve_gib} GiB "
                f"leaves {max(room, 0):.1f} GiB",
            )
        )

    roles = {h.role for h in hosts}
    for alias, group in settings.host_aliases.items():
        if group not in roles:
            message = f"alias {alias!r} names group {group!r}, which has no host"
            problems.append(Problem(spec.name, "base_host_aliases", message))
        if alias in {h.name for h in hosts}:
            problems.append(Problem(spec.name, "base_host_aliases", f"alias {alias!r} is also a host name"))
    return problems

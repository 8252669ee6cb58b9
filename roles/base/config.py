"""What the base role deploys on one host, resolved from validated settings, and the rules across them."""

from __future__ import annotations

from dataclasses import dataclass

from roles.base import sizing
from roles.base.settings import BaseSettings
from roles.common.names import HostSpec
from roles.common.settings import Problem


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
    security_updates: bool
    log_retention_days: int
    apt_components: tuple[str, ...] = ()  # Debian components beyond main the host needs (a GPU's firmware)

    @property
    def hugetlb_pages(self) -> int:
        return next(s.value for s in self.sysctls if s.key == "vm.nr_hugepages")


def swap_size_mib(settings: BaseSettings, spec: HostSpec) -> int:
    if settings.swap_size_mib == "auto":
        return sizing.auto_swap_mib(spec.memory_gib)
    return settings.swap_size_mib


def build_base_config(
    settings: BaseSettings,
    spec: HostSpec,
    hosts_entries: tuple[tuple[str, tuple[str, ...]], ...],
    apt_components: tuple[str, ...] = (),
) -> BaseConfig:
    """``hosts_entries``: the site's names (roles.common.names), the /etc/hosts block on every host.
    ``apt_components``: Debian components beyond main that another role's packages come from (a GPU's firmware)."""
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
        hosts_entries=hosts_entries,
        thp_enabled=settings.thp_enabled,
        thp_defrag=settings.thp_defrag,
        swap_size_mib=swap_size_mib(settings, spec),
        swap_path=settings.swap_path,
        sysctls=sysctls,
        ntp_servers=settings.ntp_servers,
        security_updates=settings.security_updates,
        log_retention_days=settings.log_retention_days,
        apt_components=apt_components,
    )


def preflight(
    settings: BaseSettings,
    spec: HostSpec,
    model_gib: float,
    kv_cache: tuple[str, float, str] | None = None,
    gtt_gib: int = 0,
) -> list[Problem]:
    """Rules across settings, checked for every host before any host is touched.

    ``kv_cache``: the model server's (inventory key, GiB, how it was counted), allocated at start beside the model.
    ``gtt_gib``: on unified memory (a GPU's GTT), the RAM the GPU may map, where the model and its KV cache live:
    the model server checks that they fit it, and the budget counts the GTT as their share. Not MemTotal, which a
    BIOS carve-out shrinks. 0: the model is in RAM.
    """
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
    if gtt_gib:
        return problems + _gtt_pool_problems(settings, spec, gtt_gib)

    room = sizing.hugetlb_room_gib(spec.memory_gib, model_gib, settings.system_reserve_gib)
    kv_key, kv_gib, kv_detail = kv_cache or ("", 0.0, "")
    if room < 0:
        problems.append(
            Problem(
                spec.name,
                "model_server_model_size_gib",
                f"a {model_gib} GiB model needs {model_gib * sizing.MODEL_OVERHEAD_FACTOR:.1f} GiB with its overhead, "
                f"plus {settings.system_reserve_gib} GiB for the system: more than this host's {spec.memory_gib} GiB",
            )
        )
    elif kv_gib > room:
        problems.append(
            Problem(
                spec.name,
                kv_key,
                f"the KV cache and prompt reuse ({kv_detail}) need {kv_gib:.1f} GiB, but this host's "
                f"{spec.memory_gib} GiB RAM - model "
                f"{model_gib} GiB x {sizing.MODEL_OVERHEAD_FACTOR} - reserve {settings.system_reserve_gib} GiB "
                f"leaves {room:.1f} GiB: fewer slots or a shorter context per slot",
            )
        )
    elif settings.hugetlb_pool_mib / 1024 > room - kv_gib:
        problems.append(
            Problem(
                spec.name,
                "base_hugetlb_pool_mib",
                f"a {settings.hugetlb_pool_mib} MiB pool does not fit: {spec.memory_gib} GiB RAM - model "
                f"{model_gib} GiB x {sizing.MODEL_OVERHEAD_FACTOR} - KV cache {kv_gib:.1f} GiB "
                f"- reserve {settings.system_reserve_gib} GiB leaves {max(room - kv_gib, 0):.1f} GiB",
            )
        )

    return problems


def _gtt_pool_problems(settings: BaseSettings, spec: HostSpec, gtt_gib: int) -> list[Problem]:
    """A HugeTLB pool beside a GTT: the GPU may map up to the GTT, the system keeps its reserve, the pool gets the
    rest. (A GTT over RAM - reserve is the model server's to report.)"""
    room = spec.memory_gib - gtt_gib - settings.system_reserve_gib
    if settings.hugetlb_pool_mib and settings.hugetlb_pool_mib / 1024 > room:
        return [
            Problem(
                spec.name,
                "base_hugetlb_pool_mib",
                f"a {settings.hugetlb_pool_mib} MiB pool does not fit: {spec.memory_gib:g} GiB RAM - GTT {gtt_gib} GiB "
                f"(the model's, model_server_gtt_gib) - reserve {settings.system_reserve_gib:g} GiB leaves "
                f"{max(room, 0):.1f} GiB",
            )
        ]
    return []

"""The hardware a host really has, against what the inventory declares (``hw_memory_gib``, ``hw_cpu_cores``,
``hw_debian``).

The declared values size swap, the HugeTLB pool, the model server's threads and slots and the memory budget, and
the inventory check proves the model fits in them before any host is touched. A box swapped for a smaller one
would be sized for the old one without a word: so every deploy reads what the host has first and stops when the
two disagree. The compliance suite reads the same, with the same rule (BASE-18).

What a host has is what its processes may use: the RAM the kernel reports, or less when the host is a container
with a memory limit; the physical cores (not SMT threads) of the CPUs its processes may run on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyinfra.api.exceptions import PyinfraError

from roles.common.names import HostSpec

# One command, no shell variables: the cgroup v2 then v1 memory limit of this host's own cgroup (absent on a
# physical box's root cgroup), the CPUs this shell may run on, each CPU's core and socket, and the Debian release.
COMMAND = (
    "grep -E '^(MemTotal|Cpus_allowed_list):' /proc/meminfo /proc/self/status"
    " && cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
    " ; lscpu --parse=CPU,CORE,SOCKET"
    " ; grep '^VERSION_ID=' /etc/os-release"
)
# cgroup v1 writes "no limit" as the largest page-aligned 64-bit number; anything from 2**60 B (1 EiB) up is none.
UNLIMITED_BYTES = 2**60


@dataclass(frozen=True)
class Hardware:
    memory_gib: float
    cpu_cores: int
    memory_source: str  # "MemTotal" or "cgroup limit": which one was smaller, for the message
    debian: int = 0  # VERSION_ID of /etc/os-release; 0 for none (testing, unstable, not Debian)


def _cpu_list(text: str) -> set[int]:
    """'0-3,8,10-11' -> {0, 1, 2, 3, 8, 10, 11}"""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def physical_cores(lscpu_lines: Iterable[str], allowed: set[int]) -> list[tuple[int, ...]]:
    """The physical cores among the ``allowed`` CPUs, each as its CPUs (SMT siblings share a core), in CPU order,
    from ``lscpu --parse=CPU,CORE,SOCKET``. The lab uses it to give its containers whole cores."""
    cores: dict[tuple[str, str], list[int]] = {}
    for line in lscpu_lines:
        line = line.strip()
        if line and line[0].isdigit() and line.count(",") == 2:
            cpu, core, socket = line.split(",")
            if int(cpu) in allowed:
                cores.setdefault((socket, core), []).append(int(cpu))
    return sorted((tuple(cpus) for cpus in cores.values()), key=min)


def parse(lines: Iterable[str]) -> Hardware:
    lines = [line.strip() for line in lines]
    mem_total_kib = None
    allowed: set[int] | None = None
    limits: list[int] = []
    debian = 0
    for line in lines:
        if line.startswith("/proc/meminfo:MemTotal:"):
            mem_total_kib = int(line.split()[1])
        elif line.startswith("/proc/self/status:Cpus_allowed_list:"):
            allowed = _cpu_list(line.split(":", 2)[2])
        elif line.isdigit():
            limits.append(int(line))
        elif line.startswith("VERSION_ID="):
            version = line.removeprefix("VERSION_ID=").strip('"')
            debian = int(version) if version.isdigit() else 0
    cores = physical_cores(lines, allowed or set())
    if mem_total_kib is None or allowed is None or not cores:
        raise ValueError("could not read MemTotal, the allowed CPUs and lscpu's CPU list")
    memory = mem_total_kib * 1024
    limit = min((value for value in limits if value < UNLIMITED_BYTES), default=None)
    source = "MemTotal"
    if limit is not None and limit < memory:
        memory, source = limit, "cgroup limit"
    return Hardware(memory_gib=round(memory / 2**30, 2), cpu_cores=len(cores), memory_source=source, debian=debian)


@dataclass(frozen=True)
class Mismatch:
    key: str
    declared: float
    found: float
    unit: str
    detail: str

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.key}: declared {self.declared:g}{unit}, found {self.found:g}{unit} ({self.detail})"


def mismatches(spec: HostSpec, found: Hardware, memory_tolerance_percent: int) -> list[Mismatch]:
    """Where the declared hardware and the host's disagree. RAM within the tolerance either way agrees: firmware,
    the kernel and an integrated GPU's reserve take a few percent of what is installed. Cores must be equal."""
    problems = []
    if abs(found.memory_gib - spec.memory_gib) > spec.memory_gib * memory_tolerance_percent / 100:
        tolerance = f"±{memory_tolerance_percent} % (base_hw_memory_tolerance_percent)"
        detail = f"the host's {found.memory_source}; tolerance {tolerance}"
        problems.append(Mismatch("hw_memory_gib", spec.memory_gib, found.memory_gib, "GiB", detail))
    if found.cpu_cores != spec.cpu_cores:
        detail = "physical cores its processes may run on"
        problems.append(Mismatch("hw_cpu_cores", spec.cpu_cores, found.cpu_cores, "cores", detail))
    if found.debian != spec.debian:
        # Packages, the GPU stack and the unit's sandbox follow the release: a box reinstalled with another one
        # would get the wrong ones.
        detail = "VERSION_ID in /etc/os-release; 0: none"
        problems.append(Mismatch("hw_debian", spec.debian, found.debian, "", detail))
    return problems


class HardwareMismatch(PyinfraError):
    """Hosts are not the hardware the inventory declares. Raised while pyinfra prepares the deploy: no operation
    has run on any host yet."""

    def __init__(self, problems: list[tuple[str, Mismatch]]):
        self.problems = problems
        lines = "\n".join(f"  - host {host!r}, key {problem}" for host, problem in problems)
        super().__init__(
            f"the inventory does not describe the hosts' hardware, nothing was changed:\n{lines}\n"
            "  If a box was swapped or upgraded, write what it has in the inventory (its sizing follows) and deploy"
            " again."
        )

"""What a host has, read from the hardware command's output, against what the inventory declares."""

import subprocess

import pytest

from roles.base.hardware import COMMAND, Hardware, HardwareMismatch, mismatches, parse
from roles.common.names import HostSpec

GIB_KIB = 1024 * 1024
# An 8-thread, 4-core box (SMT siblings n and n+4), as lscpu and /proc print it.
LSCPU = ["# CPU,Core,Socket", *(f"{cpu},{cpu % 4},0" for cpu in range(8))]


def output(mem_kib=16 * GIB_KIB - 500_000, allowed="0-7", limits=("max",), version_id='VERSION_ID="13"'):
    return [
        f"/proc/meminfo:MemTotal:       {mem_kib} kB",
        f"/proc/self/status:Cpus_allowed_list:\t{allowed}",
        *limits,
        *LSCPU,
        *([version_id] if version_id else []),
    ]


def spec(memory_gib=16.0, cpu_cores=4, debian=13):
    return HostSpec(name="claw-back", address="10.0.0.20", role="backend", memory_gib=memory_gib, cpu_cores=cpu_cores,
                    debian=debian)  # fmt: skip


def test_physical_cores_not_threads():
    assert parse(output()).cpu_cores == 4


def test_only_the_cores_the_host_may_run_on():
    assert parse(output(allowed="0,4")).cpu_cores == 1  # one core's two threads
    assert parse(output(allowed="0-1,6")).cpu_cores == 3


def test_ram_is_memtotal_without_a_limit():
    cgroup_v1_none = str(2**63 - 4096)
    for limits in (("max",), (), (cgroup_v1_none,)):
        found = parse(output(mem_kib=8 * GIB_KIB, limits=limits))
        assert (found.memory_gib, found.memory_source) == (8.0, "MemTotal")


def test_a_containers_memory_limit_is_its_ram():
    found = parse(output(limits=(str(6 * 2**30),)))
    assert (found.memory_gib, found.memory_source) == (6.0, "cgroup limit")
    assert parse(output(mem_kib=4 * GIB_KIB, limits=(str(6 * 2**30),))).memory_gib == 4.0  # a limit above RAM


def test_unreadable_output_is_an_error_not_zero_hardware():
    with pytest.raises(ValueError):
        parse(["lscpu: command not found"])


def test_the_command_reads_this_machine():
    lines = subprocess.run(["sh", "-c", COMMAND], capture_output=True, text=True, check=True).stdout.splitlines()
    found = parse(lines)
    assert found.memory_gib > 0 and found.cpu_cores >= 1 and found.debian in (12, 13)


@pytest.mark.parametrize("found_gib", [15.2, 16.0, 17.5])
def test_ram_within_the_tolerance_agrees(found_gib):
    """Firmware, the kernel and an iGPU's reserve take a few percent of what is installed."""
    assert mismatches(spec(), Hardware(found_gib, 4, "MemTotal", 13), memory_tolerance_percent=10) == []


@pytest.mark.parametrize("declared_gib, found_gib", [(16, 8), (8, 16), (16, 14.3), (128, 112)])
def test_ram_beyond_the_tolerance_either_way_is_refused(declared_gib, found_gib):
    [problem] = mismatches(spec(memory_gib=declared_gib), Hardware(found_gib, 4, "MemTotal", 13), 10)
    assert str(problem).startswith(f"hw_memory_gib: declared {declared_gib:g} GiB, found {found_gib:g} GiB")


@pytest.mark.parametrize("found_cores", [2, 8])
def test_cores_must_be_equal(found_cores):
    [problem] = mismatches(spec(cpu_cores=4), Hardware(16.0, found_cores, "MemTotal", 13), 10)
    assert str(problem).startswith(f"hw_cpu_cores: declared 4 cores, found {found_cores} cores")


def test_the_error_names_the_host_every_key_and_both_values():
    problems = mismatches(spec(memory_gib=12, cpu_cores=2), Hardware(6.0, 1, "cgroup limit", 12), 10)
    message = str(HardwareMismatch([("claw-back", problem) for problem in problems]))
    assert "nothing was changed" in message
    assert "host 'claw-back', key hw_memory_gib: declared 12 GiB, found 6 GiB (the host's cgroup limit" in message
    assert "host 'claw-back', key hw_cpu_cores: declared 2 cores, found 1 cores" in message
    assert "host 'claw-back', key hw_debian: declared 13, found 12 (VERSION_ID in /etc/os-release" in message


@pytest.mark.parametrize(
    ("line", "release"),
    [('VERSION_ID="13"', 13), ('VERSION_ID="12"', 12), ("VERSION_ID=13", 13), ('VERSION_ID="24.04"', 0), ("", 0)],
)
def test_the_release_is_debians_version_id_or_none(line, release):
    """testing and unstable have no VERSION_ID; another distribution's is no Debian release."""
    assert parse(output(version_id=line)).debian == release


@pytest.mark.parametrize("found", [12, 0])
def test_another_release_than_declared_is_refused(found):
    [problem] = mismatches(spec(debian=13), Hardware(16.0, 4, "MemTotal", found), 10)
    assert str(problem).startswith(f"hw_debian: declared 13, found {found} (")

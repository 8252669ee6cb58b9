"""What the base role promises on a host, each check one behaviour, expected values from the inventory."""

from __future__ import annotations

from roles.base.config import BaseConfig
from roles.base.deploy import PACKAGES, SYSCTL_FILE, THP_TMPFILES
from roles.common.names import HostSpec

BLOCK_BEGIN = "# BEGIN clawlan managed hosts\n"
BLOCK_END = "# END clawlan managed hosts\n"


def hosts_block(host) -> list[str]:
    content = host.file("/etc/hosts").content_string
    assert content.count(BLOCK_BEGIN) == 1 and content.count(BLOCK_END) == 1, content
    return content.split(BLOCK_BEGIN, 1)[1].split(BLOCK_END, 1)[0].splitlines()


def check_hosts_block_lists_the_inventory(host, spec: HostSpec, config: BaseConfig):
    assert hosts_block(host) == [f"{address}\t{' '.join(names)}" for address, names in config.hosts_entries]


def check_every_pinned_name_resolves(host, spec: HostSpec, config: BaseConfig):
    for address, names in config.hosts_entries:
        for name in names:
            assert host.check_output(f"getent hosts {name}").split()[0] == address, name


def check_nsswitch_reads_files_first(host, spec: HostSpec, config: BaseConfig):
    line = next(x for x in host.file("/etc/nsswitch.conf").content_string.splitlines() if x.startswith("hosts:"))
    assert line.split()[1] == "files"


def check_sysctls_are_live(host, spec: HostSpec, config: BaseConfig):
    assert {s.key: host.sysctl(s.key) for s in config.sysctls} == {s.key: s.value for s in config.sysctls}


def check_sysctls_are_persisted(host, spec: HostSpec, config: BaseConfig):
    persisted = host.file(SYSCTL_FILE)
    assert persisted.mode == 0o644
    for sysctl in config.sysctls:
        assert f"\n{sysctl.key} = {sysctl.value}\n" in persisted.content_string


def check_transparent_hugepages_modes(host, spec: HostSpec, config: BaseConfig):
    for knob, mode in (("enabled", config.thp_enabled), ("defrag", config.thp_defrag)):
        assert f"[{mode}]" in host.file(f"/sys/kernel/mm/transparent_hugepage/{knob}").content_string


def check_transparent_hugepages_persisted(host, spec: HostSpec, config: BaseConfig):
    content = host.file(THP_TMPFILES).content_string
    assert f"transparent_hugepage/enabled - - - - {config.thp_enabled}\n" in content
    assert f"transparent_hugepage/defrag - - - - {config.thp_defrag}\n" in content


def check_hugetlb_pool(host, spec: HostSpec, config: BaseConfig):
    assert int(host.file("/proc/sys/vm/nr_hugepages").content_string) == config.hugetlb_pages


def active_swaps(host) -> dict[str, int]:
    lines = host.file("/proc/swaps").content_string.splitlines()[1:]
    return {line.split()[0]: int(line.split()[2]) for line in lines}


def check_swapfile(host, spec: HostSpec, config: BaseConfig):
    swapfile = host.file(config.swap_path)
    if config.swap_size_mib == 0:
        assert not swapfile.exists
        return
    assert swapfile.mode == 0o600 and swapfile.user == "root"
    assert swapfile.size == config.swap_size_mib * 1024 * 1024
    # /proc/swaps counts KiB without the header page.
    assert active_swaps(host)[config.swap_path] == config.swap_size_mib * 1024 - 4


def check_swapfile_in_fstab(host, spec: HostSpec, config: BaseConfig):
    fstab = host.file("/etc/fstab").content_string.splitlines()
    expected = f"{config.swap_path} none swap sw 0 0"
    assert (expected in fstab) is (config.swap_size_mib > 0)


def check_container_swapon_unit_enabled(host, spec: HostSpec, config: BaseConfig):
    assert host.service("clawlan-swapon").is_enabled


def check_packages_installed(host, spec: HostSpec, config: BaseConfig):
    assert [p for p in PACKAGES if not host.package(p).is_installed] == []


def check_timesyncd_enabled(host, spec: HostSpec, config: BaseConfig):
    assert host.service("systemd-timesyncd").is_enabled


CHECKS = [value for name, value in dict(globals()).items() if name.startswith("check_")]

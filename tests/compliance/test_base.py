"""BASE: what every appliance box needs before its service goes on it (role base)."""

from __future__ import annotations

from roles.base.deploy import PACKAGES, SYSCTL_FILE
from tests.compliance.conftest import control

BLOCK_BEGIN = "# BEGIN clawlan managed hosts\n"
BLOCK_END = "# END clawlan managed hosts\n"


@control("BASE-01", "Kernel settings are live with the inventory's values", impact=0.7)
def test_BASE_01_kernel_settings_are_live(host, site, host_name):
    """Swappiness, the HugeTLB pool, keepalives and the LAN buffers decide how the model and its streams behave;
    a value lost at reboot or changed by hand silently changes latency."""
    wanted = {s.key: s.value for s in site.base_config(host_name).sysctls}
    output = host.check_output("sysctl " + " ".join(wanted))
    live = dict(line.split(" = ", 1) for line in output.splitlines())
    wrong = {key: live.get(key) for key, value in wanted.items() if live.get(key) != str(value)}
    assert not wrong, f"differs from the inventory: {wrong}"


@control("BASE-02", "Kernel settings persist across reboots", impact=0.5)
def test_BASE_02_kernel_settings_are_persisted(host, site, host_name):
    """The live values must come back after a reboot: they are read from this file at boot."""
    persisted = host.file(SYSCTL_FILE)
    assert persisted.exists and persisted.mode == 0o644, f"{SYSCTL_FILE} missing or not 0644"
    missing = [
        s.key for s in site.base_config(host_name).sysctls if f"\n{s.key} = {s.value}\n" not in persisted.content_string
    ]
    assert not missing, f"not persisted: {missing}"


@control("BASE-03", "Transparent huge pages are in the inventory's modes", impact=0.4)
def test_BASE_03_transparent_huge_pages(host, site, host_name):
    """llama.cpp never madvises: only THP 'always' backs its weights with huge pages (fewer TLB misses)."""
    config = site.base_config(host_name)
    for knob, mode in (("enabled", config.thp_enabled), ("defrag", config.thp_defrag)):
        current = host.file(f"/sys/kernel/mm/transparent_hugepage/{knob}").content_string
        assert f"[{mode}]" in current, f"{knob}: {current.strip()} (want {mode})"


@control("BASE-04", "The HugeTLB pool has the configured size", impact=0.4)
def test_BASE_04_hugetlb_pool(host, site, host_name):
    """A pool nobody uses takes RAM from the model; a missing one starves what needs it."""
    pages = int(host.file("/proc/sys/vm/nr_hugepages").content_string)
    assert pages == site.base_config(host_name).hugetlb_pages


@control("BASE-05", "Swap is active at the configured size", impact=0.7)
def test_BASE_05_swap_is_active(host, site, host_name):
    """Swap is the buffer that lets a memory spike slow the box down instead of waking the OOM killer."""
    config = site.base_config(host_name)
    active = {
        line.split()[0]: int(line.split()[2]) for line in host.file("/proc/swaps").content_string.splitlines()[1:]
    }
    if config.swap_size_mib == 0:
        assert config.swap_path not in active, f"{config.swap_path} is active but the inventory says no swap"
        return
    # /proc/swaps counts KiB without the header page.
    assert active.get(config.swap_path) == config.swap_size_mib * 1024 - 4, f"active swap areas: {active or 'none'}"


@control("BASE-06", "/etc/hosts pins every inventory host and service alias", impact=0.8)
def test_BASE_06_hosts_block(host, site, host_name):
    """The boxes find each other without DNS: a missing line sends the frontend's TLS to the wrong place or
    nowhere."""
    content = host.file("/etc/hosts").content_string
    assert content.count(BLOCK_BEGIN) == 1 and content.count(BLOCK_END) == 1, "the managed block is missing"
    block = content.split(BLOCK_BEGIN, 1)[1].split(BLOCK_END, 1)[0].splitlines()
    wanted = [f"{address}\t{' '.join(names)}" for address, names in site.base_config(host_name).hosts_entries]
    assert block == wanted, f"missing {sorted(set(wanted) - set(block))}, extra {sorted(set(block) - set(wanted))}"


@control("BASE-07", "Host names resolve from /etc/hosts before DNS", impact=0.5)
def test_BASE_07_files_before_dns(host):
    """With DNS first, a LAN resolver could answer for appliance names and take precedence over the pins."""
    line = next(x for x in host.file("/etc/nsswitch.conf").content_string.splitlines() if x.startswith("hosts:"))
    assert line.split()[1] == "files", line


@control("BASE-08", "The base packages are installed", impact=0.3)
def test_BASE_08_packages(host):
    """ca-certificates, timesyncd, nftables, util-linux and curl are what later roles and the operator rely on."""
    output = host.check_output("dpkg-query -W -f '${Package} ${Status}\\n' " + " ".join(PACKAGES) + " 2>&1 || true")
    installed = {line.split()[0] for line in output.splitlines() if line.endswith("install ok installed")}
    assert set(PACKAGES) <= installed, f"not installed: {sorted(set(PACKAGES) - installed)}"


@control("BASE-09", "Time synchronisation is enabled", impact=0.5)
def test_BASE_09_time_sync(host):
    """Certificates are checked against the clock: a drifting clock breaks mutual TLS."""
    assert host.service("systemd-timesyncd").is_enabled

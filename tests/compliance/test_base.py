"""BASE: what every appliance box needs before its service goes on it (role base)."""

from __future__ import annotations

import shlex

from roles.base import hardware
from roles.base.deploy import PACKAGES, SYSCTL_FILE, THP_TMPFILES
from roles.base.facts import PENDING_SECURITY_UPDATES, PlainHttpAptSources
from roles.common.units import APPLIED_DIR, applied_path, watch_hash
from tests.compliance.conftest import control
from tests.support.remote import hosts_block

SWAPON_UNIT = "clawlan-swapon.service"  # the role's unit that turns fstab swap on inside a container


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
    block = hosts_block(host)
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


@control("BASE-10", "Every pinned name resolves to its inventory addresses", impact=0.8)
def test_BASE_10_pinned_names_resolve(host, site, host_name):
    """The managed block (BASE-06) is only what the resolver should read: a line above it or another hosts source
    would still send a name elsewhere. This asks the resolver itself, as every service on the box does; a pooled
    name (the backends' alias) resolves to every backend."""
    pinned: dict[str, set[str]] = {}
    for address, names in site.base_config(host_name).hosts_entries:
        for name in names:
            pinned.setdefault(name, set()).add(address)
    # One command: each name and every IPv4 address the resolver gives for it (nothing when it does not resolve).
    quoted = " ".join(shlex.quote(name) for name in pinned)
    addresses = """$(getent ahostsv4 "$n" | awk '{print $1}' | sort -u | tr '\\n' ' ')"""
    output = host.check_output(f'for n in {quoted}; do echo "$n {addresses}"; done')
    resolved = {line.split()[0]: set(line.split()[1:]) for line in output.splitlines() if line.strip()}
    wrong = {name: sorted(resolved.get(name, ())) for name, wanted in pinned.items() if resolved.get(name) != wanted}
    assert not wrong, f"resolve elsewhere or not at all: {wrong}"


@control("BASE-11", "Transparent huge pages modes persist across reboots", impact=0.3)
def test_BASE_11_transparent_huge_pages_persisted(host, site, host_name):
    """The sysfs modes (BASE-03) are lost at reboot: systemd-tmpfiles writes them back from this file at boot."""
    config = site.base_config(host_name)
    result = host.run(f"stat -c %a {THP_TMPFILES} && cat {THP_TMPFILES}")
    assert result.rc == 0, f"{THP_TMPFILES} is missing"
    file_mode, _, content = result.stdout.partition("\n")
    assert file_mode == "644", f"{THP_TMPFILES} is {file_mode}, not 644"
    missing = [
        f"{knob} {mode}"
        for knob, mode in (("enabled", config.thp_enabled), ("defrag", config.thp_defrag))
        if f"transparent_hugepage/{knob} - - - - {mode}\n" not in content
    ]
    assert not missing, f"not persisted: {missing}"


@control("BASE-12", "The swapfile is 0600 root at the configured size, absent without swap", impact=0.6)
def test_BASE_12_swapfile(host, site, host_name):
    """Swap holds pages of every process's memory (keys, prompts, answers): only root may read it. Its size is the
    one the sizing rules chose; a swapfile left behind when the inventory says no swap is disk nobody counts."""
    config = site.base_config(host_name)
    result = host.run(f"stat -c '%U %a %s' {shlex.quote(config.swap_path)}")
    if config.swap_size_mib == 0:
        assert result.rc != 0, f"{config.swap_path} exists but the inventory says no swap"
        return
    assert result.rc == 0, f"{config.swap_path} is missing"
    wanted = ["root", "600", str(config.swap_size_mib * 1024 * 1024)]
    assert result.stdout.split() == wanted, f"{config.swap_path}: {result.stdout.strip()} (want {' '.join(wanted)})"


@control("BASE-13", "fstab lists the swapfile exactly when there is swap", impact=0.5)
def test_BASE_13_swapfile_in_fstab(host, site, host_name):
    """Swap is turned on at boot from fstab (by systemd, or by clawlan-swapon.service in a container): without the
    line swap is gone after a reboot; a line for a swapfile the inventory removed fails at every boot."""
    config = site.base_config(host_name)
    lines = host.file("/etc/fstab").content_string.splitlines()
    expected = f"{config.swap_path} none swap sw 0 0"
    others = [line for line in lines if line.split()[:1] == [config.swap_path] and line != expected]
    if config.swap_size_mib == 0:
        assert expected not in lines and not others, f"/etc/fstab lists {config.swap_path} but there is no swap"
        return
    assert expected in lines, f"/etc/fstab lacks {expected!r}"
    assert not others, f"/etc/fstab has other entries for {config.swap_path}: {others}"


@control("BASE-14", f"{SWAPON_UNIT} is enabled (swap at boot inside a container)", impact=0.4)
def test_BASE_14_container_swapon_enabled(host):
    """systemd ignores fstab swap entries inside a container; this unit turns them on there at boot (elsewhere its
    condition skips it), so a containerised box keeps its swap across restarts like a real one."""
    state = host.run(f"systemctl is-enabled {SWAPON_UNIT}").stdout.strip()
    assert state == "enabled", f"{SWAPON_UNIT} is {state or 'not found'}"


@control("BASE-15", "No Debian security update is waiting", impact=0.8)
def test_BASE_15_no_security_update_pending(host):
    """A published security fix not installed is a known hole: unattended-upgrades installs them daily (or the
    operator does, with base_security_updates off). Read against the package lists as apt last fetched them."""
    pending = host.check_output(PENDING_SECURITY_UPDATES).split()
    assert not pending, f"security updates waiting for: {', '.join(sorted(pending))}"


@control("BASE-16", "apt fetches from Debian's mirrors over https", impact=0.3)
def test_BASE_16_apt_over_https(host):
    """apt checks signatures either way; https also keeps what the box installs, and when, off the wire."""
    plain = PlainHttpAptSources().process(host.check_output(PlainHttpAptSources().command()).splitlines())
    assert not plain, f"plain http to Debian's mirrors in: {', '.join(plain)}"


@control("BASE-17", "unattended-upgrades runs daily for Debian security updates only, as the inventory says",
         impact=0.6)  # fmt: skip
def test_BASE_17_unattended_security_upgrades(host, site, host_name):
    """Security fixes arrive without anyone at the keyboard, and nothing else does: a new release of any other
    package is a change the operator makes with a deploy. No automatic reboot: nobody chose the hour."""
    enabled = site.base_config(host_name).security_updates
    config = host.check_output("apt-config dump")
    assert f'APT::Periodic::Unattended-Upgrade "{int(enabled)}";' in config.splitlines()
    origins = [line for line in config.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert origins and all("-security" in line for line in origins), f"origins besides security: {origins}"
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config.splitlines()
    timer = host.run("systemctl is-enabled apt-daily-upgrade.timer").stdout.strip()
    assert timer == "enabled", f"apt-daily-upgrade.timer is {timer or 'not found'}"


@control("BASE-18", "The host has the RAM and cores the inventory declares", impact=0.7)
def test_BASE_18_declared_hardware(host, site, host_name):
    """Swap, the HugeTLB pool, the model server's threads and slots and the memory budget are sized from the
    inventory's hw_memory_gib and hw_cpu_cores; a box swapped for a smaller one would be sized for the old one.
    Every deploy stops on the same disagreement before it changes anything."""
    found = hardware.parse(host.check_output(hardware.COMMAND).splitlines())
    tolerance = site.settings[host_name].base.hw_memory_tolerance_percent
    problems = hardware.mismatches(site.topology.host(host_name), found, tolerance)
    assert not problems, "; ".join(map(str, problems))


@control("BASE-19", "dpkg has no install left half-done", impact=0.5)
def test_BASE_19_dpkg_is_whole(host):
    """A package unpacked and never configured (a deploy or an upgrade killed half-way) may not work, and apt
    installs nothing more until dpkg is repaired: the next security update would not come. A deploy repairs it."""
    assert host.check_output("dpkg --audit") == "", "dpkg --audit reports a half-done install"
    assert host.check_output("ls -A /var/lib/dpkg/updates") == "", "dpkg's journal holds an unfinished update"


@control("BASE-20", "Every service of the appliance runs on the files it has", impact=0.6)
def test_BASE_20_services_run_on_the_files_they_have(host):
    """Each unit records a hash of the files it watches when it starts, restarts or reloads. A file changed since (a
    deploy killed between its write and the restart, or an edit by hand) is not what the service runs, and a crash
    or a reboot would change its behaviour without anyone deploying. A deploy restarts it."""
    units = host.check_output(f"ls -A {APPLIED_DIR}").split()
    assert units, f"no unit recorded the files it runs on in {APPLIED_DIR}: deploy the site"
    behind = []
    for unit in units:
        recorded, *paths = host.check_output(f"cat {shlex.quote(applied_path(unit))}").splitlines()
        if not paths or host.check_output(f"echo {watch_hash(tuple(paths))}") != recorded:
            behind.append(unit)
    assert not behind, f"running on older files than they have (or recorded by an older clawlan): {behind}"


@control("BASE-21", "The system journal keeps logs for a bounded time", impact=0.3)
def test_BASE_21_journal_retention(host, site, host_name):
    """A service's log can quote what a person sent (a refused request, an error with its input): the journal keeps
    base_log_retention_days, as journald itself reads its configuration."""
    days = site.base_config(host_name).log_retention_days
    merged = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    settings = [
        line.strip() for line in merged.splitlines() if line.strip().startswith(("MaxRetentionSec=", "SystemMaxUse="))
    ]
    assert settings[-2:] == [f"MaxRetentionSec={days}day", "SystemMaxUse=1G"], settings

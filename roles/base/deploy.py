"""Role base: what every appliance box needs before its service goes on it."""

from __future__ import annotations

import re

from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from roles.base.config import BaseConfig
from roles.base.operations import (
    apt_components_enabled,
    apt_sources_over_https,
    nsswitch_files_first,
    security_updates_applied,
    swapfile,
    sysctl_values,
    transparent_hugepages,
)
from roles.common.files import host_files
from roles.common.packages import dpkg_repaired, install_packages
from roles.common.templates import TEMPLATES, render, rendered
from roles.common.units import unit_enabled

PACKAGES = (
    "ca-certificates",  # TLS trust for apt and anything that fetches over https
    "systemd-timesyncd",  # a true clock: certificates are checked against it
    "nftables",  # the firewall later roles write rules for
    "util-linux",  # swapon, mkswap, fallocate, blkid
    "curl",  # health checks by hand and by later roles
    "unattended-upgrades",  # Debian security updates, daily (base_security_updates)
)
SYSCTL_FILE = "/etc/sysctl.d/60-clawlan.conf"
THP_TMPFILES = "/etc/tmpfiles.d/clawlan-thp.conf"
TIMESYNCD_DROPIN = "/etc/systemd/timesyncd.conf.d/clawlan.conf"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/clawlan.conf"
DPKG_LOCK_CONF = "/etc/apt/apt.conf.d/80clawlan-dpkg-lock"
SECURITY_ORIGINS_CONF = "/etc/apt/apt.conf.d/52clawlan-unattended-upgrades"
# After Debian's 20auto-upgrades (which the package's own scripts may rewrite), so this one has the last word.
AUTO_UPGRADES_CONF = "/etc/apt/apt.conf.d/21clawlan-auto-upgrades"
# files.block matches the marker as a regular expression: keep it to plain words.
HOSTS_MARKER = "# {mark} clawlan managed hosts"


def basic_regex_literal(text: str) -> str:
    """``text`` as a POSIX basic regular expression matching it literally (files.line greps and seds with BREs,
    where re.escape's \\+ is a repetition and its \\- a stray backslash)."""
    return re.sub(r"([.\[\]*^$\\])", r"\\\1", text)


@deploy("Base system")
def base(config: BaseConfig, installed_packages: frozenset[str] = frozenset()):
    dpkg_repaired(name="Finish any package install a killed deploy or a power cut left half-done")
    swapon_path = "/etc/systemd/system/clawlan-swapon.service"
    known = host_files(SYSCTL_FILE, THP_TMPFILES, swapon_path, TIMESYNCD_DROPIN, DPKG_LOCK_CONF,
                       SECURITY_ORIGINS_CONF, AUTO_UPGRADES_CONF, JOURNALD_DROPIN)  # fmt: skip
    known.put(
        name="Make apt wait for dpkg's lock (a deploy and the daily upgrades never break each other)",
        src=str(TEMPLATES / "base" / "80clawlan-dpkg-lock"),
        dest=DPKG_LOCK_CONF,
        mode="644",
        create_remote_dir=False,
    )
    install_packages("Install the packages every appliance box needs", list(PACKAGES), installed_packages)
    _security_updates(config, known)
    if config.apt_components:
        apt_components_enabled(
            name=f"Fetch Debian's {', '.join(config.apt_components)} (the GPU's firmware) besides main",
            components=config.apt_components,
        )
    _journal(config, known)

    files.block(
        name="Pin inventory hosts and service aliases in /etc/hosts",
        path="/etc/hosts",
        content=render("base/hosts-block.j2", entries=config.hosts_entries).rstrip("\n"),
        marker=HOSTS_MARKER,
    )
    nsswitch_files_first(name="Resolve host names from /etc/hosts before DNS")

    known.put(
        name=f"Persist kernel settings in {SYSCTL_FILE}",
        src=rendered("base/sysctl.conf.j2", sysctls=config.sysctls),
        dest=SYSCTL_FILE,
        mode="644",
        create_remote_dir=False,
    )
    sysctl_values(name="Apply the kernel settings now", values={s.key: s.value for s in config.sysctls})

    known.put(
        name="Persist transparent huge pages modes across reboots",
        src=rendered("base/thp.tmpfiles.conf.j2", enabled=config.thp_enabled, defrag=config.thp_defrag),
        dest=THP_TMPFILES,
        mode="644",
        create_remote_dir=False,
    )
    transparent_hugepages(
        name="Set transparent huge pages modes",
        enabled=config.thp_enabled,
        defrag=config.thp_defrag,
    )

    swapfile(
        name="Keep the swapfile at its configured size",
        path=config.swap_path,
        size_mib=config.swap_size_mib,
    )
    files.line(
        name="Keep the swapfile's fstab entry",
        path="/etc/fstab",
        line=rf"^{basic_regex_literal(config.swap_path)}\s",
        replace=f"{config.swap_path} none swap sw 0 0",
        present=config.swap_size_mib > 0,
    )

    swapon_unit = known.put(
        name="Install clawlan-swapon.service for boxes that are containers",
        src=str(TEMPLATES / "base" / "clawlan-swapon.service"),
        dest=swapon_path,
        mode="644",
        create_remote_dir=False,
    )
    unit_enabled(
        name="Enable clawlan-swapon.service",
        unit="clawlan-swapon.service",
        daemon_reload=swapon_unit.will_change,
    )

    if config.ntp_servers:
        timesyncd = known.put(
            name="Configure systemd-timesyncd's time servers",
            src=rendered("base/timesyncd.conf.j2", servers=config.ntp_servers),
            dest=TIMESYNCD_DROPIN,
            mode="644",
            create_remote_dir=True,
        )
    else:
        timesyncd = known.absent(name="Configure systemd-timesyncd's time servers", path=TIMESYNCD_DROPIN)
    # Debian starts timesyncd on install and it declines to run in a container (whose host owns the
    # clock): enable it, restart it when its servers change, never demand "running".
    unit_enabled(name="Enable systemd-timesyncd", unit="systemd-timesyncd.service")
    systemd.service(
        name="Restart systemd-timesyncd for its new servers",
        service="systemd-timesyncd.service",
        running=None,
        restarted=True,
        _if=timesyncd.did_change,
    )


def _journal(config: BaseConfig, known):
    """The journal keeps a bounded time: a gateway or proxy log line may quote what a person sent."""
    journald = known.put(
        name=f"Keep the system journal {config.log_retention_days} days at most",
        src=rendered("base/journald.conf.j2", retention_days=config.log_retention_days),
        dest=JOURNALD_DROPIN,
        mode="644",
        create_remote_dir=True,
    )
    systemd.service(
        name="Restart systemd-journald for its retention",
        service="systemd-journald.service",
        running=None,
        restarted=True,
        _if=journald.did_change,
    )


def _security_updates(config: BaseConfig, known):
    """apt over https; unattended-upgrades for Debian's security suite only, on unless the inventory says no."""
    apt_sources_over_https(name="Fetch packages from Debian's mirrors over https")
    known.put(
        name="Limit unattended-upgrades to Debian's security updates, never rebooting",
        src=str(TEMPLATES / "base" / "52clawlan-unattended-upgrades"),
        dest=SECURITY_ORIGINS_CONF,
        mode="644",
        create_remote_dir=False,
    )
    known.put(
        name=f"{'Run' if config.security_updates else 'Do not run'} unattended-upgrades daily",
        src=rendered("base/21clawlan-auto-upgrades.j2", enabled=config.security_updates),
        dest=AUTO_UPGRADES_CONF,
        mode="644",
        create_remote_dir=False,
    )
    if config.security_updates:
        security_updates_applied(name="Install the Debian security updates that are waiting")

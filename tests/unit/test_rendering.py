"""What the base role writes on a host, rendered from the shipped inventories' settings."""

import re

import pytest

from roles.base.config import build_base_config
from roles.base.settings import BaseSettings
from roles.common.names import HostSpec, site_names
from roles.common.templates import render

HOSTS = [
    HostSpec("front", "10.0.0.10", "frontend", 16, 4),
    HostSpec("back", "10.0.0.20", "backend", 128, 16),
]


def config(**settings):
    base = BaseSettings(**settings)
    names = site_names(HOSTS, base.dns_domain, base.host_aliases, base.extra_hosts)
    return build_base_config(base, HOSTS[1], names.hosts_entries)


def test_sysctl_file_gives_every_value_a_reason():
    text = render("base/sysctl.conf.j2", sysctls=config().sysctls)
    lines = [line for line in text.splitlines() if line.strip()]
    settings = [i for i, line in enumerate(lines) if not line.startswith("#")]
    assert len(settings) == len(config().sysctls)
    for i in settings:
        assert re.fullmatch(r"[a-z0-9_.]+ = -?\d+", lines[i])
        assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 10, f"no reason above {lines[i]}"


def test_sysctl_values_follow_settings():
    text = render("base/sysctl.conf.j2", sysctls=config(swappiness=25, tcp_keepalive_time_s=90).sysctls)
    assert "vm.swappiness = 25\n" in text
    assert "net.ipv4.tcp_keepalive_time = 90\n" in text
    assert "vm.nr_hugepages = 0\n" in text


def test_hugetlb_pool_becomes_pages():
    assert config(hugetlb_pool_mib=4096).hugetlb_pages == 2048


def test_hosts_block_pins_hosts_aliases_and_extra_hosts():
    entries = config(extra_hosts={"nas": "10.0.0.5", "printer.office.lan": "10.0.0.6"}).hosts_entries
    text = render("base/hosts-block.j2", entries=entries)
    assert text.splitlines() == [
        "10.0.0.10\tfront.home.arpa front chat.home.arpa chat",
        "10.0.0.20\tback.home.arpa back llm.home.arpa llm",
        "10.0.0.5\tnas.home.arpa nas",
        "10.0.0.6\tprinter.office.lan",
    ]


def test_thp_tmpfiles_writes_both_knobs():
    text = render("base/thp.tmpfiles.conf.j2", enabled="madvise", defrag="defer")
    assert "w /sys/kernel/mm/transparent_hugepage/enabled - - - - madvise\n" in text
    assert "w /sys/kernel/mm/transparent_hugepage/defrag - - - - defer\n" in text


def test_timesyncd_dropin_lists_servers():
    text = render("base/timesyncd.conf.j2", servers=("10.0.0.1", "ntp.home.arpa"))
    assert "[Time]\nNTP=10.0.0.1 ntp.home.arpa\n" in text


@pytest.mark.parametrize("enabled, value", [(True, "1"), (False, "0")])
def test_unattended_upgrades_follow_the_inventory_and_package_lists_stay_fresh(enabled, value):
    text = render("base/21clawlan-auto-upgrades.j2", enabled=enabled)
    assert f'APT::Periodic::Unattended-Upgrade "{value}";' in text.splitlines()
    assert 'APT::Periodic::Update-Package-Lists "1";' in text.splitlines()  # BASE-15 reads fresh lists either way

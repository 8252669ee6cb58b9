"""Base role, end to end: bare lab hosts -> pyinfra CLI -> converged -> checked -> rebooted -> changed.

The tests run in file order and share one lab; each leaves the site converged for the next.
"""

from __future__ import annotations

import json
import re

import pytest

from lab.core import INVENTORY
from roles.common.names import ROLE_GROUPS
from roles.inventory.load import load_inventory
from tests.compliance import test_base as base_controls
from tests.e2e.conftest import control_of, deploy, run_control
from tests.support.hosts import remote_host
from tests.support.remote import hosts_block

SWAP_OP = "Base system | Keep the swapfile at its configured size"
# What the base role promises on a host: the compliance suite's BASE controls, each on every host it applies to.
CONTROLS = [value for name, value in vars(base_controls).items() if name.startswith("test_BASE_")]
CASES = [
    (host.name, function)
    for host in load_inventory(str(INVENTORY))
    for function in CONTROLS
    if set(host.groups) & set(ROLE_GROUPS) & set(control_of(function).roles)
]
IDS = [f"{name}-{control_of(function).id}" for name, function in CASES]


def active_swaps(host) -> dict[str, int]:
    lines = host.file("/proc/swaps").content_string.splitlines()[1:]
    return {line.split()[0]: int(line.split()[2]) for line in lines}


def test_first_deploy_converges_bare_hosts(first_deploy, site):
    assert not first_deploy.errors
    # Bare hosts: every host had packages to install and /etc/hosts to pin.
    for spec in site.topology.hosts:
        assert "Base system | Install the packages every appliance box needs" in first_deploy.changed_ops(spec.name)
    # The long steps said how far they were as they went (roles/common/progress.py): the model's transfer, and the
    # build's (from the wheelhouse, or compiled on a machine that has none yet).
    log = first_deploy.log
    assert re.search(r"lab-back\S*\s+sending the model to \S+: [\d.]+ MiB sent in \d", log), log[-3000:]
    assert re.search(r"lab-back\S*\s+(sending the build from the control machine's wheelhouse: [\d.]+ MiB sent in"
                     r"|compiling llama-cpp-python .*: done in) ", log), log[-3000:]  # fmt: skip


def test_second_run_changes_nothing(first_deploy):
    result = deploy()
    assert result.changed == set(), sorted(result.changed)


@pytest.mark.parametrize("host_name, function", CASES, ids=IDS)
def test_deployed(first_deploy, hosts, site, host_name, function):
    run_control(function, hosts[host_name], site, host_name)


def test_reboot_keeps_every_setting(first_deploy, lab, inventory, site):
    lab.reboot()
    fresh = {host.name: remote_host(host) for host in inventory}
    failures = []
    for host_name, function in CASES:
        try:
            run_control(function, fresh[host_name], site, host_name)
        except AssertionError as error:
            failures.append(f"{host_name} {control_of(function).id}: {error}")
    assert failures == []
    assert deploy().changed == set()


def test_changing_one_value_changes_exactly_that(first_deploy, hosts):
    result = deploy("--data", "base_swappiness=20")
    assert result.changed_ops() == {
        "Base system | Persist kernel settings in /etc/sysctl.d/60-clawlan.conf",
        "Base system | Apply the kernel settings now",
    }
    assert result.changed_hosts() == set(hosts)
    assert {name: host.sysctl("vm.swappiness") for name, host in hosts.items()} == dict.fromkeys(hosts, 20)

    back = deploy()
    assert back.changed_ops() == {
        "Base system | Persist kernel settings in /etc/sysctl.d/60-clawlan.conf",
        "Base system | Apply the kernel settings now",
    }


def test_an_extra_host_replaces_the_block_and_keeps_other_lines(first_deploy, hosts, site):
    for host in hosts.values():
        host.check_output("echo '10.242.17.99 kept-by-hand' >> /etc/hosts")
    extra = json.dumps({"nas": "10.242.17.50"})

    result = deploy("--data", f"base_extra_hosts={extra}")
    assert result.changed_ops() == {"Base system | Pin inventory hosts and service aliases in /etc/hosts"}
    for host in hosts.values():
        assert hosts_block(host)[-1] == "10.242.17.50\tnas.home.arpa nas"
        assert "10.242.17.99 kept-by-hand" in host.file("/etc/hosts").content_string.splitlines()

    deploy()
    for name, host in hosts.items():
        base_controls.test_BASE_06_hosts_block(host, site, name)  # the inventory's block again, without the extra host
        host.check_output("sed -i '/kept-by-hand/d' /etc/hosts")


def test_drift_is_put_back_and_nothing_else(first_deploy, hosts, site):
    backend = hosts["lab-back"]
    backend.check_output("sysctl -qw net.ipv4.tcp_keepalive_time=7200")
    with pytest.raises(AssertionError, match="tcp_keepalive_time"):
        base_controls.test_BASE_01_kernel_settings_are_live(backend, site, "lab-back")
    result = deploy()
    assert result.changed == {("Base system | Apply the kernel settings now", "lab-back")}
    base_controls.test_BASE_01_kernel_settings_are_live(backend, site, "lab-back")


# Where the installer of each release writes apt's sources (lab/image.py does the same).
APT_SOURCES = {12: "/etc/apt/sources.list", 13: "/etc/apt/sources.list.d/debian.sources"}


def test_plain_http_apt_sources_go_back_to_https(first_deploy, hosts, site):
    front = hosts["lab-front"]
    sources = APT_SOURCES[site.topology.host("lab-front").debian]
    front.check_output(f"sed -i 's#https://deb.debian.org#http://deb.debian.org#' {sources}")
    with pytest.raises(AssertionError, match=f"plain http to Debian's mirrors in: {sources}"):
        base_controls.test_BASE_16_apt_over_https(front)
    result = deploy("--limit", "lab-front")
    assert result.changed == {("Base system | Fetch packages from Debian's mirrors over https", "lab-front")}
    base_controls.test_BASE_16_apt_over_https(front)


# An older version from the main suite, when the security suite has a newer one: as on the morning after an advisory.
# Candidates for both releases (Debian 13's point releases took in its early security updates of the first three).
OLDER_THAN_SECURITY = r"""for p in tzdata libexpat1 liblzma5 libzstd1 login.defs libkrb5support0; do
  v=$(apt-cache madison "$p" | awk '$6 !~ /security/ {print $3; exit}')
  if [ -n "$v" ] && apt-cache madison "$p" | grep -q security && [ "$v" != "$(dpkg-query -W -f '${Version}' "$p")" ]
  then echo "$p" "$v"; exit; fi
done"""


def test_a_waiting_security_update_is_installed_by_the_next_deploy(first_deploy, hosts):
    front = hosts["lab-front"]
    package, older = front.check_output(OLDER_THAN_SECURITY).split()
    front.check_output(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades {package}={older}")
    with pytest.raises(AssertionError, match=f"security updates waiting for: .*{package}"):
        base_controls.test_BASE_15_no_security_update_pending(front)
    result = deploy("--limit", "lab-front")
    assert result.changed == {("Base system | Install the Debian security updates that are waiting", "lab-front")}
    base_controls.test_BASE_15_no_security_update_pending(front)
    assert deploy("--limit", "lab-front").changed == set()


def test_swapfile_is_resized(first_deploy, hosts, site):
    backend = hosts["lab-back"]
    path = site.base_config("lab-back").swap_path
    result = deploy("--limit", "lab-back", "--data", "base_swap_size_mib=512")
    assert result.changed == {(SWAP_OP, "lab-back")}
    assert active_swaps(backend)[path] == 512 * 1024 - 4

    deploy()
    base_controls.test_BASE_05_swap_is_active(backend, site, "lab-back")


def test_existing_swap_is_respected_and_counted(first_deploy, hosts, site):
    backend = hosts["lab-back"]
    config = site.base_config("lab-back")
    other = "/var/lib/swap/other"
    backend.check_output(f"fallocate -l 256MiB {other} && chmod 600 {other} && mkswap {other} && swapon {other}")
    try:
        result = deploy()
        assert result.changed == {(SWAP_OP, "lab-back")}
        swaps = active_swaps(backend)
        assert other in swaps
        assert swaps[config.swap_path] == (config.swap_size_mib - 256) * 1024 - 4
    finally:
        backend.check_output(f"swapoff {other} && rm {other}")
    deploy()
    base_controls.test_BASE_05_swap_is_active(backend, site, "lab-back")

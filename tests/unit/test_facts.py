"""Parsing of the base role's facts from real command output."""

import subprocess

from roles.base.facts import (
    APT_SOURCES,
    NsswitchSources,
    PendingSecurityUpdates,
    PlainHttpAptSources,
    SwapAreas,
    SwapfileHeader,
    TransparentHugePages,
)


def test_thp_modes_are_the_bracketed_ones():
    output = ["enabled always [madvise] never", "defrag always defer [defer+madvise] madvise never"]
    assert TransparentHugePages().process(output) == {"enabled": "madvise", "defrag": "defer+madvise"}


def test_swap_areas_from_proc_swaps():
    output = [
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority",
        "/dev/sda2                               partition\t2097148\t\t0\t\t-2",
        "/var/lib/my\\040swap                     file\t\t1257468\t\t192\t\t-3",
    ]
    assert SwapAreas().process(output) == {"/dev/sda2": 2097148, "/var/lib/my swap": 1257468}


def test_no_swap_areas():
    assert SwapAreas().process(["Filename\tType\tSize\tUsed\tPriority"]) == {}


def test_swapfile_header():
    assert SwapfileHeader().process(["1287651328"]) == 1287651328
    assert SwapfileHeader().process([]) is None


def test_nsswitch_sources():
    assert NsswitchSources().process(["hosts:          files mdns4_minimal [NOTFOUND=return] dns"]) == [
        "files",
        "mdns4_minimal",
        "[NOTFOUND=return]",
        "dns",
    ]
    assert NsswitchSources().process([]) == []


def test_pending_security_updates_are_the_package_names_sorted():
    assert PendingSecurityUpdates().process(["tzdata", "libexpat1", ""]) == ["libexpat1", "tzdata"]
    assert PendingSecurityUpdates().process([]) == []


def test_pending_security_updates_read_apt_simulation_lines(tmp_path):
    """The fact's own command, on apt-get's real output: only the security suite's updates count."""
    simulation = (
        "Inst tzdata [2026b-0+deb12u1] (2026f-0+deb12u1 Debian-Security:12/oldstable-security [all])\n"
        "Inst libexpat1 [2.5.0-1+deb12u2] (2.5.0-1+deb12u5 Debian-Security:12/oldstable-security [amd64])\n"
        "Inst base-files [12.4+deb12u11] (12.4+deb12u12 Debian:12.12/oldstable [amd64])\n"
        "Conf tzdata (2026f-0+deb12u1 Debian-Security:12/oldstable-security [all])\n"
    )
    apt_get = tmp_path / "apt-get"
    apt_get.write_text(f"#!/bin/sh\ncat <<'EOF'\n{simulation}EOF\n")
    apt_get.chmod(0o755)
    output = subprocess.run(
        ["sh", "-c", PendingSecurityUpdates().command()], env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert PendingSecurityUpdates().process(output) == ["libexpat1", "tzdata"]


def test_plain_http_apt_sources_name_only_debian_mirrors_over_http(tmp_path):
    sources = tmp_path / "sources.list"
    sources.write_text("deb https://deb.debian.org/debian bookworm main\ndeb http://mirror.lan/debian bookworm main\n")
    command = PlainHttpAptSources().command().replace(APT_SOURCES, str(sources))

    def plain() -> list[str]:
        output = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout.splitlines()
        return PlainHttpAptSources().process(output)

    assert plain() == []  # a site's own mirror is its business
    sources.write_text("deb http://security.debian.org/debian-security bookworm-security main\n")
    assert plain() == [str(sources)]

"""Parsing of the base role's facts from real command output."""

from roles.base.facts import NsswitchSources, SwapAreas, SwapfileHeader, TransparentHugePages


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

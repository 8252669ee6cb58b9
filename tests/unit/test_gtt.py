"""The GPU's GTT on unified memory: its size (auto or given), the refusals before any host is touched, the memory
budget that counts it; on the host: the modprobe file and initramfs, the live GTT, the kernel and firmware that drive
the GPU, and Debian's non-free-firmware component."""

from __future__ import annotations

import hashlib
import os
import subprocess
import types

import pytest
from pyinfra.api import OperationError

from roles.base import operations as base_operations
from roles.base.facts import COMPONENTS_SOURCES, AptComponents
from roles.base.operations import apt_components_enabled, components_sources_text
from roles.model_server import operations
from roles.model_server.config import GTT_CONF, auto_gtt_gib, gtt_modprobe_line
from roles.model_server.deploy import runtime_packages
from roles.model_server.facts import GpuKernel, GttLimitFiles, GttTotals
from roles.model_server.gpu import (
    DRM,
    FIRMWARE_DIR,
    KNOWN_BAD_KERNELS,
    gpu_kernel_problems,
    gtt_mismatch,
    kernel_version,
    parse_gtt_totals,
)
from roles.model_server.operations import (
    GTT_INITRAMFS_STAMP,
    gpu_kernel_ready,
    gtt_conf_text,
    gtt_in_effect,
    gtt_limit,
)
from roles.model_server.settings import ModelServerSettings
from tests.support.shell import plan, uploads
from tests.support.sites import problems_of, site_with, with_change

RADV_BACKEND = {"model_server_compute": "vulkan"}  # the driver defaults to radv


def refused(**data) -> tuple[set, str]:
    return problems_of(with_change(lambda h: h["back"][1].update(data)))


def test_auto_is_filled_to_three_quarters_by_the_model_and_its_kv_cache():
    # The good site's backend: 45 GiB model, 4 slots x 32768 tokens x 24 KiB = 3 GiB of KV cache: 48 / 0.75.
    assert site_with(back=RADV_BACKEND).model_server_config("back").gtt_gib == 64


@pytest.mark.parametrize(
    "changes, memory_gib, expected",
    [
        ({"model_size_gib": 45.0}, 128, 64),
        ({"model_size_gib": 1.0, "parallel_slots": 1, "context_tokens": 4096}, 128, 4),  # 1.09 GiB + the 2 GiB floor
        ({"model_size_gib": 72.0}, 128, 100),  # 75 GiB / 0.75
        ({"model_size_gib": 100.0}, 128, 124),  # capped: 128 GiB RAM - 4 GiB reserve
    ],
)
def test_auto_gtt_has_a_floor_and_a_ceiling(changes, memory_gib, expected):
    assert auto_gtt_gib(ModelServerSettings(**changes), memory_gib, 4.0) == expected


@pytest.mark.parametrize(
    "back",
    [
        {},  # compute cpu: the model is in RAM
        {**RADV_BACKEND, "model_server_vulkan_driver": "lavapipe"},  # lavapipe's device memory is the process' RAM
    ],
)
def test_no_gtt_where_the_model_is_not_in_one(back):
    assert site_with(back=back).model_server_config("back").gtt_gib == 0


def test_a_given_gtt_is_used_as_given():
    assert site_with(back={**RADV_BACKEND, "model_server_gtt_gib": 104}).model_server_config("back").gtt_gib == 104


def test_a_gtt_larger_than_ram_less_the_reserve_is_refused_with_both_numbers():
    problems, message = refused(**RADV_BACKEND, model_server_gtt_gib=125)
    assert problems == {("back", "model_server_gtt_gib")}
    assert "125 GiB is more than this host's 128 GiB RAM" in message and "= 124 GiB" in message


def test_a_gtt_the_model_and_kv_cache_do_not_fit_is_refused_with_both_numbers():
    problems, message = refused(**RADV_BACKEND, model_server_gtt_gib=47)
    assert problems == {("back", "model_server_gtt_gib")}
    assert "need 48.0 GiB of GTT, more than this host's 47 GiB" in message
    assert "4 slot(s) x 32768 tokens x 24 KiB: 3.0 GiB" in message


def test_an_auto_gtt_capped_below_the_model_blames_the_model():
    problems, message = refused(**RADV_BACKEND, hw_memory_gib=48)
    assert problems == {("back", "model_server_model_size_gib")}
    assert "need 48.0 GiB of GTT, more than this host's 44 GiB (auto: at most 48 GiB RAM - 4 GiB reserve)" in message


def test_the_budget_on_a_gpu_host_is_the_gtt_not_the_model_against_ram():
    # 64 GiB RAM, a 48 GiB model and 3 GiB of KV cache: in RAM the model's 20 % overhead leaves the KV cache no room;
    # in GTT the model and its KV cache (51 GiB) fit the GTT, capped at 64 - 4 GiB.
    tight = {"hw_memory_gib": 64, "model_server_model_size_gib": 48}
    assert refused(**tight)[0] == {("back", "model_server_parallel_slots")}
    assert site_with(back={**tight, **RADV_BACKEND}).model_server_config("back").gtt_gib == 60


def test_a_hugetlb_pool_beside_a_gtt_gets_what_the_gtt_and_the_reserve_leave():
    gpu = {**RADV_BACKEND, "model_server_gtt_gib": 100}
    site_with(back={**gpu, "base_hugetlb_pool_mib": 24 * 1024})  # 128 - 100 - 4 = 24 GiB
    problems, message = refused(**gpu, base_hugetlb_pool_mib=25 * 1024)
    assert problems == {("back", "base_hugetlb_pool_mib")}
    assert "128 GiB RAM - GTT 100 GiB" in message and "leaves 24.0 GiB" in message


@pytest.mark.parametrize(
    "data, only, chosen",
    [
        ({}, "vulkan", "model_server_compute is cpu"),
        ({**RADV_BACKEND, "model_server_vulkan_driver": "lavapipe"}, "radv", "model_server_vulkan_driver is lavapipe"),
    ],
)
def test_a_gtt_is_refused_where_nothing_reads_it(data, only, chosen):
    problems, message = refused(**data, model_server_gtt_gib=64)
    assert problems == {("back", "model_server_gtt_gib")}
    assert f"is read by {only} only; this host's {chosen}" in message


@pytest.mark.parametrize("gib, pages", [(1, 262144), (53, 13893632), (104, 27262976)])
def test_the_modprobe_line_gives_ttm_the_pages_of_the_gtt(gib, pages):
    assert gtt_modprobe_line(gib) == f"options ttm pages_limit={pages} page_pool_size={pages}"


# --- On the host: the modprobe file, the initramfs, the live GTT and the kernel that drives the GPU --------------


@pytest.fixture
def executing(monkeypatch):
    """pyinfra executing (checks that read the host at execution run), with its warnings recorded."""
    warnings = []
    monkeypatch.setattr(operations, "state", types.SimpleNamespace(is_executing=True))
    monkeypatch.setattr(operations, "logger", types.SimpleNamespace(warning=warnings.append))
    return warnings


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_new_gtt_is_written_whole_then_the_initramfs_updated_then_recorded():
    text = gtt_conf_text(53)
    assert text.endswith("\noptions ttm pages_limit=13893632 page_pool_size=13893632\n")
    facts = {GttLimitFiles: ("", "")}
    (write, initramfs), _ = plan(gtt_limit, operations, facts, gtt_gib=53, none_because="")
    assert uploads(gtt_limit, operations, facts, gtt_gib=53, none_because="") == {f"{GTT_CONF}.clawlan-new": text}
    new = f"{GTT_CONF}.clawlan-new"
    assert write == f"chmod 644 {new} && sync {new} && mv -f {new} {GTT_CONF}"
    assert initramfs == f"update-initramfs -u && mkdir -p /var/lib/clawlan && echo {sha(text)} > {GTT_INITRAMFS_STAMP}"


def test_an_initramfs_a_stopped_run_left_unbuilt_is_built_on_the_next():
    text = gtt_conf_text(53)
    (command,), _ = plan(gtt_limit, operations, {GttLimitFiles: (sha(text), sha("old"))}, gtt_gib=53,
                         none_because="")  # fmt: skip
    assert command.startswith("update-initramfs -u && ")


def test_a_gtt_in_place_is_left_alone():
    text = gtt_conf_text(53)
    commands, host = plan(gtt_limit, operations, {GttLimitFiles: (sha(text), sha(text))}, gtt_gib=53,
                          none_because="")  # fmt: skip
    assert commands == [] and host.noops == [f"{GTT_CONF} and the initramfs limit the GTT to 53 GiB"]


def test_no_gtt_says_why_and_removes_one_an_earlier_deploy_set():
    commands, host = plan(gtt_limit, operations, {GttLimitFiles: ("", "")}, gtt_gib=0, none_because="lavapipe")
    assert commands == [] and host.noops == ["no GTT: lavapipe"]
    commands, _ = plan(gtt_limit, operations, {GttLimitFiles: (sha("x"), sha("x"))}, gtt_gib=0, none_because="")
    assert commands == [f"rm -f {GTT_CONF}", f"update-initramfs -u && rm -f {GTT_INITRAMFS_STAMP}"]


def sh_lines(command: str) -> list[str]:
    """What a fact's command prints, run here as pyinfra runs it on the host."""
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines()


def test_the_gtt_limit_facts_read_what_the_operation_wrote(tmp_path):
    conf, stamp = tmp_path / "gtt.conf", tmp_path / "stamp"
    fact = GttLimitFiles()
    assert fact.process(sh_lines(fact.command(str(conf), str(stamp)))) == ("", "")
    conf.write_text(gtt_conf_text(8))
    stamp.write_text(sha(gtt_conf_text(8)) + "\n")
    assert fact.process(sh_lines(fact.command(str(conf), str(stamp)))) == (sha(gtt_conf_text(8)),) * 2


def fake_drm(root, cards: dict[str, tuple[str, int | None]]):
    """/sys/class/drm under ``root``: {card: (driver, GTT bytes or None)}, plus a connector of the first card."""
    for card, (driver, total) in cards.items():
        device = root / "devices" / card
        (device / "driver_dir" / driver).mkdir(parents=True)
        (device / "driver").symlink_to(device / "driver_dir" / driver)
        if total is not None:
            (device / "mem_info_gtt_total").write_text(f"{total}\n")
        (root / "drm" / card).mkdir(parents=True)
        (root / "drm" / card / "device").symlink_to(device)
    first = next(iter(cards))
    (root / "drm" / f"{first}-DP-1").mkdir()
    (root / "drm" / f"{first}-DP-1" / "device").symlink_to(root / "drm" / first)


def test_the_live_gtt_is_read_per_amdgpu_card(tmp_path):
    fake_drm(tmp_path, {"card0": ("simpledrm", None), "card1": ("amdgpu", 53 * 2**30), "card2": ("i915", 2**30)})
    (tmp_path / "devices" / "card2" / "mem_info_gtt_total").write_text(f"{2**30}\n")
    command = GttTotals().command().replace(DRM, str(tmp_path / "drm"))
    assert GttTotals().process(sh_lines(command)) == {"card1": 53 * 2**30}


def test_the_live_gtt_parser_keeps_amdgpu_cards_only():
    lines = ["/sys/class/drm/card1 amdgpu 68719476736", "/sys/class/drm/card2 nouveau 1024", "garbage", "a b c"]
    assert parse_gtt_totals(lines) == {"card1": 64 * 2**30}


@pytest.mark.parametrize(
    "totals, wanted, problem",
    [
        ({"card1": 53 * 2**30}, 53, None),
        ({"card1": 53 * 2**30 - 2**28}, 53, None),  # 0.25 GiB off: within the tolerance
        ({"card1": 62 * 2**30}, 53, "the live GTT is 62 GiB (card1), not the 53 GiB"),  # the kernel's default
        ({"card0": 53 * 2**30, "card1": 31 * 2**30}, 53, "the live GTT is 31 GiB (card1), not"),
        ({}, 53, "no amdgpu card reports its GTT"),
    ],
)
def test_the_live_gtt_matches_within_half_a_gib(totals, wanted, problem):
    found = gtt_mismatch(totals, wanted)
    assert found is None if problem is None else problem in found


def test_a_gtt_not_yet_in_effect_is_a_warning_naming_both_sizes(executing):
    commands, host = plan(gtt_in_effect, operations, {GttTotals: {"card1": 62 * 2**30}}, gtt_gib=53)
    assert commands == [] and host.noops == []
    assert executing == [
        f"back: the live GTT is 62 GiB (card1), not the 53 GiB of {GTT_CONF} (within ±0.5 GiB): "
        "53 GiB takes effect after a reboot, reboot the box"
    ]
    _, host = plan(gtt_in_effect, operations, {GttTotals: {"card1": 53 * 2**30}}, gtt_gib=53)
    assert host.noops == ["the live GTT is 53 GiB on card1"] and len(executing) == 1


def test_the_live_gtt_is_read_only_at_execution(monkeypatch):
    monkeypatch.setattr(operations, "state", types.SimpleNamespace(is_executing=False))
    assert plan(gtt_in_effect, operations, {}, gtt_gib=53)[0] == []  # no fact asked: planning reads nothing


@pytest.mark.parametrize(
    "release, version",
    [("6.12.48+deb13-amd64", (6, 12, 48)), ("6.1.0-37-amd64", (6, 1, 0)), ("6.18", (6, 18)), ("unknown", None)],
)
def test_kernel_versions_are_read_from_the_release(release, version):
    assert kernel_version(release) == version


FIRMWARE = ("gc_11_5_1_me.bin.zst", "gc_11_5_1_mec.bin.zst", "gc_11_5_1_pfp.bin.zst")


@pytest.mark.parametrize(
    "release, firmware, errors",
    [
        ("6.12.48+deb13-amd64", FIRMWARE, []),
        ("6.18.9-amd64", FIRMWARE, []),
        ("6.1.0-37-amd64", FIRMWARE, ["kernel 6.1.0-37-amd64: gfx1151 needs kernel 6.12 or later: Debian 13's"]),
        ("6.11.10", FIRMWARE, ["kernel 6.11.10: gfx1151 needs kernel 6.12 or later: Debian 13's"]),
        ("6.12.48+deb13-amd64", (), ["install firmware-amd-graphics from Debian's non-free-firmware component"]),
    ],
)
def test_the_kernel_and_firmware_that_cannot_drive_gfx1151_are_named(release, firmware, errors):
    found, warnings = gpu_kernel_problems(release, firmware)
    assert len(found) == len(errors) and all(e in f for e, f in zip(errors, found, strict=True)) and warnings == []


def test_a_known_bad_kernel_is_warned_about_by_prefix():
    bad = {(6, 13): "a reason", (6, 12, 3): "another"}
    assert gpu_kernel_problems("6.13.7-amd64", FIRMWARE, bad) == (
        [],
        ["kernel 6.13.7-amd64 is known bad for gfx1151: a reason"],
    )
    assert gpu_kernel_problems("6.12.3", FIRMWARE, bad)[1] == ["kernel 6.12.3 is known bad for gfx1151: another"]
    assert gpu_kernel_problems("6.12.30", FIRMWARE, bad)[1] == []  # (6, 12, 3) is not a prefix of (6, 12, 30)
    assert KNOWN_BAD_KERNELS == {}  # none is known with confidence: a name here needs its reason


def test_the_firmware_is_found_with_any_compression_suffix(tmp_path):
    for name in ("gc_11_5_1_mes_2.bin", "gc_11_5_1_pfp.bin.zst", "gc_11_0_0_me.bin.xz", "psp_14_0_0_toc.bin"):
        (tmp_path / name).write_text("")
    command = GpuKernel().command().replace(FIRMWARE_DIR, str(tmp_path))
    release, firmware = GpuKernel().process(sh_lines(command))
    assert release == os.uname().release and firmware == ("gc_11_5_1_mes_2.bin", "gc_11_5_1_pfp.bin.zst")
    assert GpuKernel().process(["6.12.48+deb13-amd64"]) == ("6.12.48+deb13-amd64", ())


def test_the_deploy_stops_on_a_kernel_that_cannot_drive_the_gpu(executing):
    with pytest.raises(OperationError, match="back: kernel 6.1.0-37-amd64: gfx1151 needs kernel 6.12 or later"):
        plan(gpu_kernel_ready, operations, {GpuKernel: ("6.1.0-37-amd64", FIRMWARE)})
    _, host = plan(gpu_kernel_ready, operations, {GpuKernel: ("6.12.48+deb13-amd64", FIRMWARE)})
    assert host.noops == ["kernel 6.12.48+deb13-amd64, and 3 gc_11_5_1 firmware files"] and executing == []


def test_a_radv_backend_installs_the_gpus_firmware():
    radv = site_with(back=RADV_BACKEND).model_server_config("back")
    lavapipe = site_with(back={**RADV_BACKEND, "model_server_vulkan_driver": "lavapipe"}).model_server_config("back")
    assert runtime_packages(radv) == ["libvulkan1", "mesa-vulkan-drivers", "firmware-amd-graphics"]
    assert runtime_packages(lavapipe) == ["libvulkan1", "mesa-vulkan-drivers"]
    assert runtime_packages(site_with().model_server_config("back")) == []


# --- apt: Debian's non-free-firmware component, where firmware-amd-graphics comes from -------------------------

ONE_LINE = "deb https://deb.debian.org/debian trixie main non-free-firmware\n# deb http://x trixie contrib\n"
DEB822 = "Types: deb\nURIs: https://deb.debian.org/debian\nSuites: trixie\nComponents: main non-free-firmware\n"


def apt_fact(root, sources: dict[str, str]):
    """AptComponents as the host would answer it, with /etc under ``root``."""
    (root / "apt" / "sources.list.d").mkdir(parents=True)
    (root / "os-release").write_text('ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n')
    for name, text in sources.items():
        (root / "apt" / name).write_text(text)
    command = AptComponents().command(("non-free-firmware",)).replace("/etc/", f"{root}/")
    return AptComponents().process(sh_lines(command))


@pytest.mark.parametrize(
    "sources, enabled",
    [
        ({"sources.list": ONE_LINE}, {"non-free-firmware"}),
        ({"sources.list.d/debian.sources": DEB822}, {"non-free-firmware"}),
        ({"sources.list": ONE_LINE.replace(" non-free-firmware", "")}, set()),
        ({"sources.list": "# deb https://deb.debian.org/debian trixie main non-free-firmware\n"}, set()),
        ({"sources.list.d/debian.sources": DEB822.replace("non-free-firmware", "non-free-firmwares")}, set()),
        ({"sources.list.d/clawlan-components.sources": DEB822}, set()),  # our own file does not count
    ],
)
def test_a_component_counts_when_a_live_source_line_names_it(tmp_path, sources, enabled):
    codename, found, _ = apt_fact(tmp_path, sources)
    assert codename == "trixie" and found == enabled


def test_a_missing_component_gets_its_own_sources_file_and_fresh_lists():
    text = components_sources_text("trixie", ("non-free-firmware",))
    assert "Suites: trixie trixie-updates\nComponents: non-free-firmware\n" in text
    assert "URIs: https://security.debian.org/debian-security\nSuites: trixie-security\n" in text
    fact = {AptComponents: ("trixie", frozenset(), "")}
    (write, update), _ = plan(apt_components_enabled, base_operations, fact, components=("non-free-firmware",))
    new = f"{COMPONENTS_SOURCES}.clawlan-new"
    assert uploads(apt_components_enabled, base_operations, fact, components=("non-free-firmware",)) == {new: text}
    assert write == f"chmod 644 {new} && sync {new} && mv -f {new} {COMPONENTS_SOURCES}"
    assert update == "apt-get update -q"
    fact = {AptComponents: ("trixie", frozenset(), sha(text))}
    commands, host = plan(apt_components_enabled, base_operations, fact, components=("non-free-firmware",))
    assert commands == [] and host.noops == ["apt fetches Debian's non-free-firmware"]


def test_a_component_the_hosts_own_sources_enable_needs_no_file_of_ours():
    fact = {AptComponents: ("trixie", frozenset({"non-free-firmware"}), sha("old"))}
    commands, _ = plan(apt_components_enabled, base_operations, fact, components=("non-free-firmware",))
    assert commands == [f"rm -f {COMPONENTS_SOURCES}"]


@pytest.mark.parametrize(
    "back, components",
    [
        (RADV_BACKEND, ("non-free-firmware",)),
        ({**RADV_BACKEND, "model_server_vulkan_driver": "lavapipe"}, ()),
        ({}, ()),
    ],
)
def test_only_a_radv_backend_needs_non_free_firmware(back, components):
    site = site_with(back=back)
    assert site.base_config("back").apt_components == components and site.base_config("front").apt_components == ()

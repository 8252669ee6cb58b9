"""What a radv backend's kernel says about its GPU: the live GTT per card, and whether the kernel and firmware can
drive the reference GPU (gfx1151) at all. Pure functions over the facts' output, shared by the deploy and the
compliance suite."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from roles.model_server.config import GTT_CONF, GTT_TOLERANCE_GIB

DRM = "/sys/class/drm"
GTT_TOTAL = "device/mem_info_gtt_total"  # bytes, under each card
FIRMWARE_DIR = "/lib/firmware/amdgpu"
FIRMWARE_PREFIX = "gc_11_5_1"  # gfx1151's graphics firmware (_pfp, _me, _mec, _rlc, _mes...), any compression suffix
# gfx1151 is driven from kernel 6.12 on: Debian 13's. Older ones have no support for the chip.
MIN_KERNEL = (6, 12)
# Kernel versions (a prefix: (6, 13) is every 6.13.x) known to break gfx1151, with the reason, warned about but not
# refused. Empty: no version is known bad with enough confidence to name here; reports of hangs on this chip have
# so far been traced to firmware or ROCm, not to a kernel release the deploy could tell apart.
KNOWN_BAD_KERNELS: dict[tuple[int, ...], str] = {}


def parse_gtt_totals(lines: Iterable[str]) -> dict[str, int]:
    """``{card: GTT bytes}`` for the amdgpu cards, from lines "<card dir> <driver> <bytes>" (GttTotals' command).
    Connectors (card1-DP-1) and other drivers' cards are left out."""
    totals = {}
    for line in lines:
        fields = line.split()
        if len(fields) != 3 or not fields[2].isdigit():
            continue
        card, driver, total = fields[0].rsplit("/", 1)[-1], fields[1], int(fields[2])
        if driver == "amdgpu" and "-" not in card:
            totals[card] = total
    return totals


def gib(total_bytes: int) -> float:
    return round(total_bytes / 2**30, 2)


def gtt_mismatch(totals: Mapping[str, int], wanted_gib: int) -> str | None:
    """Why the live GTT is not ``wanted_gib`` (within GTT_TOLERANCE_GIB) on every amdgpu card, or None when it is."""
    if not totals:
        return f"no amdgpu card reports its GTT ({DRM}/card*/{GTT_TOTAL})"
    sizes = {card: gib(total) for card, total in sorted(totals.items())}
    off = {card: size for card, size in sizes.items() if abs(size - wanted_gib) > GTT_TOLERANCE_GIB}
    if not off:
        return None
    live = ", ".join(f"{size:g} GiB ({card})" for card, size in off.items())
    return f"the live GTT is {live}, not the {wanted_gib} GiB of {GTT_CONF} (within ±{GTT_TOLERANCE_GIB:g} GiB)"


def parse_gpu_kernel(lines: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """(kernel release, gfx1151 firmware files) from GpuKernel's command: ``uname -r``, then one file name a line."""
    lines = [line.strip() for line in lines if line.strip()]
    return (lines[0] if lines else ""), tuple(sorted(line for line in lines[1:] if line.startswith(FIRMWARE_PREFIX)))


def kernel_version(release: str) -> tuple[int, ...] | None:
    """(6, 12, 48) from "6.12.48+deb13-amd64"; None when the release does not start with a version."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def gpu_kernel_problems(
    release: str,
    firmware: tuple[str, ...],
    known_bad: Mapping[tuple[int, ...], str] = KNOWN_BAD_KERNELS,
) -> tuple[list[str], list[str]]:
    """(what stops the deploy, what it warns about) for a gfx1151 host with this kernel and firmware."""
    errors, warnings = [], []
    version = kernel_version(release)
    if version is None:
        errors.append(f"cannot read a version in the kernel release {release!r}")
    elif version < MIN_KERNEL:
        errors.append(f"kernel {release}: gfx1151 needs kernel 6.12 or later: Debian 13's")
    else:
        warnings += [
            f"kernel {release} is known bad for gfx1151: {why}"
            for prefix, why in known_bad.items()
            if version[: len(prefix)] == prefix
        ]
    if not firmware:
        errors.append(
            f"no {FIRMWARE_PREFIX}* firmware in {FIRMWARE_DIR}: install firmware-amd-graphics from Debian's "
            "non-free-firmware component"
        )
    return errors, warnings

"""Facts the model_server role reads to skip slow steps (the installed build, the model on disk), and what the running
server reported when it started."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from roles.model_server import gpu
from roles.model_server.offload import MARKERS

# Where the unit keeps its current start's device lines (programs/record-startup.py): /run, so a reboot empties it
# and the start after it writes it again.
STARTUP_RECORD = "/run/clawlan-model-server.startup"


class BuildTarget(FactBase):
    """What a llama-cpp-python wheel built here would only run on: arch, Python, OS, and the CPU if native."""

    def command(self, native: bool) -> str:
        cpu = " && grep -m1 '^model name' /proc/cpuinfo" if native else ""
        return (
            "uname -m && python3 -c 'import sys; print(\"cp%d%d\" % sys.version_info[:2])'"
            " && . /etc/os-release && echo $ID$VERSION_ID" + cpu
        )

    def process(self, output):
        return "-".join(line.strip() for line in output)


class CandidateVersions(FactBase):
    """``("package:version", ...)``: what apt would install of ``packages`` now, so a build's toolchain is known
    before the build installs it."""

    def command(self, packages: tuple[str, ...]) -> str:
        names = " ".join(shlex.quote(package) for package in packages)
        return f"apt-cache policy {names} | awk '/^[^ ]/ {{name = $1}} $1 == \"Candidate:\" {{print name $2}}'"

    def process(self, output):
        return tuple(line.strip() for line in output)


class StartupLog(FactBase):
    """The lines of ``unit``'s running server that say where it put the model (offload.MARKERS). Empty when the unit
    runs nothing.

    First from ``record``, which the unit's record-startup.py writes as the server becomes ready, when its first
    line names the unit's current start (its InvocationID): the journal may have rotated them away since. Otherwise
    from the journal, this boot, the main process's lines: journald takes in a service's output a moment after it is
    written, so right after a restart it asks again, for up to 10 s, until a line that ends the story (layers
    counted, or no device)."""

    def command(self, unit: str, record: str = STARTUP_RECORD) -> str:
        quoted, record = shlex.quote(unit), shlex.quote(record)
        markers = " ".join(f"-e {shlex.quote(marker)}" for marker in MARKERS)
        final = "|".join(f"*{shlex.quote(marker)}*" for marker in MARKERS[1:])
        return (
            f"pid=$(systemctl show --value --property MainPID {quoted});"
            f" start=$(systemctl show --value --property InvocationID {quoted}); lines=;"
            f' if [ "${{pid:-0}}" != 0 ] && [ -n "$start" ]'
            f' && [ "$(head -n 1 {record} 2>/dev/null)" = "invocation=$start" ]; then lines=$(tail -n +2 {record}); fi;'
            f' if [ "${{pid:-0}}" != 0 ] && [ -z "$lines" ]; then for attempt in $(seq 20); do'
            f' lines=$(journalctl --boot --no-pager --quiet --output cat _SYSTEMD_UNIT={quoted} "_PID=$pid"'
            f" | grep --fixed-strings {markers} | head -n 100);"
            f' case "$lines" in {final}) break;; esac; sleep 0.5; done; fi;'
            ' [ -n "$lines" ] && printf \'%s\\n\' "$lines"; true'
        )

    default = list

    def process(self, output):
        return list(output)


class ModelFile(FactBase):
    """``{"sha256": ..., "recorded": bool}`` for the model at ``path``, or None when there is none.

    A sidecar ``<path>.sha256`` records "sha256 size mtime" once the file was verified: while size and
    mtime still match, the recorded hash is trusted and 45 GB are not read again on every run.
    """

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (
            f"if [ -f {p} ]; then set -- $(stat -c '%s %Y' {p}); "
            f'if [ -f {p}.sha256 ] && read sha size mtime < {p}.sha256 && [ "$size $mtime" = "$1 $2" ]; '
            f'then echo "$sha recorded"; else echo "$(sha256sum < {p} | cut -d\' \' -f1) hashed"; fi; fi'
        )

    def process(self, output):
        if not output:
            return None
        sha256, how = output[0].split()
        return {"sha256": sha256, "recorded": how == "recorded"}


class FreeMiB(FactBase):
    """Free space in MiB on the filesystem holding ``path`` (or its nearest existing parent), counting what an
    interrupted transfer left in ``path``.partial: a download resumes into it, a copy writes over it."""

    def command(self, path: str) -> str:
        partial = shlex.quote(f"{path}.partial")
        return (
            f'p={shlex.quote(path)}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -Pm "$p" | tail -n1;'
            f" stat -c %s {partial} 2>/dev/null || echo 0"
        )

    def process(self, output):
        held = int(output[1]) if len(output) > 1 else 0
        return int(output[0].split()[3]) + held // (1 << 20)


class GttLimitFiles(FactBase):
    """``(sha256 of the GTT's modprobe file, sha256 the initramfs was last built with)``, each "" when there is none."""

    def command(self, path: str, stamp: str) -> str:
        p, s = shlex.quote(path), shlex.quote(stamp)
        return (
            f"if [ -f {p} ]; then sha256sum < {p} | cut -d' ' -f1; else echo -; fi;"
            f" if [ -f {s} ]; then head -n1 {s}; else echo -; fi"
        )

    def process(self, output):
        conf, built = ([line.strip() for line in output] + ["-", "-"])[:2]
        return ("" if conf == "-" else conf), ("" if built == "-" else built)


class GttTotals(FactBase):
    """``{card: bytes}``: the GTT each amdgpu card has now (gpu.parse_gtt_totals); empty on a box without one."""

    def command(self) -> str:
        return (
            f'for d in {gpu.DRM}/card*/device; do [ -r "$d/mem_info_gtt_total" ] || continue; echo "${{d%/device}}"'
            ' "$(basename "$(readlink -f "$d/driver")")" "$(cat "$d/mem_info_gtt_total")"; done; true'
        )

    default = dict

    def process(self, output):
        return gpu.parse_gtt_totals(output)


class GpuKernel(FactBase):
    """``(kernel release, gfx1151 firmware files)``: what the kernel check of a radv backend reads (gpu.py)."""

    def command(self) -> str:
        pattern = shlex.quote(f"{gpu.FIRMWARE_DIR}/{gpu.FIRMWARE_PREFIX}") + "*"
        return f'uname -r; for f in {pattern}; do [ -e "$f" ] && echo "${{f##*/}}"; done; true'

    def process(self, output):
        return gpu.parse_gpu_kernel(output)

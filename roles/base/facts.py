"""Facts the base role reads before it decides whether anything needs doing."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from roles.base import hardware

THP_DIR = "/sys/kernel/mm/transparent_hugepage"


class TransparentHugePages(FactBase):
    """The active transparent huge pages modes: ``{"enabled": "always", "defrag": "madvise"}``."""

    def command(self) -> str:
        return f"echo enabled $(cat {THP_DIR}/enabled) && echo defrag $(cat {THP_DIR}/defrag)"

    def process(self, output):
        modes = {}
        for line in output:
            knob, choices = line.split(" ", 1)
            # The kernel lists every mode and brackets the active one: "always [madvise] never".
            modes[knob] = choices.split("[", 1)[1].split("]", 1)[0]
        return modes


class HostHardware(FactBase):
    """The RAM and physical cores this host's processes may use (roles/base/hardware.py)."""

    def command(self) -> str:
        return hardware.COMMAND

    def process(self, output) -> hardware.Hardware:
        return hardware.parse(output)


class SysctlValues(FactBase):
    """Live values of the given sysctl keys, read in one command: ``{"vm.swappiness": 10}``."""

    default = dict

    def command(self, keys: tuple[str, ...]) -> str:
        return "sysctl " + " ".join(shlex.quote(k) for k in keys)

    def process(self, output):
        values = {}
        for line in output:
            key, _, value = line.partition(" = ")
            values[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
        return values


class SwapAreas(FactBase):
    """Active swap areas as ``{path: size_kib}``, from /proc/swaps."""

    default = dict

    def command(self) -> str:
        return "cat /proc/swaps"

    def process(self, output):
        areas = {}
        for line in output[1:]:
            fields = line.split()
            # /proc/swaps escapes spaces in paths as \040.
            areas[fields[0].replace("\\040", " ")] = int(fields[2])
        return areas


NOT_SWAP = "not-swap"


def is_swap_area(quoted_path: str) -> str:
    """Shell: true when the (quoted) path is a file that carries a swap signature.

    blkid (util-linux, on every Debian box) recognises the signature mkswap writes."""
    return f"[ -f {quoted_path} ] && blkid --probe --match-types swap {quoted_path} >/dev/null 2>&1"


class SwapfileHeader(FactBase):
    """Size in bytes of a file that carries a swap signature; ``NOT_SWAP`` when something else is at the path (a
    file, a directory, a link, a device), which the swap operation must never replace; None when nothing is."""

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return (
            f"if {is_swap_area(quoted)}; then stat -c %s {quoted};"
            f" elif [ -e {quoted} ] || [ -L {quoted} ]; then echo {NOT_SWAP}; fi"
        )

    def process(self, output):
        if not output:
            return None
        return NOT_SWAP if output[0].strip() == NOT_SWAP else int(output[0])


class NsswitchSources(FactBase):
    """The sources of one nsswitch database, in order: ``["files", "dns"]``."""

    default = list

    def command(self, database: str) -> str:
        return f"grep -E {shlex.quote(f'^{database}:')} /etc/nsswitch.conf || true"

    def process(self, output):
        return output[0].split(":", 1)[1].split() if output else []


# What apt would install from Debian's security suite: a simulation (no lock taken), against the package lists as
# they are (refreshed daily by apt's timer). Shared with the compliance control BASE-15, which reports them.
PENDING_SECURITY_UPDATES = (
    "apt-get --simulate -o Debug::NoLocking=1 -o APT::Get::Show-User-Simulation-Note=false dist-upgrade"
    " | sed -n 's/^Inst \\([^ ]*\\) .*Debian-Security.*/\\1/p'"
)


class PendingSecurityUpdates(FactBase):
    """Packages with an update from Debian's security suite waiting: ``["libexpat1", "tzdata"]``."""

    default = list

    def command(self) -> str:
        return PENDING_SECURITY_UPDATES

    def process(self, output):
        return sorted(line.strip() for line in output if line.strip())


# Debian's own mirrors, which answer on https too: apt is sent there over https (base role, BASE-16).
DEBIAN_MIRRORS = ("deb.debian.org", "security.debian.org")
APT_SOURCES = "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources"


class PlainHttpAptSources(FactBase):
    """apt source files that name one of Debian's mirrors over plain http."""

    default = list

    def command(self) -> str:
        pattern = "|".join(f"http://{mirror.replace('.', '[.]')}" for mirror in DEBIAN_MIRRORS)
        return f"grep -lE {shlex.quote(pattern)} {APT_SOURCES} 2>/dev/null; true"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


# The sources file the base role writes when a component a host needs is enabled by no other source.
COMPONENTS_SOURCES = "/etc/apt/sources.list.d/clawlan-components.sources"


class AptComponents(FactBase):
    """``(codename, components enabled by a source other than COMPONENTS_SOURCES, sha256 of that file or "")``:
    a component counts when an uncommented line of a sources file (one-line or deb822) names it as a word."""

    def command(self, components: tuple[str, ...]) -> str:
        ours = shlex.quote(COMPONENTS_SOURCES)
        finds = "".join(
            f" grep -lsE {shlex.quote(f'^[^#]*[[:space:]]{c}([[:space:]]|$)')} {APT_SOURCES}"
            f" | grep -vxF {ours} | head -n1 | sed {shlex.quote(f's/^/{c} /')};"
            for c in components
        )
        return (
            '. /etc/os-release; echo "codename $VERSION_CODENAME";'
            f"{finds} if [ -f {ours} ]; then echo \"ours $(sha256sum < {ours} | cut -d' ' -f1)\"; fi; true"
        )

    def process(self, output):
        return parse_apt_components(output)


def parse_apt_components(lines) -> tuple[str, frozenset[str], str]:
    codename, enabled, ours = "", set(), ""
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        if word == "codename":
            codename = rest.strip()
        elif word == "ours":
            ours = rest.strip()
        elif word and rest:
            enabled.add(word)
    return codename, frozenset(enabled), ours

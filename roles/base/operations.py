"""Operations of the base role, written like pyinfra's own: read facts, then yield commands or noop."""

from __future__ import annotations

import hashlib
import math
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import OperationError, operation

from roles.base.facts import (
    COMPONENTS_SOURCES,
    DEBIAN_MIRRORS,
    NOT_SWAP,
    PENDING_SECURITY_UPDATES,
    THP_DIR,
    AptComponents,
    NsswitchSources,
    PendingSecurityUpdates,
    PlainHttpAptSources,
    SwapAreas,
    SwapfileHeader,
    SysctlValues,
    TransparentHugePages,
    is_swap_area,
)
from roles.common.files import whole_file


@operation()
def transparent_hugepages(enabled: str, defrag: str):
    """Set the running kernel's transparent huge pages modes (persisting them is a tmpfiles.d file's job)."""
    current = host.get_fact(TransparentHugePages)
    wanted = {"enabled": enabled, "defrag": defrag}
    changes = {knob: mode for knob, mode in wanted.items() if current.get(knob) != mode}
    for knob, mode in changes.items():
        yield f"echo {shlex.quote(mode)} > {THP_DIR}/{knob}"
    if not changes:
        host.noop(f"transparent huge pages already enabled={enabled} defrag={defrag}")


@operation()
def sysctl_values(values: dict[str, int]):
    """Set the running kernel's sysctl values that differ (persisting them is a sysctl.d file's job).

    One fact command for all keys, where server.sysctl would read them one operation at a time.
    """
    current = host.get_fact(SysctlValues, keys=tuple(values))
    changes = {key: value for key, value in values.items() if current.get(key) != value}
    for key, value in changes.items():
        yield f"sysctl -qw {shlex.quote(f'{key}={value}')}"
    if not changes:
        host.noop(f"{len(values)} sysctl values already live")


@operation()
def nsswitch_files_first(database: str = "hosts"):
    """Make /etc/files the first source of an nsswitch database, keeping the other sources in order."""
    sources = host.get_fact(NsswitchSources, database=database)
    if sources[:1] == ["files"]:
        host.noop(f"nsswitch {database} already looks in files first")
        return
    others = [source for source in sources if source != "files"] or ["dns"]
    line = f"{database}: " + " ".join(["files", *others])
    if sources:
        yield f"sed -i -E {shlex.quote(f's/^{database}:.*/{line}/')} /etc/nsswitch.conf"
    else:
        yield f"echo {shlex.quote(line)} >> /etc/nsswitch.conf"


@operation()
def swapfile(path: str, size_mib: int):
    """Keep one active swapfile of ``size_mib`` MiB at ``path``; 0 removes it.

    Swap the host already has elsewhere (a partition, another file) is left alone and counts toward
    the size. The file is built beside its final path and moved into place only once it carries a
    swap signature, so an interrupted run never leaves a half-made swapfile at ``path``.

    Anything at ``path`` that is not a swap area (a system file, a directory, a link) is never replaced or
    removed: the operation fails before it changes anything, and the command that would replace the file
    checks again on the host when it runs.
    """
    areas = host.get_fact(SwapAreas)
    active = path in areas
    # /proc/swaps leaves out each area's header page: round up to whole MiB.
    other_mib = math.ceil(sum(size for area, size in areas.items() if area != path) / 1024)
    wanted_bytes = max(0, size_mib - other_mib) * 1024 * 1024
    current_bytes = host.get_fact(SwapfileHeader, path=path)
    quoted, partial = shlex.quote(path), shlex.quote(f"{path}.partial")

    if current_bytes == NOT_SWAP:
        if wanted_bytes == 0 and not active:
            host.noop(f"no swapfile at {path}, as wanted (something else is there: left alone)")
            return
        raise OperationError(
            f"{path} exists and is not a swap area: base_swap_path must name a swapfile or a free path. "
            "Nothing was changed."
        )

    if wanted_bytes == 0:
        if active:
            yield f"swapoff {quoted}"
        if current_bytes is not None:
            yield f"if {is_swap_area(quoted)}; then rm -f {quoted}; fi"
        if not active and current_bytes is None:
            host.noop(f"no swapfile at {path}, as wanted")
        return

    if current_bytes != wanted_bytes:
        if active:
            yield f"swapoff {quoted}"
        size = wanted_bytes // (1024 * 1024)
        refuse = f"{path} exists and is not a swap area: left alone"
        yield (
            f"if [ -e {quoted} ] || [ -L {quoted} ]; then {is_swap_area(quoted)}"
            f" || {{ echo {shlex.quote(refuse)} >&2; exit 1; }}; fi && "
            f"rm -f {partial} && umask 077 && "
            f"(fallocate -l {size}MiB {partial} || dd if=/dev/zero of={partial} bs=1M count={size} status=none) && "
            f"mkswap {partial} >/dev/null && mv {partial} {quoted}"
        )
        yield f"swapon {quoted}"
    elif not active:
        yield f"swapon {quoted}"
    else:
        host.noop(f"swapfile {path} active with {size_mib} MiB")


@operation()
def security_updates_applied():
    """Install what Debian's security suite has waiting, now, with unattended-upgrades (security origins only)."""
    pending = host.get_fact(PendingSecurityUpdates)
    if not pending:
        host.noop("no security update is pending")
        return
    # unattended-upgrades skips what it may not install unattended (a changed config file): say so, or every deploy
    # would try again without anyone knowing why.
    left = shlex.quote("security updates still waiting after unattended-upgrade (see /var/log/unattended-upgrades): ")
    yield (
        f"unattended-upgrade && left=$({PENDING_SECURITY_UPDATES})"
        f' && if [ -n "$left" ]; then echo {left}$left >&2; exit 1; fi'
    )


@operation()
def apt_sources_over_https():
    """Point apt's sources for Debian's own mirrors at https (they serve both; apt's https method is built in)."""
    plain = host.get_fact(PlainHttpAptSources)
    if not plain:
        host.noop("apt reaches Debian's mirrors over https")
        return
    mirrors = "; ".join(f"s#http://{m.replace('.', '[.]')}#https://{m}#g" for m in DEBIAN_MIRRORS)
    yield f"sed -i {shlex.quote(mirrors)} " + " ".join(shlex.quote(path) for path in plain)


def components_sources_text(codename: str, components: tuple[str, ...]) -> str:
    """A deb822 sources file for Debian's ``components`` of ``codename``, its updates and its security suite."""
    stanza = "Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: {components}\nSigned-By: {keyring}\n"
    keyring, words = "/usr/share/keyrings/debian-archive-keyring.gpg", " ".join(components)
    return (
        "# Written by clawlan: Debian components this host needs beyond main, enabled by no other source.\n"
        + "\n".join(
            stanza.format(uri=uri, suites=suites, components=words, keyring=keyring)
            for uri, suites in (
                ("https://deb.debian.org/debian", f"{codename} {codename}-updates"),
                ("https://security.debian.org/debian-security", f"{codename}-security"),
            )
        )
    )


@operation()
def apt_components_enabled(components: tuple[str, ...]):
    """Make apt fetch Debian's ``components`` (e.g. non-free-firmware, for a GPU's firmware) besides main.

    The host's own sources are never edited: a component none of them enables goes in a file of its own
    (COMPONENTS_SOURCES), which is removed again once they all do. apt's lists are refreshed at once, as a
    package install that follows would trust a list fetched in the last hour, without the component.
    """
    codename, enabled, ours = host.get_fact(AptComponents, components=components)
    missing = tuple(c for c in components if c not in enabled)
    if missing and not codename:
        raise OperationError(f"{host.name}: no VERSION_CODENAME in /etc/os-release: cannot name the suite of {missing}")
    text = components_sources_text(codename, missing) if missing else ""
    if ours == (hashlib.sha256(text.encode()).hexdigest() if text else ""):
        host.noop(f"apt fetches Debian's {', '.join(components)}")
        return
    if text:
        yield from whole_file._inner(StringIO(text), COMPONENTS_SOURCES, mode="644", create_remote_dir=False)
        yield "apt-get update -q"
    else:
        yield f"rm -f {shlex.quote(COMPONENTS_SOURCES)}"

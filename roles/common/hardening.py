"""The sandbox every clawlan service starts from, and the one place a unit's departures from it are merged.

A unit template calls ``{{ sandbox(Directive=value, ...) }}`` with only what differs for that service, each difference
explained in a comment above the call; the result is one block with each directive once. systemd appends a list-type
directive given twice (SystemCallFilter, CapabilityBoundingSet, RestrictAddressFamilies, ReadWritePaths...), so an
override has to replace the baseline's value here, never follow it in the file.

clawlan-swapon.service (role base) is the one unit without it: it turns on swap for the kernel early in boot, which
takes CAP_SYS_ADMIN and the swap devices and files this sandbox exists to keep away.
"""

from __future__ import annotations

from collections.abc import Sequence

# What a service needs none of unless its unit says so: no privileges or capabilities, a read-only system and no
# home directories, no devices, kernel knobs or other users' processes, IP to and from nowhere, and only the system
# calls an ordinary unprivileged service makes (anything else fails with EPERM instead of killing it).
BASELINE: dict[str, str | tuple[str, ...]] = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectHostname": "yes",
    "ProtectClock": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RemoveIPC": "yes",
    "SystemCallArchitectures": "native",
    # An allow list, then what is taken out of it: the order of the lines is what they mean.
    "SystemCallFilter": ("@system-service", "~@privileged @resources"),
    "SystemCallErrorNumber": "EPERM",
    "IPAddressDeny": "any",
}


def sandbox(**overrides: str | Sequence[str] | None) -> str:
    """The baseline with ``overrides`` in place of its values (None: leave the directive out, so systemd's default
    or the packaged unit's value holds), then the directives the baseline lacks in the order given. A sequence is
    one directive written once per item, in that order."""
    directives = {**BASELINE, **overrides}
    lines = []
    for key, value in directives.items():
        if value is None:
            continue
        for item in (value,) if isinstance(value, str) else value:
            lines.append(f"{key}={item}")
    return "\n".join(lines)

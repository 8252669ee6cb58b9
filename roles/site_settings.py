"""Site-wide settings that belong to no role: inventory keys ``site_*`` (the control machine) and ``latency_*``
(the latency suite's targets for a running site)."""

from __future__ import annotations

from dataclasses import dataclass

from roles.common.settings import setting
from roles.common.values import ControlPath, Number, OrEmpty


@dataclass(frozen=True)
class SiteSettings:
    state_dir: str = setting(
        "~/.local/state/clawlan/site",
        "Control-machine directory (0700, outside git) for the site CA and secrets: back it up.",
        ControlPath(),
    )
    cache_dir: str = setting(
        "~/.cache/clawlan", "Control-machine cache of built wheels; deleting it only costs a rebuild.", ControlPath()
    )
    locks_dir: str = setting(
        "", "Lock files (versions and hashes) of what the hosts install; a site keeping its own pins names its copy.",
        OrEmpty(ControlPath(), "the repository's locks/ (make locks)"),
    )  # fmt: skip


@dataclass(frozen=True)
class LatencyTargets:
    """What the latency suite (make check) holds each path of a running site to."""

    ttft_p99_s: float = setting(0.7, "Warm time to first token p99 per path, seconds (reference box).",
                                Number(0.001, 600))  # fmt: skip
    inter_token_p99_s: float = setting(
        0.04, "Inter-token p99, seconds; above 40 ms a Nagle/delayed-ACK stall is likely.", Number(0.001, 60)
    )
    tokens_per_second: float = setting(25.0, "Decode speed floor per path (Q4_K_M on the reference box).",
                                       Number(0, 100000))  # fmt: skip

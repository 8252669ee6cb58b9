"""One host's settings, as typed objects: every role's, and the site's that belong to no role, inventory keys
``site_*`` (the control machine) and ``latency_*`` (the latency suite's targets for a running site)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from roles.base.settings import BaseSettings
from roles.common.settings import all_site_wide, setting
from roles.common.values.containers import OrEmpty
from roles.common.values.numbers import Choice, Either, Number, WholeNumber
from roles.common.values.paths import ControlPath
from roles.firewall.settings import FirewallSettings
from roles.gateway.settings import GatewaySettings
from roles.model_server.settings import ModelServerSettings
from roles.monitor.settings import MonitorSettings
from roles.mtls.settings import MtlsSettings
from roles.pki.settings import PkiSettings


@dataclass(frozen=True)
class SiteSettings:
    state_dir: str = setting(
        "~/.local/state/clawlan/site",
        "Control-machine directory (0700, outside git) for the site CA and secrets: back it up.",
        ControlPath(),
        site_wide=True,
    )
    cache_dir: str = setting(
        "~/.cache/clawlan",
        "Control-machine cache of built wheels; deleting it only costs a rebuild.",
        ControlPath(),
        site_wide=True,
    )
    locks_dir: str = setting(
        "", "Lock files (versions and hashes) of what the hosts install; a site keeping its own pins names its copy.",
        OrEmpty(ControlPath(), "the repository's locks/ (make locks)"),
    )  # fmt: skip


@all_site_wide  # one latency suite holds the whole site to one set of targets
@dataclass(frozen=True)
class LatencyTargets:
    """What the latency suite (make check) holds each path of a running site to."""

    ttft_p99_s: float = setting(0.7, "Warm time to first token p99 per path, seconds (reference box).",
                                Number(0.001, 600), renamed_from="monitor_target_ttft_p99_s")  # fmt: skip
    inter_token_p99_s: float = setting(
        0.04, "Inter-token p99, seconds; above 40 ms a Nagle/delayed-ACK stall is likely.", Number(0.001, 60),
        renamed_from="monitor_target_inter_token_p99_s",
    )  # fmt: skip
    tokens_per_second: float | Literal["auto"] = setting(
        "auto",
        "Decode speed floor per path, tokens/s; 0 = none. auto: per device class, the slowest class among the site's "
        "backends (docs/operating.md, Decode floors).",
        Either(Number(0, 100000), Choice("auto")), renamed_from="monitor_target_tokens_per_second",
    )  # fmt: skip
    noise_margin_percent: float = setting(
        0.0,
        "How far a figure may miss its target, in %, and still pass as measurement noise. 0 on a real site: its "
        "targets are its targets. A figure past target and margin is measured once more before it fails.",
        Number(0, 100),
    )

    at_once_chats: int = setting(
        8, "People chatting at once that make check-deep holds the gateway path to (the three at_once targets).",
        WholeNumber(2, 256),
    )  # fmt: skip
    at_once_ttft_p99_ratio: float = setting(
        3.0, "TTFT p99 with that many chats at once, at most this many times one chat's on the same run.",
        Number(1, 1000),
    )  # fmt: skip
    at_once_tokens_per_second_ratio: float = setting(
        2.0, "Tokens/s the site streams with that many chats at once, at least this many times one chat's.",
        Number(0, 1000),
    )  # fmt: skip
    at_once_inter_token_p99_s: float = setting(
        0.04, "Inter-token p99 with that many chats at once, seconds: the streams do not stutter.", Number(0.001, 60),
    )  # fmt: skip

    def allowed(self) -> dict[str, float]:
        """Each latency figure's bound with the noise margin: p99s may be that much higher, the speed that much
        lower."""
        if self.tokens_per_second == "auto":
            raise ValueError("latency_tokens_per_second is 'auto': read the site's targets (Site.latency)")
        factor = self.noise_margin_percent / 100
        return {
            "ttft_p99_s": self.ttft_p99_s * (1 + factor),
            "inter_token_p99_s": self.inter_token_p99_s * (1 + factor),
            "tokens_per_second_median": self.tokens_per_second * (1 - factor),
        }


@dataclass(frozen=True)
class HostSettings:
    """Everything the inventory sets for one host: each field holds the keys of its prefix (``mtls`` the ``mtls_*``
    keys), in the order the inventory checks and docs/site.md lists them."""

    site: SiteSettings
    base: BaseSettings
    pki: PkiSettings
    model_server: ModelServerSettings
    mtls: MtlsSettings
    gateway: GatewaySettings
    monitor: MonitorSettings
    firewall: FirewallSettings
    latency: LatencyTargets

"""What an alert rule is, the thresholds rules read, and the pieces their texts are written with.

Annotations are Go templates Prometheus fills in when an alert fires. Writing them in Python keeps each rule's
expression, thresholds and advice in one place; the pieces below keep the Go template syntax out of the prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEVERITIES = ("warning", "critical", "none")  # "none": the Watchdog, which is no problem to anyone
_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")

# Go template pieces for annotations.
INSTANCE = "{{ $labels.instance }}"
VALUE = "{{ $value }}"
VALUE_BYTES = "{{ $value | humanize1024 }}B"
DEPLOY = "`pyinfra inventory/site.py deploys/full.py`"

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def label(name: str) -> str:
    return "{{ $labels." + name + " }}"


def value_as(fmt: str) -> str:
    """The alert's value through printf, e.g. ``value_as("%.1f")``."""
    return '{{ printf "' + fmt + '" $value }}'


def prose(text: str) -> str:
    """Text as one line with single spaces: how Alertmanager shows it, and what a folded YAML scalar gives back."""
    return " ".join(text.split())


def prometheus_duration(seconds: int) -> str:
    """Seconds as a Prometheus duration in the largest unit that divides them: 300 -> "5m", 90 -> "90s"."""
    if seconds < 0 or seconds != int(seconds):
        raise ValueError(f"a duration must be a whole, non-negative number of seconds, got {seconds!r}")
    seconds = int(seconds)
    for suffix, size in _UNITS:
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def gib_to_bytes(gib: float) -> int:
    """node_memory_*_bytes are bytes; rounding to a whole byte keeps floats out of the PromQL literal."""
    return round(gib * 2**30)


def number(value: float) -> str:
    """A threshold as PromQL and people read it: 85.0 -> "85", 0.5 -> "0.5"."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def unit_regex(units: tuple[str, ...]) -> str:
    """The systemd unit names as one RE2 alternation, dots escaped (as the node exporter's unit-include does)."""
    return "|".join(unit.replace(".", r"\.") for unit in units)


@dataclass(frozen=True)
class AlertThresholds:
    """Everything the alert rules read from the inventory; ``*_for_s`` become the rules' ``for:``."""

    memory_used_percent: float
    memory_for_s: int
    memory_available_floor_gib: float
    swap_growth_for_s: int
    packet_loss_percent: float
    ttft_p99_s: float
    tokens_per_second_floor: float
    latency_for_s: int
    probe_failing_for_s: int
    # A probe round, its timeout and two scrapes: how long after a backend recovers the probe may still show it
    # failing.
    probe_recovery_s: int
    down_for_s: int
    disk_free_percent: float
    certificate_renew_before_days: int
    certificate_for_s: int  # a certificate inside its window this long alerts (a renewing deploy finishes first)
    gateway_audit_max_age_s: int  # the gateway's security audit report counts as current this long
    queue_for_s: int  # chats waiting for a slot this long alert
    context_full_percent: float  # a chat filling its slot's context past this alerts
    slot_context_tokens: tuple[tuple[str, int], ...]  # (backend, context per slot) of the llama-server backends
    backend_out_for_s: int  # a backend out of a balancer's pool this long alerts
    backends_min: int  # fewer healthy backends than this in a balancer's pool alerts
    balancer_proxy: str  # HAProxy's name for the pool (the proxy label of its metrics)
    gpu_memory_percent: float  # GPU memory (GTT on unified memory) in use past this alerts
    gpu_temperature_celsius: float  # a GPU hotter than this alerts
    watched_units: tuple[str, ...]  # long-running units whose state the unit-down alert watches


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule, and what a person needs to act on it.

    ``summary`` and ``description`` are the annotations a notification carries: what fired, where, and what to do.
    ``why`` is the reasoning behind the expression and its ``for:``: a comment in the rules file and the reference.
    """

    name: str
    expr: str  # PromQL; may span lines
    severity: str
    summary: str
    description: str
    why: str
    for_s: int | None = None  # None: no for: at all (fires at its first evaluation, like for: 0s)
    keep_firing_for_s: int = 0
    tuned_by: tuple[str, ...] = ()  # the inventory keys that move its threshold or for:

    def __post_init__(self):
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"alert name {self.name!r}: CamelCase letters and digits")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: severity {self.severity!r} is none of {', '.join(SEVERITIES)}")
        for field in ("summary", "description", "why"):
            if getattr(self, field) != prose(getattr(self, field)):
                raise ValueError(f"{self.name}: {field} must be prose(...): one line, single spaces")
        if self.expr != self.expr.strip() or "\t" in self.expr:
            raise ValueError(f"{self.name}: expr starts or ends with blanks, or holds a tab")


@dataclass(frozen=True)
class AlertGroup:
    """Rules Prometheus evaluates together, and the reference's chapter for them."""

    name: str
    title: str
    rules: tuple[AlertRule, ...]

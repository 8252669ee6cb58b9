"""The alert rules Prometheus evaluates, rendered from the inventory's thresholds.

The inventory speaks in the units people set (seconds, GiB, days, percent); PromQL and the rules file need
Prometheus durations ("5m") and bytes. The conversions live here, so the template only places values.
"""

from __future__ import annotations

from roles.common.templates import render
from roles.monitor.config import AlertThresholds

RULES_TEMPLATE = "monitor/clawlan.rules.yml.j2"
# The TTFT p99 window never drops below this: at one probe a minute it still holds ~10 probe rounds (a p99 of
# fewer is just the slowest probe), and it matches the default for: so one slow probe cannot fire alone.
TTFT_MIN_WINDOW_S = 600

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


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


def ttft_window_s(thresholds: AlertThresholds) -> int:
    return max(thresholds.latency_for_s, TTFT_MIN_WINDOW_S)


def render_rules(thresholds: AlertThresholds) -> str:
    """The rules file (clawlan.rules.yml): every threshold and for: comes from ``thresholds``."""
    t = thresholds
    return render(
        RULES_TEMPLATE,
        memory_used_percent=number(t.memory_used_percent),
        memory_for=prometheus_duration(t.memory_for_s),
        memory_available_floor_bytes=gib_to_bytes(t.memory_available_floor_gib),
        memory_available_floor_gib=number(t.memory_available_floor_gib),
        swap_growth_for=prometheus_duration(t.swap_growth_for_s),
        packet_loss_percent=number(t.packet_loss_percent),
        ttft_p99_s=number(t.ttft_p99_s),
        ttft_window=prometheus_duration(ttft_window_s(t)),
        tokens_per_second_floor=number(t.tokens_per_second_floor),
        latency_for=prometheus_duration(t.latency_for_s),
        probe_failing_for=prometheus_duration(t.probe_failing_for_s),
        probe_recovery=prometheus_duration(t.probe_recovery_s),
        down_for=prometheus_duration(t.down_for_s),
        disk_free_percent=number(t.disk_free_percent),
        certificate_renew_before_days=t.certificate_renew_before_days,
        certificate_renew_before_s=t.certificate_renew_before_days * 86400,
        certificate_for=prometheus_duration(t.certificate_for_s),
        watched_units_regex=unit_regex(t.watched_units),
        gateway_audit_stale=prometheus_duration(t.gateway_audit_max_age_s),
        gateway_audit_stale_s=t.gateway_audit_max_age_s,
        queue_for=prometheus_duration(t.queue_for_s),
        context_full_percent=number(t.context_full_percent),
        context_limits=context_limits(t),
        backend_out_for=prometheus_duration(t.backend_out_for_s),
        backends_min=t.backends_min,
        balancer_proxy=t.balancer_proxy,
    )


def context_limits(thresholds: AlertThresholds) -> list[tuple[str, int]]:
    """(backend, tokens): the longest sequence a chat may reach in its slot before the context alert fires."""
    share = thresholds.context_full_percent / 100
    return [(instance, int(tokens * share)) for instance, tokens in thresholds.slot_context_tokens]

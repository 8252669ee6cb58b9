"""Alerts about how chats feel: time to first token and decode speed, as the latency probe measures them.

Series: the probe on each frontend, job="probe", path="gateway" (through the gateway) or "backend" (the model
server over mTLS).
"""

from __future__ import annotations

from roles.monitor.alerts.model import (
    DEPLOY,
    INSTANCE,
    AlertGroup,
    AlertRule,
    AlertThresholds,
    label,
    number,
    prometheus_duration,
    prose,
    value_as,
)

# The TTFT p99 window never drops below this: at one probe a minute it still holds ~10 probe rounds (a p99 of
# fewer is just the slowest probe), and it matches the default for: so one slow probe cannot fire alone.
TTFT_MIN_WINDOW_S = 600


def ttft_window_s(thresholds: AlertThresholds) -> int:
    return max(thresholds.latency_for_s, TTFT_MIN_WINDOW_S)


def group(t: AlertThresholds) -> AlertGroup:
    latency_for = prometheus_duration(t.latency_for_s)
    window = prometheus_duration(ttft_window_s(t))
    floor = number(t.tokens_per_second_floor)
    rules = (
        AlertRule(
            name="ClawlanProbeTtftHigh",
            expr=(
                "histogram_quantile(\n"
                f'  0.99, rate(clawlan_probe_time_to_first_token_seconds_bucket{{job="probe"}}[{window}])\n'
                f") > {number(t.ttft_p99_s)}"
            ),
            for_s=t.latency_for_s,
            severity="warning",
            summary=prose(f"""
                Time to first token p99 {value_as("%.2f")} s via the {label("path")} path
                probed from {INSTANCE},
                above {number(t.ttft_p99_s)} s for {latency_for}
            """),
            description=prose(f"""
                Chats start slowly. If only the gateway path is slow, check `systemctl status clawlan-gateway` and
                `journalctl -u clawlan-gateway -n 100` on {INSTANCE}. If the backend path is slow too, the
                model server is queueing or prefilling: read `journalctl -u clawlan-model-server -n 100` on the backend
                (long prompts, many users at once) and look for ClawlanMemoryHigh or ClawlanSwapGrowing there. If it
                stays slow, lower `model_server_context_tokens` or choose a smaller model in the inventory and rerun
                {DEPLOY}.
            """),
            why=prose(f"""
                p99 time to first token per frontend and path. The probe adds one observation a round, so any
                window's p99 is about its slowest probe; the window is the larger of 10m and the for: ({window} here).
                With window = for:, one slow probe leaves the window before for: elapses: only slowness that keeps
                coming back alerts. Keep the threshold on a bucket edge of the probe's histogram (0.5, 0.7, 1, 2,
                5 s...): histogram_quantile interpolates within a bucket, so probes just under an off-edge threshold
                could alert.
            """),
            tuned_by=("monitor_alert_ttft_p99_s", "monitor_alert_latency_for_s"),
        ),
        AlertRule(
            name="ClawlanTokensPerSecondLow",
            expr=f'clawlan_probe_tokens_per_second{{job="probe", path="backend"}} < {floor}',
            for_s=t.latency_for_s,
            severity="warning",
            summary=prose(f"""
                The backend decodes {value_as("%.1f")} tokens/s as probed from {INSTANCE},
                below {floor} for {latency_for}
            """),
            description=prose(f"""
                Answers stream slowly. On the backend look for what takes the model server's cores or memory: `top`
                (other busy processes), `vmstat 5` (swapping: si and so), CPU clock and heat (`grep MHz /proc/cpuinfo`,
                `sensors`), and `journalctl -u clawlan-model-server -n 100`. `model_server_threads` should match the
                physical cores; after changing the inventory rerun {DEPLOY}.
            """),
            why=prose("""
                Decode speed of the last successful probe, backend path only: through the gateway chunks may be
                coalesced, so its tokens/s says little. The latency for: keeps one slow probe (a user's long prompt)
                quiet.
            """),
            tuned_by=("monitor_alert_tokens_per_second_floor", "monitor_alert_latency_for_s"),
        ),
    )
    return AlertGroup("latency", "How chats feel: first token and decode speed", rules)

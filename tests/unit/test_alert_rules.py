"""The alert rules (roles/monitor/alerts), written with the inventory's thresholds, checked and unit-tested by promtool.

Every alert has a case where it fires (labels and expanded annotations compared whole) and one where it stays quiet:
just on the good side of its threshold, or bad for less than its for:. Inputs derive from the thresholds, so a
changed default moves the inputs with it. promtool's test files are written as JSON, which is YAML too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from prometheus_client.utils import floatToGoString

from roles.common.names import HostSpec
from roles.gateway.config import AUDIT_MAX_AGE_S
from roles.inventory.schema import SETTINGS
from roles.model_server.decode_floors import DECODE_FLOORS, RADV_CLASS
from roles.monitor.alerts import CAUSES, EFFECTS, WATCHDOG, AlertRule, AlertThresholds, alert_groups
from roles.monitor.alerts.latency import ttft_window_s
from roles.monitor.alerts.model import gib_to_bytes, number, prometheus_duration
from roles.monitor.programs.collector import TTFT_BUCKETS
from roles.monitor.prometheus import alert_thresholds
from roles.monitor.rules import render_rules
from roles.monitor.settings import MonitorSettings, with_alert_floor
from roles.mtls.config import BALANCER_PROXY
from roles.pki.settings import PkiSettings
from roles.site.site import WATCHED_UNITS
from tests.support.alert_rules import rules_document
from tests.support.promtool import run_promtool

HOSTS = [
    HostSpec("lab-front", "10.0.0.10", "frontend", 16, 4),
    HostSpec("lab-back", "10.0.0.20", "backend", 64, 16),
]
FRONT, BACK = HOSTS[0].name, HOSTS[1].name
DEPLOY = "`pyinfra inventory/site.py deploys/full.py`"
GIB = 2**30
MIB = 2**20
STEP_S = 60  # promtool's input interval and rule evaluation interval: one sample and one evaluation a minute
# for: of the rules whose duration is no inventory setting
FIXED_FOR_S = {
    "ClawlanMemoryAvailableLow": 60,
    "ClawlanPacketLoss": 300,
    "ClawlanTcpRetransmits": 300,
    "ClawlanDiskFilling": 600,
    "ClawlanGatewayAuditCritical": 600,
    "ClawlanGatewayAuditFailing": 600,
    "ClawlanModelServerContextNearFull": 0,
    "ClawlanSilenceActive": 0,
    "ClawlanGpuMemoryHigh": 300,
    "ClawlanGpuHot": 300,
}
SLOT_CONTEXT = 32768
REFERENCE_DECODE_TARGET = DECODE_FLOORS[RADV_CLASS].tokens_per_second


def thresholds(**monitor_settings) -> AlertThresholds:
    """Thresholds as the deploy builds them from the inventory (here: the defaults on the reference box's device
    class, plus any given setting)."""
    return alert_thresholds(
        with_alert_floor(MonitorSettings(**monitor_settings), REFERENCE_DECODE_TARGET),
        PkiSettings().renew_before_days, AUDIT_MAX_AGE_S,
        ((BACK, SLOT_CONTEXT),), BALANCER_PROXY, WATCHED_UNITS,
    )  # fmt: skip


DEFAULTS = thresholds()
ALERTS = tuple(r.name for group in alert_groups(DEFAULTS) for r in group.rules if r.name != WATCHDOG)


# --- What promtool is given and expects -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Input series from time 0, the evaluation time, and the alerts expected firing then (none: quiet)."""

    series: dict[str, str]  # series selector -> promtool's values notation, one sample per STEP_S
    eval_s: int
    alerts: list[dict] = field(default_factory=list)  # exp_alerts: exp_labels and exp_annotations


def selector(metric: str, /, **labels: str) -> str:
    return metric + "{" + ",".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}"


def samples(eval_s: int) -> int:
    """Sample count reaching past the evaluation time (a series that ends goes stale)."""
    return eval_s // STEP_S + 5


def constant(value: float, eval_s: int) -> str:
    return f"{value!r}x{samples(eval_s)}"


def counter(per_minute: float, eval_s: int, start: float = 0) -> str:
    """A series that grows by ``per_minute`` each sample (negative: shrinks)."""
    sign = "+" if per_minute >= 0 else "-"
    return f"{start!r}{sign}{abs(per_minute)!r}x{samples(eval_s)}"


def alert(annotations: tuple[str, str], /, **labels: str) -> dict:
    summary, description = annotations
    return {"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}


def firing_eval_s(alertname: str, t: AlertThresholds) -> int:
    """Well past the for: (rates need a minute of samples first)."""
    return for_s(alertname, t) + 300


def for_s(alertname: str, t: AlertThresholds) -> int:
    settings = {
        "ClawlanMemoryHigh": t.memory_for_s,
        "ClawlanSwapGrowing": t.swap_growth_for_s,
        "ClawlanProbeTtftHigh": t.latency_for_s,
        "ClawlanTokensPerSecondLow": t.latency_for_s,
        "ClawlanProbeFailing": t.probe_failing_for_s,
        "ClawlanExporterDown": t.down_for_s,
        "ClawlanUnitDown": t.down_for_s,
        "ClawlanModelServerNotReady": t.down_for_s,
        "ClawlanModelServerQueueing": t.queue_for_s,
        "ClawlanBackendOutOfPool": t.backend_out_for_s,
        "ClawlanBackendsBelowMinimum": t.backend_out_for_s,
        "ClawlanBalancerQueueing": t.queue_for_s,
        "ClawlanCertificateExpiring": t.certificate_for_s,
        "ClawlanRevocationListExpiring": t.certificate_for_s,
    }
    return settings[alertname] if alertname in settings else FIXED_FOR_S[alertname]


def before_for_s(alertname: str, t: AlertThresholds) -> int:
    """An evaluation time a minute short of the for: of a condition true from the first sample."""
    assert for_s(alertname, t) >= 2 * STEP_S, f"{alertname}: a for: under 2m leaves no room to stay pending"
    return for_s(alertname, t) - STEP_S


# --- Prometheus' template functions, for the values expected in summaries -----------------------------------------


def humanize1024(value: float) -> str:
    if abs(value) <= 1:
        return f"{value:.4g}"
    prefix = ""
    for unit in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(value) < 1024:
            break
        prefix, value = unit, value / 1024
    return f"{value:.4g}{prefix}"


def humanize_duration(seconds: int) -> str:
    assert seconds >= 60, "only the whole-minute formats are mirrored here"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


# --- Expected annotations ------------------------------------------------------------------------------------------
# Most are the rule's own text with its labels and value filled in as Prometheus does: promtool then proves the
# template expands, and that the labels and the value land where the text says. The rules whose text branches on a
# label or the value are spelled out word for word below, one function each, as the operator reads them.

_ACTION = re.compile(r"\{\{ (.*?) \}\}")


def rule(t: AlertThresholds, alertname: str) -> AlertRule:
    return next(r for group in alert_groups(t) for r in group.rules if r.name == alertname)


def expand(text: str, value: float, labels: dict[str, str]) -> str:
    """Prometheus' expansion of the template actions our simple annotations use."""

    def action(match: re.Match) -> str:
        words = match.group(1)
        if words.startswith("$labels."):
            return labels[words.removeprefix("$labels.")]
        if words == "$value":
            return number(value)
        if printf := re.fullmatch(r'printf "%\.(\d)f" \$value', words):
            return f"{value:.{printf.group(1)}f}"
        if words == "$value | humanize1024":
            return humanize1024(value)
        raise AssertionError(f"{{{{ {words} }}}}: a branch or function this test does not expand: spell it out")

    return _ACTION.sub(action, text)


def fired(t: AlertThresholds, alertname: str, value: float, labels: dict[str, str]) -> dict:
    """The alert as promtool should see it: ``labels`` plus the rule's severity, its annotations expanded."""
    r = rule(t, alertname)
    annotations = expand(r.summary, value, labels), expand(r.description, value, labels)
    return alert(annotations, **(labels | {"severity": r.severity}))


def memory_high_text(t: AlertThresholds, instance: str, used: float) -> tuple[str, str]:
    return (
        f"Memory {used:.1f} % in use on {instance}, above {number(t.memory_used_percent)} % for "
        f"{prometheus_duration(t.memory_for_s)}",
        f"Find what holds it: on {instance} run `ps -eo pid,rss,cmd --sort=-rss | head` and `systemd-cgtop -m`. On "
        "the backend the model server should be the bulk (weights and context); if it grew, lower "
        "`model_server_context_tokens` or `model_server_prompt_cache_mib` in the inventory (or choose a smaller "
        f"model) and rerun {DEPLOY}. Stop anything that does not belong on the appliance.",
    )


def probe_failing_text(t: AlertThresholds, instance: str, path: str) -> tuple[str, str]:
    if path == "backend":
        advice = (
            "The model server does not answer over mTLS: on the backend run `systemctl status clawlan-model-server "
            "nginx` and `journalctl -u clawlan-model-server -n 100`."
        )
    else:
        advice = (
            f"The gateway does not answer: on {instance} run `systemctl status clawlan-gateway` and "
            "`journalctl -u clawlan-gateway -n 100`; if the backend path fails too, start with the backend."
        )
    return (
        f"The probe on {instance} gets no answer through the {path} path for "
        f"{prometheus_duration(t.probe_failing_for_s)}",
        f"{advice} `journalctl -u clawlan-probe -n 50` on {instance} gives the probe's error (timeout, connection, "
        f"http_NNN). Rerun {DEPLOY} to restore units and configuration.",
    )


def exporter_down_text(t: AlertThresholds, instance: str, job: str) -> tuple[str, str]:
    check = {
        "node": f"Check `systemctl status prometheus-node-exporter` on {instance}",
        "probe": f"Check `systemctl status clawlan-probe` and `journalctl -u clawlan-probe -n 50` on {instance}",
        "prometheus": f"Check `systemctl status prometheus` on {instance}",
    }[job]
    return (
        f"Prometheus cannot scrape the {job} target on {instance} for {prometheus_duration(t.down_for_s)}",
        f"{check}. If it runs, the host or the network is down, or an IP filter blocks the monitor: Prometheus' "
        f"Targets page shows the scrape error. Rerun {DEPLOY} to restore units and filters. Alerts that read this "
        "target are blind meanwhile.",
    )


def certificate_text(t: AlertThresholds, instance: str, file: str, left_s: int) -> tuple[str, str]:
    when = f"expires in {humanize_duration(left_s)}" if left_s >= 0 else "has expired"
    return (
        f"Certificate {file} on {instance} {when}",
        f"A deploy reissues certificates that expire within {t.certificate_renew_before_days} days, so this one was "
        "missed: run `pyinfra inventory/site.py deploys/pki.py` (or deploys/full.py), then check the new date with "
        f"`openssl x509 -noout -enddate -in {file}` on {instance}. At expiry mTLS between the boxes fails and the "
        "backend stops answering.",
    )


def revocation_text(instance: str, left_s: int) -> tuple[str, str]:
    when = f"runs out in {humanize_duration(left_s)}" if left_s >= 0 else "has run out"
    return (
        f"The revocation list on {instance} {when}",
        "A deploy signs the site CA's revocation list anew once half of its life has passed: run "
        f"{DEPLOY}. When it runs out, the backend's nginx refuses every client (chats fail) until a deploy "
        "installs a new one.",
    )


def revocation_list(t: AlertThresholds, left_at_eval_s: int, *, fires: bool) -> Case:
    eval_s = firing_eval_s("ClawlanRevocationListExpiring", t)
    labels = {"job": "node", "instance": BACK, "file": "/etc/clawlan/pki/crl.pem", "list": "1"}
    series = {
        selector("clawlan_revocation_list_next_update_timestamp_seconds", **labels): constant(
            eval_s + left_at_eval_s, eval_s
        )
    }
    alerts = [alert(revocation_text(BACK, left_at_eval_s), severity="warning", **labels)] if fires else []
    return Case(series, eval_s, alerts)


def silences(t: AlertThresholds, count: int, eval_s: int, *, fires: bool) -> Case:
    labels = {"job": "alertmanager", "instance": FRONT, "state": "active"}
    series = {selector("alertmanager_silences", **labels): constant(count, eval_s)}
    alerts = [fired(t, "ClawlanSilenceActive", count, labels)] if fires else []
    return Case(series, eval_s, alerts)


# --- Inputs per alert --------------------------------------------------------------------------------------------


def memory(t: AlertThresholds, used_percent: float, eval_s: int, *, fires: bool) -> Case:
    total = 64 * GIB
    available = total * (100 - used_percent) / 100
    node = {"job": "node", "instance": BACK}
    series = {
        selector("node_memory_MemTotal_bytes", **node): constant(total, eval_s),
        selector("node_memory_MemAvailable_bytes", **node): constant(available, eval_s),
    }
    alerts = [alert(memory_high_text(t, BACK, used_percent), severity="warning", **node)] if fires else []
    return Case(series, eval_s, alerts)


def memory_available(t: AlertThresholds, available: float, eval_s: int, *, fires: bool) -> Case:
    node = {"job": "node", "instance": BACK}
    series = {selector("node_memory_MemAvailable_bytes", **node): constant(available, eval_s)}
    alerts = [fired(t, "ClawlanMemoryAvailableLow", available, node)] if fires else []
    return Case(series, eval_s, alerts)


def swap(t: AlertThresholds, mib_per_minute: float, eval_s: int, *, fires: bool) -> Case:
    """Swap total 4 GiB, all free at time 0, then ``mib_per_minute`` more in use each minute."""
    node = {"job": "node", "instance": BACK}
    series = {
        selector("node_memory_SwapTotal_bytes", **node): constant(4 * GIB, eval_s),
        selector("node_memory_SwapFree_bytes", **node): counter(-mib_per_minute * MIB, eval_s, start=4 * GIB),
    }
    used = mib_per_minute * MIB * eval_s / STEP_S
    alerts = [fired(t, "ClawlanSwapGrowing", used, node)] if fires else []
    return Case(series, eval_s, alerts)


def packet_loss(t: AlertThresholds, percent: float, packets_per_s: float, *, fires: bool) -> Case:
    """Packets both ways at ``packets_per_s`` each; drops on receive, ``percent`` of all packets."""
    eval_s = firing_eval_s("ClawlanPacketLoss", t)
    link = {"job": "node", "instance": BACK, "device": "eth0"}
    per_minute = packets_per_s * 60
    series = {
        selector("node_network_receive_packets_total", **link): counter(per_minute, eval_s),
        selector("node_network_transmit_packets_total", **link): counter(per_minute, eval_s),
        selector("node_network_receive_drop_total", **link): counter(2 * per_minute * percent / 100, eval_s),
        selector("node_network_transmit_drop_total", **link): counter(0, eval_s),
    }
    alerts = [fired(t, "ClawlanPacketLoss", percent, link)] if fires else []
    return Case(series, eval_s, alerts)


def retransmits(t: AlertThresholds, percent: float, *, fires: bool) -> Case:
    eval_s = firing_eval_s("ClawlanTcpRetransmits", t)
    node = {"job": "node", "instance": BACK}
    out_per_minute = 100 * 60
    series = {
        selector("node_netstat_Tcp_OutSegs", **node): counter(out_per_minute, eval_s),
        selector("node_netstat_Tcp_RetransSegs", **node): counter(out_per_minute * percent / 100, eval_s),
    }
    alerts = [fired(t, "ClawlanTcpRetransmits", percent, node)] if fires else []
    return Case(series, eval_s, alerts)


def ttft(t: AlertThresholds, *, fires: bool) -> Case:
    """One probe a minute, each landing in the probe's bucket just above the threshold (fires) or at it (quiet).

    Every probe in one bucket: histogram_quantile puts the p99 99 % of the way through that bucket.
    """
    edges = [edge for edge in TTFT_BUCKETS if edge != float("inf")]
    at_or_below = [edge for edge in edges if edge <= t.ttft_p99_s]
    above = [edge for edge in edges if edge > t.ttft_p99_s]
    assert at_or_below and above, f"ttft_p99_s {t.ttft_p99_s} lies outside the probe's buckets {edges}"
    observation = above[0] if fires else at_or_below[-1]
    lower = max((edge for edge in edges if edge < observation), default=0.0)
    p99 = lower + (observation - lower) * 0.99
    eval_s = firing_eval_s("ClawlanProbeTtftHigh", t)
    probe = {"job": "probe", "instance": FRONT, "path": "backend"}
    series = {
        selector("clawlan_probe_time_to_first_token_seconds_bucket", le=floatToGoString(edge), **probe): counter(
            1 if observation <= edge else 0, eval_s
        )
        for edge in TTFT_BUCKETS
    }
    alerts = [fired(t, "ClawlanProbeTtftHigh", p99, probe)] if fires else []
    return Case(series, eval_s, alerts)


def tokens(t: AlertThresholds, rate: float, path: str, *, fires: bool) -> Case:
    eval_s = firing_eval_s("ClawlanTokensPerSecondLow", t)
    probe = {"job": "probe", "instance": FRONT, "path": path}
    series = {selector("clawlan_probe_tokens_per_second", **probe): constant(rate, eval_s)}
    alerts = [fired(t, "ClawlanTokensPerSecondLow", rate, probe)] if fires else []
    return Case(series, eval_s, alerts)


def probe_failing(t: AlertThresholds, path: str, eval_s: int, *, fires: bool) -> Case:
    probe = {"job": "probe", "instance": FRONT, "path": path}
    series = {selector("clawlan_probe_success", **probe): constant(0, eval_s)}
    alerts = [alert(probe_failing_text(t, FRONT, path), severity="critical", **probe)] if fires else []
    return Case(series, eval_s, alerts)


def exporter_down(t: AlertThresholds, job: str, instance: str, eval_s: int, *, fires: bool) -> Case:
    target = {"job": job, "instance": instance}
    series = {selector("up", **target): constant(0, eval_s)}
    alerts = [alert(exporter_down_text(t, instance, job), severity="critical", **target)] if fires else []
    return Case(series, eval_s, alerts)


def not_ready(t: AlertThresholds, eval_s: int, *, fires: bool) -> Case:
    target = {"job": "model_server", "instance": BACK}
    series = {selector("up", **target): constant(0, eval_s)}
    alerts = [fired(t, "ClawlanModelServerNotReady", 0, target)] if fires else []
    return Case(series, eval_s, alerts)


def queueing(t: AlertThresholds, waiting: float, eval_s: int, *, fires: bool) -> Case:
    target = {"job": "model_server", "instance": BACK}
    series = {selector("llamacpp:requests_deferred", **target): constant(waiting, eval_s)}
    alerts = [fired(t, "ClawlanModelServerQueueing", waiting, target)] if fires else []
    return Case(series, eval_s, alerts)


def context_full(t: AlertThresholds, longest: int, *, grew_minutes_ago: int, fires: bool) -> Case:
    """The longest sequence so far reaches ``longest`` tokens ``grew_minutes_ago`` before the evaluation."""
    eval_s = 2 * 3600
    grew_at = eval_s // STEP_S - grew_minutes_ago
    before = 1000.0
    values = f"{before!r}x{grew_at - 1} {float(longest)!r}x{samples(eval_s) - grew_at}"
    target = {"job": "model_server", "instance": BACK}
    series = {selector("llamacpp:n_tokens_max", **target): values}
    alerts = [fired(t, "ClawlanModelServerContextNearFull", longest, target)] if fires else []
    return Case(series, eval_s, alerts)


GPU_CHIP = "0000:c5:00_0"


def gpu_memory(t: AlertThresholds, used_percent: float, eval_s: int, *, fires: bool) -> Case:
    card = {"job": "node", "instance": BACK, "card": "card1"}
    size = 96 * GIB
    series = {
        selector("node_drm_memory_gtt_size_bytes", **card): constant(size, eval_s),
        selector("node_drm_memory_gtt_used_bytes", **card): constant(size * used_percent / 100, eval_s),
    }
    alerts = [fired(t, "ClawlanGpuMemoryHigh", used_percent, card)] if fires else []
    return Case(series, eval_s, alerts)


def gpu_hot(t: AlertThresholds, celsius: float, eval_s: int, *, chip_name: str = "amdgpu", fires: bool) -> Case:
    sensor = {"job": "node", "instance": BACK, "chip": GPU_CHIP, "sensor": "temp1"}
    series = {
        selector("node_hwmon_temp_celsius", **sensor): constant(celsius, eval_s),
        selector("node_hwmon_chip_names", job="node", instance=BACK, chip=GPU_CHIP, chip_name=chip_name): constant(
            1, eval_s
        ),
    }
    alerts = [fired(t, "ClawlanGpuHot", celsius, sensor | {"chip_name": chip_name})] if fires else []
    return Case(series, eval_s, alerts)


BACK2 = "lab-back2"


def pool(t: AlertThresholds, up: dict[str, int], eval_s: int) -> dict[str, str]:
    """HAProxy's status series of the frontend's pool: one per backend and state, 1 for the state it is in."""
    return {
        selector("haproxy_server_status", job="balancer", instance=FRONT, proxy=t.balancer_proxy, server=server,
                 state=state): constant(value, eval_s)
        for server, is_up in up.items()
        for state, value in (("UP", is_up), ("DOWN", 1 - is_up))
    }  # fmt: skip


def out_of_pool(t: AlertThresholds, eval_s: int, *, fires: bool) -> Case:
    labels = {"job": "balancer", "instance": FRONT, "proxy": t.balancer_proxy, "server": BACK2, "state": "UP"}
    alerts = [fired(t, "ClawlanBackendOutOfPool", 0, labels)] if fires else []
    return Case(pool(t, {BACK: 1, BACK2: 0}, eval_s), eval_s, alerts)


def below_minimum(t: AlertThresholds, healthy: int, eval_s: int, *, fires: bool) -> Case:
    """Two backends in the pool, ``healthy`` of them up."""
    series = pool(t, {BACK: int(healthy >= 1), BACK2: int(healthy >= 2)}, eval_s)
    alerts = [fired(t, "ClawlanBackendsBelowMinimum", healthy, {"instance": FRONT})] if fires else []
    return Case(series, eval_s, alerts)


def balancer_queueing(t: AlertThresholds, waiting: float, eval_s: int, *, fires: bool) -> Case:
    labels = {"job": "balancer", "instance": FRONT, "proxy": t.balancer_proxy}
    series = {selector("haproxy_backend_current_queue", **labels): constant(waiting, eval_s)}
    alerts = [fired(t, "ClawlanBalancerQueueing", waiting, labels)] if fires else []
    return Case(series, eval_s, alerts)


def context_limit(t: AlertThresholds) -> int:
    return int(SLOT_CONTEXT * t.context_full_percent / 100)


def exporter_down_model_server(eval_s: int) -> Case:
    """The model server's scrape failing is ClawlanModelServerNotReady's to report, not the exporter alert's."""
    return Case({selector("up", job="model_server", instance=BACK): constant(0, eval_s)}, eval_s)


def unit_down(t: AlertThresholds, unit: str, eval_s: int, *, fires: bool) -> Case:
    labels = {"job": "node", "instance": BACK, "name": unit, "state": "active", "type": "simple"}
    series = {selector("node_systemd_unit_state", **labels): constant(0, eval_s)}
    alerts = [fired(t, "ClawlanUnitDown", 0, labels)] if fires else []
    return Case(series, eval_s, alerts)


def disk(t: AlertThresholds, free_percent: float, *, fstype: str = "ext4", readonly: int = 0, fires: bool) -> Case:
    eval_s = firing_eval_s("ClawlanDiskFilling", t)
    device, mountpoint = ("/dev/sda2", "/") if fstype != "tmpfs" else ("tmpfs", "/run")
    fs = {"job": "node", "instance": BACK, "device": device, "fstype": fstype, "mountpoint": mountpoint}
    size = 100 * GIB
    series = {
        selector("node_filesystem_size_bytes", **fs): constant(size, eval_s),
        selector("node_filesystem_avail_bytes", **fs): constant(size * free_percent / 100, eval_s),
        selector("node_filesystem_readonly", **fs): constant(readonly, eval_s),
    }
    alerts = [fired(t, "ClawlanDiskFilling", free_percent, fs)] if fires else []
    return Case(series, eval_s, alerts)


def certificate(t: AlertThresholds, left_at_eval_s: int, *, fires: bool) -> Case:
    """A certificate with ``left_at_eval_s`` seconds of validity left at the evaluation time (time 0 = 1970)."""
    eval_s = firing_eval_s("ClawlanCertificateExpiring", t)
    labels = {"job": "node", "instance": BACK, "file": "/etc/clawlan/pki/host.crt"}
    series = {
        selector("clawlan_certificate_expiry_timestamp_seconds", **labels): constant(eval_s + left_at_eval_s, eval_s)
    }
    text = certificate_text(t, BACK, labels["file"], left_at_eval_s)
    alerts = [alert(text, severity="warning", **labels)] if fires else []
    return Case(series, eval_s, alerts)


def audit_critical(t: AlertThresholds, count: int, *, fires: bool) -> Case:
    eval_s = firing_eval_s("ClawlanGatewayAuditCritical", t)
    labels = {"job": "node", "instance": FRONT, "severity": "critical"}
    series = {selector("clawlan_gateway_audit_findings", **labels): constant(count, eval_s)}
    # The alert's own severity label replaces the metric's, which says the same.
    alerts = [fired(t, "ClawlanGatewayAuditCritical", count, labels)] if fires else []
    return Case(series, eval_s, alerts)


def audit_failing(t: AlertThresholds, *, success: int, age_s: int, fires: bool) -> Case:
    """The last audit finished ``age_s`` seconds before the evaluation, with ``success``."""
    eval_s = max(firing_eval_s("ClawlanGatewayAuditFailing", t), age_s + STEP_S)
    labels = {"job": "node", "instance": FRONT}
    series = {
        selector("clawlan_gateway_audit_success", **labels): constant(success, eval_s),
        selector("clawlan_gateway_audit_last_run_timestamp_seconds", **labels): constant(eval_s - age_s, eval_s),
    }
    alerts = [fired(t, "ClawlanGatewayAuditFailing", 0, labels)] if fires else []
    return Case(series, eval_s, alerts)


def renew_before_s(t: AlertThresholds) -> int:
    return t.certificate_renew_before_days * 86400


# Alert name -> a case where it fires: just on the bad side of its threshold, for longer than its for:.
FIRING: dict[str, Callable[[AlertThresholds], Case]] = {
    "ClawlanMemoryHigh": lambda t: memory(
        t, t.memory_used_percent + 0.5, firing_eval_s("ClawlanMemoryHigh", t), fires=True
    ),
    "ClawlanMemoryAvailableLow": lambda t: memory_available(
        t, gib_to_bytes(t.memory_available_floor_gib) - MIB, firing_eval_s("ClawlanMemoryAvailableLow", t), fires=True
    ),
    "ClawlanSwapGrowing": lambda t: swap(t, 1, firing_eval_s("ClawlanSwapGrowing", t), fires=True),
    "ClawlanPacketLoss": lambda t: packet_loss(t, t.packet_loss_percent * 1.1, 100, fires=True),
    "ClawlanTcpRetransmits": lambda t: retransmits(t, t.packet_loss_percent * 1.1, fires=True),
    "ClawlanProbeTtftHigh": lambda t: ttft(t, fires=True),
    "ClawlanTokensPerSecondLow": lambda t: tokens(t, t.tokens_per_second_floor * 0.9, "backend", fires=True),
    "ClawlanProbeFailing": lambda t: probe_failing(t, "backend", firing_eval_s("ClawlanProbeFailing", t), fires=True),
    "ClawlanExporterDown": lambda t: exporter_down(
        t, "node", BACK, firing_eval_s("ClawlanExporterDown", t), fires=True
    ),
    "ClawlanUnitDown": lambda t: unit_down(t, t.watched_units[0], firing_eval_s("ClawlanUnitDown", t), fires=True),
    "ClawlanDiskFilling": lambda t: disk(t, t.disk_free_percent - 0.5, fires=True),
    "ClawlanCertificateExpiring": lambda t: certificate(t, renew_before_s(t) - 3600, fires=True),
    "ClawlanRevocationListExpiring": lambda t: revocation_list(t, renew_before_s(t) - 3600, fires=True),
    "ClawlanGatewayAuditCritical": lambda t: audit_critical(t, 1, fires=True),
    "ClawlanGatewayAuditFailing": lambda t: audit_failing(t, success=0, age_s=0, fires=True),
    "ClawlanModelServerNotReady": lambda t: not_ready(t, firing_eval_s("ClawlanModelServerNotReady", t), fires=True),
    "ClawlanModelServerQueueing": lambda t: queueing(t, 3, firing_eval_s("ClawlanModelServerQueueing", t), fires=True),
    "ClawlanModelServerContextNearFull": lambda t: context_full(
        t, context_limit(t) + 1, grew_minutes_ago=10, fires=True
    ),  # fmt: skip
    "ClawlanBackendOutOfPool": lambda t: out_of_pool(t, firing_eval_s("ClawlanBackendOutOfPool", t), fires=True),
    "ClawlanBackendsBelowMinimum": lambda t: below_minimum(
        t, t.backends_min - 1, firing_eval_s("ClawlanBackendsBelowMinimum", t), fires=True
    ),
    "ClawlanBalancerQueueing": lambda t: balancer_queueing(
        t, 2, firing_eval_s("ClawlanBalancerQueueing", t), fires=True
    ),
    "ClawlanSilenceActive": lambda t: silences(t, 2, firing_eval_s("ClawlanSilenceActive", t), fires=True),
    "ClawlanGpuMemoryHigh": lambda t: gpu_memory(
        t, t.gpu_memory_percent + 0.5, firing_eval_s("ClawlanGpuMemoryHigh", t), fires=True
    ),
    "ClawlanGpuHot": lambda t: gpu_hot(t, t.gpu_temperature_celsius + 1, firing_eval_s("ClawlanGpuHot", t), fires=True),
}

# Alert name -> a case where it stays quiet: just on the good side of its threshold, or bad for less than its for:.
QUIET: dict[str, Callable[[AlertThresholds], Case]] = {
    "ClawlanMemoryHigh": lambda t: memory(
        t, t.memory_used_percent - 0.5, firing_eval_s("ClawlanMemoryHigh", t), fires=False
    ),
    "ClawlanMemoryAvailableLow": lambda t: memory_available(
        t, gib_to_bytes(t.memory_available_floor_gib), firing_eval_s("ClawlanMemoryAvailableLow", t), fires=False
    ),
    # Growing since the first minute, evaluated when the for: is not yet over.
    "ClawlanSwapGrowing": lambda t: swap(t, 1, t.swap_growth_for_s, fires=False),
    "ClawlanPacketLoss": lambda t: packet_loss(t, t.packet_loss_percent * 0.9, 100, fires=False),
    "ClawlanTcpRetransmits": lambda t: retransmits(t, t.packet_loss_percent * 0.9, fires=False),
    "ClawlanProbeTtftHigh": lambda t: ttft(t, fires=False),
    "ClawlanTokensPerSecondLow": lambda t: tokens(t, t.tokens_per_second_floor, "backend", fires=False),
    "ClawlanProbeFailing": lambda t: probe_failing(t, "backend", before_for_s("ClawlanProbeFailing", t), fires=False),
    "ClawlanExporterDown": lambda t: exporter_down(
        t, "node", BACK, before_for_s("ClawlanExporterDown", t), fires=False
    ),
    "ClawlanUnitDown": lambda t: unit_down(t, t.watched_units[0], before_for_s("ClawlanUnitDown", t), fires=False),
    "ClawlanDiskFilling": lambda t: disk(t, t.disk_free_percent + 0.5, fires=False),
    "ClawlanCertificateExpiring": lambda t: certificate(t, renew_before_s(t) + 60, fires=False),
    "ClawlanRevocationListExpiring": lambda t: revocation_list(t, renew_before_s(t) + 60, fires=False),
    "ClawlanGatewayAuditCritical": lambda t: audit_critical(t, 0, fires=False),
    # A report as old as the compliance suite still trusts.
    "ClawlanGatewayAuditFailing": lambda t: audit_failing(t, success=1, age_s=AUDIT_MAX_AGE_S, fires=False),
    "ClawlanModelServerNotReady": lambda t: not_ready(t, before_for_s("ClawlanModelServerNotReady", t), fires=False),
    # Chats queued, but for less than the for:.
    "ClawlanModelServerQueueing": lambda t: queueing(t, 3, t.queue_for_s - STEP_S, fires=False),
    "ClawlanModelServerContextNearFull": lambda t: context_full(
        t, context_limit(t), grew_minutes_ago=10, fires=False
    ),  # fmt: skip
    "ClawlanBackendOutOfPool": lambda t: out_of_pool(t, before_for_s("ClawlanBackendOutOfPool", t), fires=False),
    # Exactly the minimum healthy: enough.
    "ClawlanBackendsBelowMinimum": lambda t: below_minimum(
        t, t.backends_min, firing_eval_s("ClawlanBackendsBelowMinimum", t), fires=False
    ),
    "ClawlanBalancerQueueing": lambda t: balancer_queueing(t, 2, t.queue_for_s - STEP_S, fires=False),
    # Expired and pending silences hide nothing.
    "ClawlanSilenceActive": lambda t: silences(t, 0, firing_eval_s("ClawlanSilenceActive", t), fires=False),
    "ClawlanGpuMemoryHigh": lambda t: gpu_memory(
        t, t.gpu_memory_percent + 5, before_for_s("ClawlanGpuMemoryHigh", t), fires=False
    ),
    "ClawlanGpuHot": lambda t: gpu_hot(t, t.gpu_temperature_celsius, firing_eval_s("ClawlanGpuHot", t), fires=False),
}


def promtool_test(tmp_path: Path, rules: str, alertname: str, case: Case) -> None:
    """Run one promtool rule test; fail with promtool's own report (it prints expected and got alerts)."""
    (tmp_path / "clawlan.rules.yml").write_text(rules)
    test = {
        "rule_files": ["clawlan.rules.yml"],
        "evaluation_interval": f"{STEP_S}s",
        "tests": [
            {
                "interval": f"{STEP_S}s",
                "input_series": [{"series": name, "values": values} for name, values in case.series.items()],
                "alert_rule_test": [
                    {"eval_time": f"{case.eval_s}s", "alertname": alertname, "exp_alerts": case.alerts}
                ],
            }
        ],
    }
    test_file = tmp_path / "clawlan.rules.test.yml"
    test_file.write_text(json.dumps(test, indent=2))
    result = run_promtool("test", "rules", test_file)
    assert result.returncode == 0, f"promtool test rules failed:\n{result.stdout}{result.stderr}"


# --- The tests ----------------------------------------------------------------------------------------------------


def test_rules_pass_promtool_check(tmp_path):
    rules = tmp_path / "clawlan.rules.yml"
    rules.write_text(render_rules(DEFAULTS))
    result = run_promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS) + 1} rules found" in result.stdout  # and the Watchdog


def test_every_alert_has_a_firing_and_a_quiet_case():
    assert set(FIRING) == set(QUIET) == set(ALERTS)


@pytest.mark.parametrize("variant", ["defaults", "lab-like", "two-backends", "no-llama-server"])
def test_the_rules_file_holds_the_rules_data_exactly(variant):
    """Read back by a YAML parser, the file is the data: folded texts come back as the one-line annotations."""
    t = {
        "defaults": DEFAULTS,
        "lab-like": thresholds(alert_memory_used_percent=70.5, alert_latency_for_s=1800, alert_down_for_s=45),
        "two-backends": dataclasses.replace(DEFAULTS, slot_context_tokens=((BACK, 4096), ("lab-back2", 8192))),
        "no-llama-server": dataclasses.replace(DEFAULTS, slot_context_tokens=()),
    }[variant]
    assert yaml.safe_load(render_rules(t)) == rules_document(t)


def test_rules_are_grouped_as_the_reference_reads_them():
    groups = alert_groups(DEFAULTS)
    assert [g.name for g in groups] == ["host", "latency", "availability", "capacity", "security", "meta"]
    names = [r.name for g in groups for r in g.rules]
    assert len(names) == len(set(names)) and names[-1] == WATCHDOG


def test_every_alert_warns_or_is_critical_and_waits_for_its_for_except_the_watchdog():
    for r in (r for g in alert_groups(DEFAULTS) for r in g.rules if r.name != WATCHDOG):
        assert r.severity in ("warning", "critical") and r.for_s is not None, r.name


def test_the_settings_a_rule_names_exist():
    """The reference sends operators to these keys: a renamed setting must not leave a dead name behind."""
    keys = {f"{prefix}_{f.name}" for prefix, cls in SETTINGS.items() for f in dataclasses.fields(cls)}
    for r in (r for g in alert_groups(DEFAULTS) for r in g.rules):
        assert set(r.tuned_by) <= keys, (r.name, set(r.tuned_by) - keys)


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"name": "clawlan memory"}, "CamelCase"),
        ({"severity": "page"}, "severity 'page'"),
        ({"summary": "two  spaces"}, "prose"),
        ({"description": "a line\nbreak"}, "prose"),
        ({"expr": " up == 0"}, "blanks"),
    ],
)
def test_a_malformed_rule_is_refused_when_it_is_made(change, refused):
    fields = {"name": "ClawlanX", "expr": "up == 0", "severity": "warning", "summary": "s", "description": "d",
              "why": "w", "for_s": 60}  # fmt: skip
    with pytest.raises(ValueError, match=refused):
        AlertRule(**(fields | change))


@pytest.mark.parametrize("alertname", ALERTS)
def test_alert_fires_past_its_threshold_and_for(tmp_path, alertname):
    promtool_test(tmp_path, render_rules(DEFAULTS), alertname, FIRING[alertname](DEFAULTS))


@pytest.mark.parametrize("alertname", ALERTS)
def test_alert_stays_quiet_on_the_good_side_or_before_its_for(tmp_path, alertname):
    promtool_test(tmp_path, render_rules(DEFAULTS), alertname, QUIET[alertname](DEFAULTS))


@pytest.mark.parametrize(
    ("alertname", "case"),
    [
        pytest.param(
            "ClawlanSwapGrowing",
            swap(DEFAULTS, 0, firing_eval_s("ClawlanSwapGrowing", DEFAULTS), fires=False),
            id="swap-in-use-but-flat",
        ),
        pytest.param(
            "ClawlanPacketLoss",
            packet_loss(DEFAULTS, 50, 0.4, fires=False),
            id="idle-link-under-one-packet-a-second",
        ),
        pytest.param(
            "ClawlanTokensPerSecondLow",
            tokens(DEFAULTS, DEFAULTS.tokens_per_second_floor / 2, "gateway", fires=False),
            id="gateway-path-is-not-judged",
        ),
        pytest.param(
            "ClawlanUnitDown",
            unit_down(DEFAULTS, "ssh.service", firing_eval_s("ClawlanUnitDown", DEFAULTS), fires=False),
            id="unwatched-unit",
        ),
        pytest.param("ClawlanDiskFilling", disk(DEFAULTS, 1, fstype="tmpfs", fires=False), id="tmpfs"),
        pytest.param("ClawlanDiskFilling", disk(DEFAULTS, 1, readonly=1, fires=False), id="read-only"),
        pytest.param(
            "ClawlanExporterDown",
            exporter_down_model_server(firing_eval_s("ClawlanExporterDown", DEFAULTS)),
            id="model-server-has-its-own-alert",
        ),
        pytest.param(
            "ClawlanModelServerContextNearFull",
            context_full(DEFAULTS, SLOT_CONTEXT, grew_minutes_ago=90, fires=False),
            id="record-older-than-an-hour",
        ),
        pytest.param("ClawlanModelServerQueueing", queueing(DEFAULTS, 0, 600, fires=False), id="nobody-waiting"),
        pytest.param(
            "ClawlanGpuHot",
            gpu_hot(DEFAULTS, 105, firing_eval_s("ClawlanGpuHot", DEFAULTS), chip_name="k10temp", fires=False),
            id="a-hot-cpu-is-not-the-gpu",
        ),
    ],
)
def test_alert_ignores_what_it_does_not_judge(tmp_path, alertname, case):
    promtool_test(tmp_path, render_rules(DEFAULTS), alertname, case)


@pytest.mark.parametrize(
    ("alertname", "case"),
    [
        pytest.param(
            "ClawlanProbeFailing",
            probe_failing(DEFAULTS, "gateway", firing_eval_s("ClawlanProbeFailing", DEFAULTS), fires=True),
            id="probe-failing-gateway",
        ),
        pytest.param(
            "ClawlanExporterDown",
            exporter_down(DEFAULTS, "probe", FRONT, firing_eval_s("ClawlanExporterDown", DEFAULTS), fires=True),
            id="exporter-down-probe",
        ),
        pytest.param(
            "ClawlanExporterDown",
            exporter_down(DEFAULTS, "prometheus", FRONT, firing_eval_s("ClawlanExporterDown", DEFAULTS), fires=True),
            id="exporter-down-prometheus",
        ),
        pytest.param("ClawlanCertificateExpiring", certificate(DEFAULTS, -3600, fires=True), id="certificate-expired"),
        # Succeeded, but long ago: older than the suite trusts for the whole for:.
        pytest.param(
            "ClawlanGatewayAuditFailing",
            audit_failing(DEFAULTS, success=1, age_s=AUDIT_MAX_AGE_S + 900, fires=True),
            id="gateway-audit-stale",
        ),
    ],
)
def test_alert_advice_fits_what_failed(tmp_path, alertname, case):
    """The annotations' if/else branches each expand to their own advice."""
    promtool_test(tmp_path, render_rules(DEFAULTS), alertname, case)


LOWER_MEMORY_PERCENT = 70.0


@pytest.mark.parametrize(("threshold", "fires"), [(LOWER_MEMORY_PERCENT, True), (DEFAULTS.memory_used_percent, False)])
def test_memory_threshold_comes_from_the_inventory(tmp_path, threshold, fires):
    """The same memory use, between 70 % and the default, fires only under an inventory setting of 70 %."""
    used = (LOWER_MEMORY_PERCENT + DEFAULTS.memory_used_percent) / 2
    t = thresholds(alert_memory_used_percent=threshold)
    case = memory(t, used, firing_eval_s("ClawlanMemoryHigh", t), fires=fires)
    promtool_test(tmp_path, render_rules(t), "ClawlanMemoryHigh", case)


@pytest.mark.parametrize(
    ("seconds", "duration"),
    [(0, "0s"), (90, "90s"), (120, "2m"), (300, "5m"), (5400, "90m"), (3600, "1h"), (86400, "1d"), (90000, "25h")],
)
def test_seconds_become_prometheus_durations(seconds, duration):
    assert prometheus_duration(seconds) == duration


def test_memory_floor_gib_becomes_bytes_in_the_rule():
    t = thresholds(alert_memory_available_floor_gib=1.5)
    assert 'node_memory_MemAvailable_bytes{job="node"} < 1610612736\n' in render_rules(t)


def test_unit_regex_escapes_dots_of_the_watched_units():
    text = render_rules(DEFAULTS)
    regex = re.search(r"name=~`([^`]*)`", text).group(1)
    assert regex.split("|") == [unit.replace(".", "\\.") for unit in DEFAULTS.watched_units]


def test_ttft_window_is_never_shorter_than_the_latency_for():
    assert ttft_window_s(thresholds(alert_latency_for_s=60)) == 600
    assert ttft_window_s(thresholds(alert_latency_for_s=1800)) == 1800
    assert "[30m]" in render_rules(thresholds(alert_latency_for_s=1800))


def test_the_watchdog_always_fires_with_no_series_at_all(tmp_path):
    """Its absence downstream is the signal: it must fire on an empty Prometheus too."""
    case = Case(series={}, eval_s=0, alerts=[{"exp_labels": {"severity": "none"}, "exp_annotations": {
        "summary": "The alert pipeline works (this alert always fires)",
        "description": "Nothing to do. If the dead man's switch stops receiving it, Prometheus or Alertmanager on the "
        "monitor host is down, or cannot reach it: no other alert reaches anyone either.",
    }}])  # fmt: skip
    promtool_test(tmp_path, render_rules(DEFAULTS), WATCHDOG, case)


def test_inhibition_names_alerts_that_exist():
    """A renamed alert would silently stop inhibiting (or being inhibited)."""
    assert set(CAUSES) <= set(ALERTS) and set(EFFECTS) <= set(ALERTS) and not set(CAUSES) & set(EFFECTS)


def backend_down_then_back(t: AlertThresholds, back_at_s: int, eval_s: int, *, fires: bool) -> Case:
    """The model server not ready from time 0 until ``back_at_s``."""
    down = back_at_s // STEP_S
    target = {"job": "model_server", "instance": BACK}
    series = {selector("up", **target): f"0x{down - 1} 1x{samples(eval_s) - down}"}
    alerts = [fired(t, "ClawlanModelServerNotReady", 0, target)] if fires else []
    return Case(series, eval_s, alerts)


RECOVERED_AT_S = 1200  # the model server back after 20 minutes down


@pytest.mark.parametrize(
    "eval_s, fires",
    [
        pytest.param(RECOVERED_AT_S - STEP_S, True, id="while it is down"),
        pytest.param(RECOVERED_AT_S + STEP_S, True, id="just after it is back"),
        pytest.param(RECOVERED_AT_S + DEFAULTS.probe_recovery_s - STEP_S, True, id="until the probe can have seen it"),
        pytest.param(RECOVERED_AT_S + DEFAULTS.probe_recovery_s + STEP_S, False, id="after that"),
    ],
)  # fmt: skip
def test_a_cause_keeps_firing_until_the_probe_can_have_seen_its_recovery(tmp_path, eval_s, fires):
    """Alertmanager holds the probe's alerts back only while their cause fires; the probe sees a recovered backend
    a round later. Were the cause to resolve at once, the effect would reach the person just after its resolved
    notice (the faults suite saw it)."""
    case = backend_down_then_back(DEFAULTS, RECOVERED_AT_S, eval_s, fires=fires)
    promtool_test(tmp_path, render_rules(DEFAULTS), "ClawlanModelServerNotReady", case)


def test_every_cause_of_an_inhibition_keeps_firing_for_the_probes_recovery():
    text = render_rules(DEFAULTS)
    for cause in CAUSES:
        rule = text.split(f"- alert: {cause}\n", 1)[1].split("- alert:", 1)[0]
        assert f"keep_firing_for: {prometheus_duration(DEFAULTS.probe_recovery_s)}\n" in rule, cause

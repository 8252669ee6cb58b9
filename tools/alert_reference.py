"""The alert reference (docs/alerts.md) and the alert index in docs/roles.md, written from the alert rules' data.

The same data writes the rules file Prometheus loads (roles/monitor/rules.py), so the page says what fires and what
the notification asks of the operator, word for word. Values are the defaults, for a site whose backend is named
and runs as in inventory/site.py (on the reference box's GPU); the keys under "Tuned by" move them.
"""

from __future__ import annotations

import re
from pathlib import Path

from roles.gateway.config import AUDIT_MAX_AGE_S
from roles.model_server.decode_floors import decode_floor
from roles.model_server.settings import VULKAN, ModelServerSettings
from roles.monitor.alerts import CAUSES, EFFECTS, AlertRule, alert_groups
from roles.monitor.alerts.model import AlertThresholds, prometheus_duration
from roles.monitor.prometheus import alert_thresholds
from roles.monitor.rules import GROUP_PREFIX
from roles.monitor.settings import MonitorSettings, with_alert_floor
from roles.mtls.config import BALANCER_PROXY
from roles.pki.settings import PkiSettings
from roles.site.site import WATCHED_UNITS

EXAMPLE_BACKEND = "claw-back"
PAGE = "docs/alerts.md"

# Go template actions as a person reads them in a reference: placeholders, and branches as "(when ...)".
_READABLE = (
    (re.compile(r"\{\{ \$labels\.(\w+) \}\}"), r"‹\1›"),
    (re.compile(r'\{\{ printf "%\.\d+f" \$value \}\}'), "‹value›"),
    (re.compile(r"\{\{ \$value \| humanize1024 \}\}"), "‹value›"),
    (re.compile(r"\{\{ humanizeDuration \$value \}\}"), "‹time left›"),
    (re.compile(r"\{\{ \$value \}\}"), "‹value›"),
    (re.compile(r'\{\{-? ?(?:else )?if eq \$labels\.(\w+) "(\w+)" \}\}'), r" (\1 = \2:) "),
    (re.compile(r"\{\{-? ?if lt \$value 0\.0 \}\}"), "(when past:) "),
    (re.compile(r"\{\{-? ?else \}\}"), " (otherwise:) "),
    (re.compile(r"\{\{-? ?end \}\}"), ""),
)


def reference_thresholds() -> AlertThresholds:
    backend = ModelServerSettings(compute=VULKAN)  # as in inventory/site.py: the reference box's GPU (radv)
    monitor = with_alert_floor(MonitorSettings(), decode_floor((backend,)))
    slot_context = ((EXAMPLE_BACKEND, backend.context_tokens),)
    return alert_thresholds(
        monitor, PkiSettings().renew_before_days, AUDIT_MAX_AGE_S, slot_context, BALANCER_PROXY, WATCHED_UNITS
    )


def readable(text: str) -> str:
    for pattern, replacement in _READABLE:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _after(rule: AlertRule) -> str:
    return "at once" if not rule.for_s else prometheus_duration(rule.for_s)


def _keys(rule: AlertRule) -> str:
    return ", ".join(f"`{key}`" for key in rule.tuned_by) or "—"


def index_table() -> str:
    """The alert index under role monitor (docs/roles.md): one line per alert, the details on the reference page,
    linked from beside it (a unit test follows every link between the documents)."""
    lines = ["| alert | group | severity | fires after | tuned by |", "| --- | --- | --- | --- | --- |"]
    for group in alert_groups(reference_thresholds()):
        for rule in group.rules:
            link = f"{Path(PAGE).name}#{rule.name.lower()}"
            lines.append(f"| [{rule.name}]({link}) | {group.name} | {rule.severity} | {_after(rule)} | {_keys(rule)} |")
    return "\n".join(lines)


def _rule_section(rule: AlertRule) -> list[str]:
    lines = [f"### {rule.name}", "", rule.why, ""]
    lines += [f"- **Severity**: {rule.severity}; **fires after**: {_after(rule)}", f"- **Tuned by**: {_keys(rule)}"]
    if rule.keep_firing_for_s:
        lines.append(
            f"- **Keeps firing** {prometheus_duration(rule.keep_firing_for_s)} after it clears: while it fires,"
            f" Alertmanager holds back {', '.join(EFFECTS)} (its effects), until the probe has seen the recovery."
        )
    elif rule.name in EFFECTS:
        lines.append(f"- **Held back** while {', '.join(CAUSES)} fires: the person hears the cause instead.")
    lines += [
        f"- **Notification**: {readable(rule.summary)}",
        f"- **What to do**: {readable(rule.description)}",
        "",
        "```promql",
        rule.expr,
        "```",
        "",
    ]
    return lines


def page() -> str:
    groups = alert_groups(reference_thresholds())
    lines = [
        "# Alert reference",
        "",
        "<!-- Written by `make docs` (tools/docs.py) from roles/monitor/alerts/: edit the rules there. -->",
        "",
        "Every alert the monitor's Prometheus evaluates, grouped as in its rules file"
        " (`/etc/clawlan/prometheus/clawlan.rules.yml`, one group `clawlan-<group>` each). Values are the defaults;"
        " the inventory keys under *Tuned by* change them. A notification's text is the alert's *Notification*"
        " (summary) and *What to do* (description); ‹name› is filled in from the alert's labels.",
        "",
    ]
    for group in groups:
        lines.append(f"- [{group.name}](#{group.name}): {group.title}")
    lines.append("")
    for group in groups:
        lines += [f"## {group.name}", "", f"{group.title}. Prometheus group `{GROUP_PREFIX}{group.name}`.", ""]
        for rule in group.rules:
            lines += _rule_section(rule)
    return "\n".join(lines).rstrip("\n") + "\n"

"""The rules file Prometheus loads (clawlan.rules.yml), written from the alert rules' data (roles/monitor/alerts).

Every text goes out as a YAML block scalar: a template's braces, quotes and colons need no escaping there, and a
folded scalar gives back exactly the one-line text it was made from (tests/unit/test_alert_rules.py reads it back).
"""

from __future__ import annotations

import textwrap

from roles.monitor.alerts import KEEP_FIRING_WHY, AlertRule, AlertThresholds, alert_groups
from roles.monitor.alerts.model import prometheus_duration

GROUP_PREFIX = "clawlan-"
WIDTH = 116

HEADER = """\
# Managed by clawlan (role monitor). Alert rules for the whole site, written from roles/monitor/alerts/ (the same
# data as docs/alerts.md). Thresholds and for: come from the inventory's monitor_alert_* keys (and
# pki_renew_before_days): change them there and rerun the deploy, not here.
# Series: node exporters job="node", the latency probe job="probe" with path="gateway" or "backend", Prometheus
# itself job="prometheus", Alertmanager job="alertmanager", the model servers job="model_server", the frontends'
# balancers job="balancer"; instance is always the inventory host name.
groups:
"""


def _comment(text: str, indent: int) -> list[str]:
    prefix = " " * indent + "# "
    return textwrap.wrap(text, WIDTH - indent, initial_indent=prefix, subsequent_indent=prefix)


def _folded(key: str, text: str, indent: int) -> list[str]:
    """``key: >-`` and the text broken at its single spaces, which the folded scalar turns back into spaces."""
    body = " " * (indent + 2)
    lines = textwrap.wrap(text, WIDTH - indent - 2, break_long_words=False, break_on_hyphens=False)
    return [" " * indent + f"{key}: >-", *(body + line for line in lines)]


def _literal(key: str, text: str, indent: int) -> list[str]:
    body = " " * (indent + 2)
    return [" " * indent + f"{key}: |-", *(body + line for line in text.splitlines())]


def rule_lines(rule: AlertRule) -> list[str]:
    lines = [*_comment(rule.why, 6), f"      - alert: {rule.name}", *_literal("expr", rule.expr, 8)]
    if rule.for_s is not None:
        lines.append(f"        for: {prometheus_duration(rule.for_s)}")
    if rule.keep_firing_for_s:
        lines += _comment(KEEP_FIRING_WHY, 8)
        lines.append(f"        keep_firing_for: {prometheus_duration(rule.keep_firing_for_s)}")
    lines += [
        "        labels:",
        f"          severity: {rule.severity}",
        "        annotations:",
        *_folded("summary", rule.summary, 10),
        *_folded("description", rule.description, 10),
    ]
    return lines


def render_rules(thresholds: AlertThresholds) -> str:
    """The rules file: every threshold and for: comes from ``thresholds``."""
    lines = []
    for group in alert_groups(thresholds):
        lines += [f"  - name: {GROUP_PREFIX}{group.name}", "    rules:"]
        for rule in group.rules:
            lines += [*rule_lines(rule), ""]
    return HEADER + "\n".join(lines)

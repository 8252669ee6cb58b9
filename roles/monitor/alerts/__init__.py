"""The site's alert rules, as data: each rule's expression, for:, severity, advice and reasons, in six groups.

The rules file Prometheus loads (roles/monitor/rules.py) and the alert reference (docs/alerts.md, tools/docs.py)
are both made from ``alert_groups``, so what fires, what the notification says and what the reference explains
cannot drift apart.
"""

from __future__ import annotations

import dataclasses

from roles.monitor.alerts import availability, capacity, host, latency, meta, security
from roles.monitor.alerts.meta import WATCHDOG
from roles.monitor.alerts.model import AlertGroup, AlertRule, AlertThresholds

# A cause and the alerts it brings with it: while a backend is down or out, the probe failing, slow or queueing is
# the same story. The person hears the cause; Alertmanager inhibits the effects.
CAUSES = ("ClawlanModelServerNotReady", "ClawlanBackendOutOfPool", "ClawlanBackendsBelowMinimum")
EFFECTS = ("ClawlanProbeFailing", "ClawlanProbeTtftHigh", "ClawlanTokensPerSecondLow", "ClawlanBalancerQueueing")
# Why a cause keeps firing after it clears, for the rules file's readers.
KEEP_FIRING_WHY = (
    "A cause of other alerts (Alertmanager holds those back while it fires): it stays firing for a probe round, its"
    " timeout and two scrapes after it clears, until the probe has seen the recovery, or the effects would reach"
    " the person just after this one's resolved notice."
)

_GROUPS = (host, latency, availability, capacity, security, meta)

__all__ = ["CAUSES", "EFFECTS", "WATCHDOG", "AlertGroup", "AlertRule", "AlertThresholds", "alert_groups"]


def _with_recovery(rule: AlertRule, thresholds: AlertThresholds) -> AlertRule:
    if rule.name not in CAUSES:
        return rule
    return dataclasses.replace(rule, keep_firing_for_s=thresholds.probe_recovery_s)


def alert_groups(thresholds: AlertThresholds) -> tuple[AlertGroup, ...]:
    """Every rule, grouped, with the site's thresholds in place."""
    groups = []
    for module in _GROUPS:
        group = module.group(thresholds)
        rules = tuple(_with_recovery(rule, thresholds) for rule in group.rules)
        groups.append(dataclasses.replace(group, rules=rules))
    return tuple(groups)

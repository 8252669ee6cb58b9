"""What the rules file must mean: the alert rules' data as Prometheus reads the file back."""

from __future__ import annotations

from roles.monitor.alerts import AlertThresholds, alert_groups
from roles.monitor.alerts.model import prometheus_duration
from roles.monitor.rules import GROUP_PREFIX


def rules_document(thresholds: AlertThresholds) -> dict:
    """The rules file of ``thresholds`` as a YAML parser should give it back: the data, none of the comments."""
    return {
        "groups": [
            {
                "name": GROUP_PREFIX + group.name,
                "rules": [
                    {
                        "alert": rule.name,
                        "expr": rule.expr,
                        "labels": {"severity": rule.severity},
                        "annotations": {"summary": rule.summary, "description": rule.description},
                    }
                    | ({"for": prometheus_duration(rule.for_s)} if rule.for_s is not None else {})
                    | (
                        {"keep_firing_for": prometheus_duration(rule.keep_firing_for_s)}
                        if rule.keep_firing_for_s
                        else {}
                    )
                    for rule in group.rules
                ],  # fmt: skip
            }
            for group in alert_groups(thresholds)
        ]
    }

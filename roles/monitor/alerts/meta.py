"""Alerts about the monitoring itself: a target it cannot scrape, a silence, and the Watchdog that proves it works."""

from __future__ import annotations

from roles.monitor.alerts.model import (
    DEPLOY,
    INSTANCE,
    VALUE,
    AlertGroup,
    AlertRule,
    AlertThresholds,
    label,
    prometheus_duration,
    prose,
)

WATCHDOG = "Watchdog"


def group(t: AlertThresholds) -> AlertGroup:
    down_for = prometheus_duration(t.down_for_s)
    rules = (
        AlertRule(
            name="ClawlanExporterDown",
            expr='up{job!="model_server"} == 0',
            for_s=t.down_for_s,
            severity="critical",
            summary=prose(f"Prometheus cannot scrape the {label('job')} target on {INSTANCE} for {down_for}"),
            description=prose(
                '{{ if eq $labels.job "node" }}'
                f"Check `systemctl status prometheus-node-exporter` on {INSTANCE}"
                ' {{- else if eq $labels.job "probe" }}'
                f"Check `systemctl status clawlan-probe` and `journalctl -u clawlan-probe -n 50` on {INSTANCE}"
                " {{- else }}"
                f"Check `systemctl status prometheus` on {INSTANCE}"
                "{{ end }}"
                f""". If it runs, the host or the network is down, or an IP filter blocks the monitor: Prometheus'
                Targets page shows the scrape error. Rerun {DEPLOY} to restore units and filters. Alerts that read
                this target are blind meanwhile."""
            ),
            why=prose(f"""
                A scrape target (node exporter, probe, balancer, Alertmanager or Prometheus itself) unreachable: every
                alert reading it is blind. A for: of {down_for} rides out a restart by the deploy, which takes
                seconds. The model server has an alert of its own (ClawlanModelServerNotReady).
            """),
            tuned_by=("monitor_alert_down_for_s",),
        ),
        AlertRule(
            name="ClawlanSilenceActive",
            expr='alertmanager_silences{job="alertmanager", state="active"} > 0',
            for_s=0,
            severity="warning",
            summary=prose(f"{VALUE} silences active on {INSTANCE}'s Alertmanager"),
            description=prose(f"""
                Alerts a silence matches reach nobody until it ends. Alertmanager's page Silences (HTTPS on the monitor
                host, user clawlan) lists who set each and why; expire those nobody meant. One nobody set means the
                password is known: remove `site_state_dir/secrets/monitor-password` on the control machine and rerun
                {DEPLOY} for a new one.
            """),
            why=prose("""
                A silence hides the alerts it matches from the person. One set for a noisy alert and forgotten, or one
                set by someone who should not have Alertmanager's password, is heard here. A silence of everything
                silences this alert too, and the Watchdog with it: then the dead man's switch calls a person.
            """),
        ),
        AlertRule(
            name=WATCHDOG,
            expr="vector(1)",
            severity="none",
            summary="The alert pipeline works (this alert always fires)",
            description=prose("""
                Nothing to do. If the dead man's switch stops receiving it, Prometheus or Alertmanager on the monitor
                host is down, or cannot reach it: no other alert reaches anyone either.
            """),
            why=prose("""
                Always firing, by design: it proves the whole alert pipeline (Prometheus, its rules, Alertmanager, the
                route) works. Alertmanager sends it every minute to the dead man's switch (monitor_alert_watchdog_url),
                which calls a person when it stops arriving: a silent pipeline is noticed by its absence.
            """),
            tuned_by=("monitor_alert_watchdog_url",),
        ),
    )
    return AlertGroup("meta", "The monitoring itself: scrape targets, silences, the Watchdog", rules)

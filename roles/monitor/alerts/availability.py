"""Alerts about whether chats are answered: the probe's requests, the model servers, the balancers' pools.

Series: the probe (job="probe"), each backend's llama-server through its mTLS ingress (job="model_server") and each
frontend's HAProxy exporter (job="balancer").
"""

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

PATH = label("path")
SERVER = label("server")


def group(t: AlertThresholds) -> AlertGroup:
    failing_for = prometheus_duration(t.probe_failing_for_s)
    down_for = prometheus_duration(t.down_for_s)
    out_for = prometheus_duration(t.backend_out_for_s)
    pool = f'job="balancer", proxy="{t.balancer_proxy}", state="UP"'
    rules = (
        AlertRule(
            name="ClawlanProbeFailing",
            expr='clawlan_probe_success{job="probe"} == 0',
            for_s=t.probe_failing_for_s,
            severity="critical",
            summary=prose(f"The probe on {INSTANCE} gets no answer through the {PATH} path for {failing_for}"),
            description=prose(
                '{{ if eq $labels.path "backend" }}'
                "The model server does not answer over mTLS: on the backend run"
                " `systemctl status clawlan-model-server nginx` and `journalctl -u clawlan-model-server -n 100`."
                " {{- else }}"
                f"The gateway does not answer: on {INSTANCE} run `systemctl status clawlan-gateway`"
                " and `journalctl -u clawlan-gateway -n 100`; if the backend path fails too, start with the backend."
                " {{- end }}"
                f""" `journalctl -u clawlan-probe -n 50` on {INSTANCE} gives the probe's error
                (timeout, connection, http_NNN). Rerun {DEPLOY} to restore units and configuration."""
            ),
            why=prose(f"""
                The probe's last request failed, and kept failing over {failing_for} (two probe rounds at the default
                interval): users get errors now. Critical.
            """),
            tuned_by=("monitor_alert_probe_failing_for_s",),
        ),
        AlertRule(
            name="ClawlanModelServerNotReady",
            expr='up{job="model_server"} == 0',
            for_s=t.down_for_s,
            severity="critical",
            summary=prose(f"The model server on {INSTANCE} is not ready for {down_for}"),
            description=prose(f"""
                On {INSTANCE}: `systemctl status clawlan-model-server` and `journalctl -u clawlan-model-server
                -n 50` show whether it runs or is still loading the model; `systemctl status nginx` and
                `tail /var/log/nginx/clawlan-llm.access.log` show whether the monitor's scrapes reach it (403: the
                monitor's certificate is not admitted). Prometheus' Targets page shows the scrape error. Rerun
                {DEPLOY} to restore the service, its configuration and certificates.
            """),
            why=prose("""
                The model server (llama-server) does not answer /metrics through the backend's ingress: it is loading
                the model (503), stopped, or the path to it (nginx, the monitor's certificate) is broken. Chats fail
                meanwhile.
            """),
            tuned_by=("monitor_alert_down_for_s",),
        ),
        AlertRule(
            name="ClawlanBackendOutOfPool",
            expr=f"haproxy_server_status{{{pool}}} == 0",
            for_s=t.backend_out_for_s,
            severity="warning",
            summary=prose(f"Backend {SERVER} is out of {INSTANCE}'s balancer pool for {out_for}"),
            description=prose(f"""
                {INSTANCE}'s HAProxy fails its health checks of {SERVER} (`/health` over mutual
                TLS). On {SERVER}: `systemctl status clawlan-model-server nginx` and
                `journalctl -u clawlan-model-server -n 50` (stopped? still loading the model?); is the box up at all
                (`ping {SERVER}`)? On {INSTANCE}: `journalctl -u haproxy -n 20` names the
                failing check. It rejoins by itself at the first check after it is healthy; rerun
                {DEPLOY} to restore its services and certificates.
            """),
            why=prose("""
                A frontend's balancer took a backend out of its pool (failed health checks) and it has not come back:
                chats still flow to the other backends, with less capacity and no spare.
            """),
            tuned_by=("monitor_alert_backend_out_for_s",),
        ),
        AlertRule(
            name="ClawlanBackendsBelowMinimum",
            expr=f"sum by (instance) (haproxy_server_status{{{pool}}})\n  < {t.backends_min}",
            for_s=t.backend_out_for_s,
            severity="critical",
            summary=prose(f"""
                Only {VALUE} healthy backend(s) in {INSTANCE}'s balancer pool,
                fewer than {t.backends_min}
            """),
            description=prose(f"""
                ClawlanBackendOutOfPool names the backends that are out. With none left, every chat through
                {INSTANCE} fails with 503. Bring a backend back (its model server, nginx, the box itself),
                then rerun {DEPLOY}.
            """),
            why=prose("""
                Fewer healthy backends than the site needs (monitor_alert_backends_min): chats queue, or fail with
                none.
            """),
            tuned_by=("monitor_alert_backends_min", "monitor_alert_backend_out_for_s"),
        ),
    )
    return AlertGroup("availability", "Whether chats are answered: probe, model servers, balancer pools", rules)

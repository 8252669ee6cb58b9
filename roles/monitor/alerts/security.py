"""Alerts about trust: certificates and the revocation list running out, and openclaw's security audit.

Series: textfile metrics the pki role's and the gateway's timers write for the node exporters (job="node").
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

# Summaries that say "expired" or "expires in 3d 2h" from the same value: seconds left, negative once past.
_EXPIRED_OR_LEFT = "{{ if lt $value 0.0 }}%s{{ else }}%s {{ humanizeDuration $value }}{{ end }}"


def group(t: AlertThresholds) -> AlertGroup:
    certificate_for = prometheus_duration(t.certificate_for_s)
    renew_before_s = t.certificate_renew_before_days * 86400
    audit_stale = prometheus_duration(t.gateway_audit_max_age_s)
    rules = (
        AlertRule(
            name="ClawlanCertificateExpiring",
            expr=f'clawlan_certificate_expiry_timestamp_seconds{{job="node"}} - time() < {renew_before_s}',
            for_s=t.certificate_for_s,
            severity="warning",
            summary=prose(f"""
                Certificate {label("file")} on {INSTANCE}
                {_EXPIRED_OR_LEFT % ("has expired", "expires in")}
            """),
            description=prose(f"""
                A deploy reissues certificates that expire within {t.certificate_renew_before_days} days, so this one
                was missed: run `pyinfra inventory/site.py deploys/pki.py` (or deploys/full.py), then check the new date
                with `openssl x509 -noout -enddate -in {label("file")}` on {INSTANCE}. At expiry mTLS
                between the boxes fails and the backend stops answering.
            """),
            why=prose(f"""
                A certificate inside the renewal window: every deploy reissues those, so this one was missed. The
                metric is written by the pki role's timer; a for: of {certificate_for} lets a deploy that is renewing
                right now finish.
            """),
            tuned_by=("pki_renew_before_days", "monitor_alert_certificate_for_s"),
        ),
        AlertRule(
            name="ClawlanRevocationListExpiring",
            expr=f'clawlan_revocation_list_next_update_timestamp_seconds{{job="node"}} - time() < {renew_before_s}',
            for_s=t.certificate_for_s,
            severity="warning",
            summary=prose(f"""
                The revocation list on {INSTANCE}
                {_EXPIRED_OR_LEFT % ("has run out", "runs out in")}
            """),
            description=prose(f"""
                A deploy signs the site CA's revocation list anew once half of its life has passed: run
                {DEPLOY}. When it runs out, the backend's nginx refuses every
                client (chats fail) until a deploy installs a new one.
            """),
            why=prose("""
                The revocation list the hosts check runs out: every deploy signs it anew in the second half of its
                life (pki_crl_days), so no deploy ran for a long while. At its next update nginx refuses every client.
            """),
            tuned_by=("pki_renew_before_days", "pki_crl_days", "monitor_alert_certificate_for_s"),
        ),
        AlertRule(
            name="ClawlanGatewayAuditCritical",
            expr='clawlan_gateway_audit_findings{job="node", severity="critical"} > 0',
            for_s=600,
            severity="critical",
            summary=prose(f"openclaw's security audit finds {VALUE} critical problems on {INSTANCE}"),
            description=prose(f"""
                Run `openclaw security audit` as root on {INSTANCE}: it names each finding and its fix.
                Settings the deploy manages come back with {DEPLOY}; anything else
                was changed by hand on the host. The audit runs again hourly, or now with
                `systemctl start clawlan-gateway-audit.service`.
            """),
            why=prose("""
                openclaw's security audit (clawlan-gateway-audit.service, hourly and after every deploy that changed
                the gateway) found a critical problem: its own list of dangerous settings, readable secrets, open
                binds.
            """),
        ),
        AlertRule(
            name="ClawlanGatewayAuditFailing",
            expr=(
                'clawlan_gateway_audit_success{job="node"} == 0\n'
                '  or time() - clawlan_gateway_audit_last_run_timestamp_seconds{job="node"}'
                f" > {t.gateway_audit_max_age_s}"
            ),
            for_s=600,
            severity="warning",
            summary=prose(f"openclaw's security audit on {INSTANCE} fails or no longer runs"),
            description=prose(f"""
                On {INSTANCE}: `systemctl status clawlan-gateway-audit.service clawlan-gateway-audit.timer`
                and `journalctl -u clawlan-gateway-audit -n 50` show whether it ran and what it said;
                `openclaw config validate` shows a configuration openclaw rejects (then the gateway does not survive
                its next restart). Rerun {DEPLOY} to put the timer and the
                configuration back.
            """),
            why=prose(f"""
                The audit ran without a report (openclaw rejects its configuration, or does not start), or it has not
                run for longer than the compliance suite trusts a report ({audit_stale}): its timer is not running.
            """),
        ),
    )
    return AlertGroup("security", "Trust: certificates, revocation list, the gateway's security audit", rules)

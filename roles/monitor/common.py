"""What the monitoring components share: the monitor host, its TLS identity and login, and the rules across settings.

Node exporter, probe, Prometheus and Alertmanager are rooms of their own (roles/monitor/<component>.py); this is
the hall between them. Prometheus and Alertmanager both serve HTTPS with the monitor's certificate and ask for the
same password.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from roles.common.names import HostSpec
from roles.common.settings import Problem
from roles.common.tls import PKI_DIR
from roles.monitor import site_rules
from roles.monitor.settings import MonitorSettings

PROMETHEUS_USER = "prometheus"  # Debian's package makes it; Alertmanager runs as it too
PROMETHEUS_DIR = "/etc/clawlan/prometheus"  # ours, beside Debian's /etc/prometheus, which stays untouched
PROMETHEUS_STAGING = f"{PROMETHEUS_DIR}/staged"  # checked by promtool (amtool) before it replaces the live copy
# The monitor's own TLS identity for its UIs and for scraping the backends' model servers: a key made on the monitor
# host for Prometheus' user, with a certificate whose subject the backends admit to /metrics and nothing else.
MONITOR_KEY = f"{PKI_DIR}/monitor.key"
MONITOR_CERT = f"{PKI_DIR}/monitor.crt"
# Who may use Prometheus' and Alertmanager's UI and API: HTTPS with the monitor's certificate from the site CA, and a
# password (its bcrypt hash in the web configuration both read). Without it anyone on the client networks, or anything
# running on the monitor host (the agent included), could silence every alert or post false ones.
WEB_CONFIG = f"{PROMETHEUS_DIR}/web.yml"  # root:prometheus 0640
WEB_USER = "clawlan"
WEB_PASSWORD_FILE = f"{PROMETHEUS_DIR}/web-password"  # Prometheus' own login to itself and Alertmanager; 0640


@dataclass(frozen=True)
class ScrapeTarget:
    host: str  # the inventory name, shown as the instance label
    address: str  # host:port
    server_name: str = ""  # for https targets: the name their certificate must carry


def monitor_host(settings: MonitorSettings, hosts: Sequence[HostSpec]) -> HostSpec:
    if settings.host:
        return next(h for h in hosts if h.name == settings.host)
    return next(h for h in hosts if h.role == "frontend")


def web_config_yaml(password_hash: str) -> str:
    """Prometheus' and Alertmanager's web configuration (the exporter toolkit's): HTTPS with the monitor's key and
    certificate (read again at each handshake, so a renewal needs no restart) and one user. JSON is YAML."""
    config = {
        "tls_server_config": {"cert_file": MONITOR_CERT, "key_file": MONITOR_KEY, "min_version": "TLS12"},
        "basic_auth_users": {WEB_USER: password_hash},
    }
    return "# Managed by clawlan (role monitor).\n" + json.dumps(config, indent=2, sort_keys=True) + "\n"


# An alert mail needs both a receiver and a relay; the other mail keys are read only beside them.
MAIL_NEEDS = ("monitor_alert_email_to", "monitor_alert_smtp_host")
MAIL_DETAILS = ("monitor_alert_email_from", "monitor_alert_smtp_port", "monitor_alert_smtp_username")


def preflight(settings: MonitorSettings, hosts: Sequence[HostSpec], given: Collection[str] = ()) -> list[Problem]:
    """Rules across settings and hosts; ``settings`` are the same on every host (site-wide keys), ``given`` the keys
    the inventory sets."""
    problems = []
    names = [h.name for h in hosts]
    if settings.host and settings.host not in names:
        problems.append(Problem("*", "monitor_host", f"names no inventory host; hosts are {', '.join(names)}"))
    backends = sum(h.role == "backend" for h in hosts)
    if settings.alert_backends_min > backends:
        problems.append(
            Problem("*", "monitor_alert_backends_min", f"the site has {backends} backend(s): the alert would never end")
        )
    if settings.rules_file and (problem := site_rules.problem(settings.rules_file)):
        problems.append(Problem("*", "monitor_rules_file", problem))
    if problems:
        return problems
    monitor = monitor_host(settings, hosts)
    problems += mail_problems(settings, monitor.name, given)
    address = ipaddress.ip_address(monitor.address)
    if not any(address in ipaddress.ip_network(network) for network in settings.client_networks):
        problems.append(
            Problem(
                monitor.name,
                "monitor_client_networks",
                f"none of them holds the monitor's own address {monitor.address}: nobody beside it could open the UI",
            )
        )
    return problems


def mail_problems(settings: MonitorSettings, monitor: str, given: Collection[str]) -> list[Problem]:
    """An e-mail receiver half set up: no alert would be mailed, while the inventory reads as if it were."""
    values = {key: getattr(settings, key.removeprefix("monitor_")) for key in (*MAIL_NEEDS, *MAIL_DETAILS)}
    missing = [key for key in MAIL_NEEDS if not values[key]]
    if not missing:
        return []
    # The port has a default: only one the inventory gives is set up.
    half = [key for key, value in values.items() if value and (key in given or key != "monitor_alert_smtp_port")]
    message = (
        f"is given without {' and '.join(missing)}: no alert mail would be sent (mail needs monitor_alert_email_to and "
        "monitor_alert_smtp_host both)"
    )
    return [Problem(monitor, key, message) for key in half]

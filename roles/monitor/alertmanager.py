"""Debian's Alertmanager on the monitor host: it groups, inhibits and sends the alerts Prometheus fires to the
inventory's receivers (a webhook, e-mail), and the Watchdog to a dead man's switch.

Its configuration is checked by amtool in a staging directory before it replaces the live one; Debian's unit is kept
and extended with a drop-in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import server

from roles.common.files import host_files
from roles.common.names import HostSpec
from roles.common.packages import install_packages
from roles.common.templates import render
from roles.common.units import dropin_path, service
from roles.monitor.alerts import CAUSES, EFFECTS, WATCHDOG
from roles.monitor.common import PROMETHEUS_DIR, PROMETHEUS_STAGING, PROMETHEUS_USER, WEB_CONFIG
from roles.monitor.settings import MonitorSettings

UNIT = "prometheus-alertmanager.service"  # Debian's
STAGING = f"{PROMETHEUS_STAGING}/alertmanager"  # checked by amtool before it replaces the live copy
CONFIG = f"{PROMETHEUS_DIR}/alertmanager.yml"
STORAGE = "/var/lib/prometheus/alertmanager"  # Debian's: silences and the notification log
# The relay's password, from the control machine's secrets: root and Alertmanager's user only, outside the config.
SMTP_PASSWORD_FILE = f"{PROMETHEUS_DIR}/alert-smtp-password"


@dataclass(frozen=True)
class AlertmanagerConfig:
    settings: MonitorSettings  # the receivers, the grouping and the UI's networks (monitor_client_networks)
    listen_address: str
    smtp_password_file: str  # on the control machine: site_state_dir/secrets/alert-smtp-password

    def arguments(self) -> tuple[str, ...]:
        return (
            f"--config.file={CONFIG}",
            f"--storage.path={STORAGE}",
            f"--web.listen-address={self.listen_address}:{self.settings.alertmanager_port}",
            f"--web.external-url=https://{self.listen_address}:{self.settings.alertmanager_port}/",
            f"--web.config.file={WEB_CONFIG}",
            # One Alertmanager: no gossip port (by default it listens on every address, 9094).
            "--cluster.listen-address=",
        )

    @property
    def sends_mail(self) -> bool:
        return bool(self.settings.alert_email_to and self.settings.alert_smtp_host)

    def config(self) -> dict:
        """Alertmanager's configuration, as data: every inventory value reaches the file through a JSON encoder."""
        s = self.settings
        person: dict = {"name": "person"}
        if s.alert_webhook_url:
            person["webhook_configs"] = [{"url": s.alert_webhook_url, "send_resolved": True}]
        if self.sends_mail:
            mail = {
                "to": s.alert_email_to,
                "from": s.alert_email_from or f"alertmanager@{self.listen_address}",
                "smarthost": f"{s.alert_smtp_host}:{s.alert_smtp_port}",
                "require_tls": True,
                "send_resolved": True,
            }
            if s.alert_smtp_username:
                mail |= {"auth_username": s.alert_smtp_username, "auth_password_file": SMTP_PASSWORD_FILE}
            person["email_configs"] = [mail]
        watchdog: dict = {"name": "watchdog"}
        if s.alert_watchdog_url:
            watchdog["webhook_configs"] = [{"url": s.alert_watchdog_url, "send_resolved": False}]
        return {
            "route": {
                "receiver": "person",
                # One notification per alert and host: a person reads "what, where" at once.
                "group_by": ["alertname", "instance"],
                "group_wait": f"{s.alert_group_wait_s}s",
                "group_interval": f"{s.alert_group_interval_s}s",
                "repeat_interval": f"{s.alert_repeat_interval_s}s",
                "routes": [
                    # Every minute: Alertmanager looks at a notified group once per group_interval and sends it
                    # again only when its last notification is older than repeat_interval. With both at 1m, the
                    # last one is always a moment too young at the next look, and it went out every 2 minutes (seen
                    # in the lab); looks every 10 s and a 50 s repeat make it every 60 s.
                    {
                        "matchers": [f'alertname="{WATCHDOG}"'],
                        "receiver": "watchdog",
                        "group_wait": "0s",
                        "group_interval": "10s",
                        "repeat_interval": "50s",
                    },  # fmt: skip
                ],
            },
            "inhibit_rules": [
                {
                    "source_matchers": [f'alertname=~"{"|".join(CAUSES)}"'],
                    "target_matchers": [f'alertname=~"{"|".join(EFFECTS)}"'],
                }
            ],
            "receivers": [person, watchdog],
        }

    def yaml(self) -> str:
        """JSON is YAML: no value can break out of its string."""
        return "# Managed by clawlan (role monitor).\n" + json.dumps(self.config(), indent=2, sort_keys=True) + "\n"


def build_alertmanager_config(settings: MonitorSettings, monitor: HostSpec, smtp_password_file: str):
    return AlertmanagerConfig(settings, monitor.address, smtp_password_file)


@deploy("Alertmanager")
def alertmanager(config: AlertmanagerConfig, installed_packages: frozenset[str] = frozenset()):
    """Debian's Alertmanager on the monitor host: the configuration checked by amtool before it replaces the live
    one, a reload when it changed, a restart when the unit's flags did."""
    staged_file = f"{STAGING}/alertmanager.yml"
    known = host_files(STAGING, dropin_path(UNIT), CONFIG, staged_file,
                       SMTP_PASSWORD_FILE)  # fmt: skip
    dropin = known.put(
        name="Configure Alertmanager: our configuration, the LAN listener for the UI's networks, no gossip port",
        src=StringIO(alertmanager_dropin_text(config)),
        dest=dropin_path(UNIT),
        mode="644",
    )
    install_packages("Install Debian's Alertmanager", ["prometheus-alertmanager"], installed_packages,
                     no_recommends=True)  # fmt: skip
    secrets = []
    if config.sends_mail and config.settings.alert_smtp_username:
        secrets.append(known.secret(
            name=f"Write the mail relay's password to {SMTP_PASSWORD_FILE} (root and Alertmanager only)",
            content=Path(config.smtp_password_file).read_text().strip() + "\n",
            dest=SMTP_PASSWORD_FILE, mode="640", group=PROMETHEUS_USER,
        ))  # fmt: skip
    known.directory(name=f"Create {STAGING}", path=STAGING, mode="755")
    text = config.yaml()
    # Its receivers' URLs are capabilities (a webhook's token, a dead man's switch): root and Alertmanager's user only.
    staged = known.put(name="Stage alertmanager.yml", src=StringIO(text), dest=staged_file, mode="640", user="root",
                       group=PROMETHEUS_USER)  # fmt: skip
    server.shell(
        name="Check the staged Alertmanager configuration with amtool",
        commands=[
            f"amtool check-config {staged_file} > /dev/null"
            f" || {{ rm -f {staged_file}; echo 'amtool rejected the configuration; Alertmanager keeps its own' >&2;"
            " exit 1; }"
        ],
        _if=staged.did_change,
    )
    live = known.put(name=f"Write {CONFIG}", src=StringIO(text), dest=CONFIG, mode="640",
                     user="root", group=PROMETHEUS_USER)  # fmt: skip
    service(
        name=f"Run {UNIT} (restarted when its flags changed, reloaded when its configuration did)",
        unit=UNIT,
        daemon_reload_on=(dropin,),
        restart_on=(dropin,),
        reload_on=(live, *secrets),
    )


def alertmanager_dropin_text(config: AlertmanagerConfig) -> str:
    return render(
        "monitor/alertmanager.conf.j2",
        arguments=config.arguments(),
        config_file=CONFIG,
        storage=STORAGE,
    )

"""What the monitoring stack deploys: node exporters everywhere, the probe on frontends, Prometheus on the monitor."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass

from roles.common.names import HostSpec
from roles.common.settings import Problem
from roles.common.tls import CA_CERT, PKI_DIR, Issuance
from roles.monitor import site_rules
from roles.monitor.alerts import CAUSES, EFFECTS, WATCHDOG, AlertThresholds
from roles.monitor.settings import MonitorSettings

# Debian's node exporter reads this directory (its package creates it); the pki role writes certificate expiry here.
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
NODE_EXPORTER_UNIT = "prometheus-node-exporter.service"
PROMETHEUS_UNIT = "prometheus.service"
PROBE_UNIT = "clawlan-probe.service"
PROBE_USER = "clawlan-probe"
PROBE_DIR = "/opt/clawlan/probe"  # collector.py and the stream.py it imports
PROBE_PROGRAM = f"{PROBE_DIR}/collector.py"
PROBE_CONFIG = "/etc/clawlan/probe.json"
# The probe's RuntimeDirectory (systemd makes it at start and removes it at stop); the file lock in it keeps probe
# rounds and a latency check's chats off the single-slot model server at the same time.
PROBE_RUNTIME_DIR = "clawlan-probe"
PROBE_ROUND_LOCK = f"/run/{PROBE_RUNTIME_DIR}/round.lock"
# The probe's own TLS identity: a key made on the frontend for the probe's user (the host key stays root's), with
# a certificate for the frontend's identity, which the backend admits.
PROBE_KEY = f"{PKI_DIR}/probe.key"
PROBE_CERT = f"{PKI_DIR}/probe.crt"
# The monitor's own TLS identity for scraping the backends' model servers: a key made on the monitor host for
# Prometheus' user, with a certificate whose subject the backends admit to /metrics and nothing else.
MONITOR_KEY = f"{PKI_DIR}/monitor.key"
MONITOR_CERT = f"{PKI_DIR}/monitor.crt"
PROMETHEUS_USER = "prometheus"  # Debian's package makes it
PROMETHEUS_DIR = "/etc/clawlan/prometheus"  # ours, beside Debian's /etc/prometheus, which stays untouched
PROMETHEUS_STAGING = f"{PROMETHEUS_DIR}/staged"  # checked by promtool before it replaces the live copy
# Long-running units whose state the node exporter reports and the unit-down alert watches; oneshots are left out:
# between runs they are inactive by design.
ALERTMANAGER_UNIT = "prometheus-alertmanager.service"  # Debian's
ALERTMANAGER_STAGING = f"{PROMETHEUS_STAGING}/alertmanager"  # checked by amtool before it replaces the live copy
ALERTMANAGER_CONFIG = f"{PROMETHEUS_DIR}/alertmanager.yml"
ALERTMANAGER_STORAGE = "/var/lib/prometheus/alertmanager"  # Debian's: silences and the notification log
# The relay's password, from the control machine's secrets: root and Alertmanager's user only, outside the config.
SMTP_PASSWORD_FILE = f"{PROMETHEUS_DIR}/alert-smtp-password"
# Who may use Prometheus' and Alertmanager's UI and API: HTTPS with the monitor's certificate from the site CA, and a
# password (its bcrypt hash in the web configuration both read). Without it anyone on the client networks, or anything
# running on the monitor host (the agent included), could silence every alert or post false ones.
WEB_CONFIG = f"{PROMETHEUS_DIR}/web.yml"  # root:prometheus 0640
WEB_USER = "clawlan"
WEB_PASSWORD_FILE = f"{PROMETHEUS_DIR}/web-password"  # Prometheus' own login to itself and Alertmanager; 0640
WATCHED_UNITS = (
    "clawlan-model-server.service",
    "clawlan-gateway.service",
    PROBE_UNIT,
    "nginx.service",
    "haproxy.service",
    PROMETHEUS_UNIT,
    ALERTMANAGER_UNIT,
    NODE_EXPORTER_UNIT,
)


@dataclass(frozen=True)
class NodeExporterConfig:
    listen_address: str
    port: int
    monitor_address: str  # the one LAN address allowed to scrape
    textfile_dir: str = TEXTFILE_DIR
    watched_units: tuple[str, ...] = WATCHED_UNITS

    def arguments(self) -> tuple[str, ...]:
        """Command-line flags: defaults plus the systemd collector for our units and the textfile collector."""
        # "[.]", not "\\.": systemd's ExecStart= would take the backslash for an escape of its own.
        unit_regex = "|".join(unit.replace(".", "[.]") for unit in self.watched_units)
        return (
            f"--web.listen-address={self.listen_address}:{self.port}",
            f"--collector.textfile.directory={self.textfile_dir}",
            "--collector.systemd",
            f"--collector.systemd.unit-include=({unit_regex})",
            # Restarts show a unit that flaps while 'active' looks fine at every scrape.
            "--collector.systemd.enable-restarts-metrics",
        )


@dataclass(frozen=True)
class ProbeConfig:
    listen_address: str
    port: int
    interval_s: int
    timeout_s: int
    max_tokens: int
    gateway_url: str
    backend_url: str
    backend_model: str
    issuance: Issuance  # the frontend's: the probe's certificate carries the same identity
    allowed_addresses: tuple[str, ...]  # the probe's IP filter: whom it scrapes for and whom it probes
    env_file: str  # the gateway's EnvironmentFile: the gateway token and the model API key the probe sends
    certificate_metrics_unit: str  # the pki role's expiry metric job: run again when the probe's certificate changes

    def probe_json(self) -> str:
        """The probe's configuration; secrets are names of environment variables, never values."""
        common = {"max_tokens": self.max_tokens, "timeout_s": self.timeout_s}
        return json.dumps(
            {
                "listen_address": self.listen_address,
                "port": self.port,
                "interval_s": self.interval_s,
                "round_lock_file": PROBE_ROUND_LOCK,
                "targets": [
                    {
                        "name": "gateway",
                        "url": self.gateway_url,
                        "model": "openclaw",
                        "api_key_env": "OPENCLAW_GATEWAY_TOKEN",
                        "ca_file": CA_CERT,
                        **common,
                    },
                    {
                        "name": "backend",
                        "url": self.backend_url,
                        "model": self.backend_model,
                        "api_key_env": "CLAWLAN_MODEL_API_KEY",
                        "ca_file": CA_CERT,
                        "cert_file": PROBE_CERT,
                        "key_file": PROBE_KEY,
                        **common,
                    },
                ],
            },
            indent=2,
            sort_keys=True,
        )


@dataclass(frozen=True)
class ScrapeTarget:
    host: str  # the inventory name, shown as the instance label
    address: str  # host:port
    server_name: str = ""  # for https targets: the name their certificate must carry


@dataclass(frozen=True)
class ModelServerScrape:
    """The backends whose model server has /metrics (llama-server), reached through their mTLS ingress."""

    targets: tuple[ScrapeTarget, ...]
    identity: Issuance  # the monitor's client certificate
    certificate_metrics_unit: str  # the pki role's expiry metric job: run again when that certificate changes
    slot_context_tokens: tuple[tuple[str, int], ...]  # (backend, context per slot) for the context alert


@dataclass(frozen=True)
class PrometheusConfig:
    listen_address: str
    port: int
    scrape_interval_s: int
    retention_days: int
    client_networks: tuple[str, ...]
    node_targets: tuple[ScrapeTarget, ...]
    probe_targets: tuple[ScrapeTarget, ...]
    balancer_targets: tuple[ScrapeTarget, ...]  # each frontend's HAProxy exporter
    model_server: ModelServerScrape
    thresholds: AlertThresholds
    site_rules_file: str  # on the control machine: the site's own rules, or "" for none
    alertmanager: str  # address:port of the site's Alertmanager, on the monitor host: alerts go there
    web_password_file: str  # on the control machine: the password for the UI and API of both (user WEB_USER)

    def arguments(self) -> tuple[str, ...]:
        return (
            f"--config.file={PROMETHEUS_DIR}/prometheus.yml",
            "--storage.tsdb.path=/var/lib/prometheus/metrics2/",
            f"--storage.tsdb.retention.time={self.retention_days}d",
            f"--web.listen-address={self.listen_address}:{self.port}",
            f"--web.external-url=https://{self.listen_address}:{self.port}/",
            f"--web.config.file={WEB_CONFIG}",
        )

    @property
    def allowed_networks(self) -> tuple[str, ...]:
        """Prometheus' IP filter: the UI's clients and every scrape target (they may sit outside those networks)."""
        scraped = (*self.node_targets, *self.probe_targets, *self.balancer_targets, *self.model_server.targets,
                   ScrapeTarget("alertmanager", self.alertmanager))  # fmt: skip
        targets = {target.address.rsplit(":", 1)[0] for target in scraped}
        return (*self.client_networks, *sorted(targets - set(self.client_networks)))


@dataclass(frozen=True)
class AlertmanagerConfig:
    listen_address: str
    port: int
    client_networks: tuple[str, ...]  # the UI's and API's networks (and Prometheus on the same box, by loopback)
    webhook_url: str
    email_to: str
    email_from: str
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password_file: str  # on the control machine: site_state_dir/secrets/alert-smtp-password
    watchdog_url: str
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int

    def arguments(self) -> tuple[str, ...]:
        return (
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={ALERTMANAGER_STORAGE}",
            f"--web.listen-address={self.listen_address}:{self.port}",
            f"--web.external-url=https://{self.listen_address}:{self.port}/",
            f"--web.config.file={WEB_CONFIG}",
            # One Alertmanager: no gossip port (by default it listens on every address, 9094).
            "--cluster.listen-address=",
        )

    @property
    def sends_mail(self) -> bool:
        return bool(self.email_to and self.smtp_host)

    def config(self) -> dict:
        """Alertmanager's configuration, as data: every inventory value reaches the file through a JSON encoder."""
        person: dict = {"name": "person"}
        if self.webhook_url:
            person["webhook_configs"] = [{"url": self.webhook_url, "send_resolved": True}]
        if self.sends_mail:
            mail = {
                "to": self.email_to,
                "from": self.email_from or f"alertmanager@{self.listen_address}",
                "smarthost": f"{self.smtp_host}:{self.smtp_port}",
                "require_tls": True,
                "send_resolved": True,
            }
            if self.smtp_username:
                mail |= {"auth_username": self.smtp_username, "auth_password_file": SMTP_PASSWORD_FILE}
            person["email_configs"] = [mail]
        watchdog: dict = {"name": "watchdog"}
        if self.watchdog_url:
            watchdog["webhook_configs"] = [{"url": self.watchdog_url, "send_resolved": False}]
        return {
            "route": {
                "receiver": "person",
                # One notification per alert and host: a person reads "what, where" at once.
                "group_by": ["alertname", "instance"],
                "group_wait": f"{self.group_wait_s}s",
                "group_interval": f"{self.group_interval_s}s",
                "repeat_interval": f"{self.repeat_interval_s}s",
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
    return AlertmanagerConfig(
        listen_address=monitor.address,
        port=settings.alertmanager_port,
        client_networks=settings.client_networks,
        webhook_url=settings.alert_webhook_url,
        email_to=settings.alert_email_to,
        email_from=settings.alert_email_from,
        smtp_host=settings.alert_smtp_host,
        smtp_port=settings.alert_smtp_port,
        smtp_username=settings.alert_smtp_username,
        smtp_password_file=smtp_password_file,
        watchdog_url=settings.alert_watchdog_url,
        group_wait_s=settings.alert_group_wait_s,
        group_interval_s=settings.alert_group_interval_s,
        repeat_interval_s=settings.alert_repeat_interval_s,
    )


def monitor_host(settings: MonitorSettings, hosts: Sequence[HostSpec]) -> HostSpec:
    if settings.host:
        return next(h for h in hosts if h.name == settings.host)
    return next(h for h in hosts if h.role == "frontend")


def build_node_exporter_config(settings: MonitorSettings, host: HostSpec, monitor: HostSpec) -> NodeExporterConfig:
    return NodeExporterConfig(
        listen_address=host.address, port=settings.node_exporter_port, monitor_address=monitor.address
    )


def build_probe_config(
    settings: MonitorSettings,
    host: HostSpec,
    monitor: HostSpec,
    backends: Sequence[HostSpec],
    *,
    gateway_port: int,
    backend_name: str,
    mtls_port: int,
    backend_model: str,
    issuance: Issuance,
    env_file: str,
    certificate_metrics_unit: str,
) -> ProbeConfig:
    return ProbeConfig(
        listen_address=host.address,
        port=settings.probe_port,
        interval_s=settings.probe_interval_s,
        timeout_s=settings.probe_timeout_s,
        max_tokens=settings.probe_max_tokens,
        # The LAN address, as a user's browser reaches the gateway, not its loopback listener.
        gateway_url=f"https://{host.address}:{gateway_port}/v1/chat/completions",
        # The backends' shared name, pinned to each of them: the first that answers is probed.
        backend_url=f"https://{backend_name}:{mtls_port}/v1/chat/completions",
        backend_model=backend_model,
        issuance=issuance,
        allowed_addresses=tuple(sorted({host.address, monitor.address, *(b.address for b in backends)})),
        env_file=env_file,
        certificate_metrics_unit=certificate_metrics_unit,
    )


def build_prometheus_config(
    settings: MonitorSettings,
    hosts: Sequence[HostSpec],
    monitor: HostSpec,
    renew_before_days: int,
    gateway_audit_max_age_s: int,
    model_server: ModelServerScrape,
    balancer_targets: tuple[ScrapeTarget, ...],
    balancer_proxy: str,
    web_password_file: str,
) -> PrometheusConfig:
    return PrometheusConfig(
        listen_address=monitor.address,
        port=settings.prometheus_port,
        scrape_interval_s=settings.scrape_interval_s,
        retention_days=settings.retention_days,
        client_networks=settings.client_networks,
        node_targets=tuple(ScrapeTarget(h.name, f"{h.address}:{settings.node_exporter_port}") for h in hosts),
        probe_targets=tuple(
            ScrapeTarget(h.name, f"{h.address}:{settings.probe_port}") for h in hosts if h.role == "frontend"
        ),
        balancer_targets=balancer_targets,
        model_server=model_server,
        alertmanager=f"{monitor.address}:{settings.alertmanager_port}",
        web_password_file=web_password_file,
        site_rules_file=settings.rules_file,
        thresholds=alert_thresholds(
            settings, renew_before_days, gateway_audit_max_age_s, model_server.slot_context_tokens, balancer_proxy
        ),
    )


def alert_thresholds(
    settings: MonitorSettings,
    renew_before_days: int,
    gateway_audit_max_age_s: int,
    slot_context_tokens: tuple[tuple[str, int], ...],
    balancer_proxy: str,
) -> AlertThresholds:
    """What the alert rules read: the inventory's monitor_alert_* keys and the facts of other roles they judge."""
    return AlertThresholds(
        memory_used_percent=settings.alert_memory_used_percent,
        memory_for_s=settings.alert_memory_for_s,
        memory_available_floor_gib=settings.alert_memory_available_floor_gib,
        swap_growth_for_s=settings.alert_swap_growth_for_s,
        packet_loss_percent=settings.alert_packet_loss_percent,
        ttft_p99_s=settings.alert_ttft_p99_s,
        tokens_per_second_floor=settings.alert_tokens_per_second_floor,
        latency_for_s=settings.alert_latency_for_s,
        probe_failing_for_s=settings.alert_probe_failing_for_s,
        probe_recovery_s=settings.probe_interval_s + settings.probe_timeout_s + 2 * settings.scrape_interval_s,
        down_for_s=settings.alert_down_for_s,
        certificate_for_s=settings.alert_certificate_for_s,
        disk_free_percent=settings.alert_disk_free_percent,
        certificate_renew_before_days=renew_before_days,
        gateway_audit_max_age_s=gateway_audit_max_age_s,
        queue_for_s=settings.alert_queue_for_s,
        context_full_percent=settings.alert_context_full_percent,
        slot_context_tokens=slot_context_tokens,
        backend_out_for_s=settings.alert_backend_out_for_s,
        backends_min=settings.alert_backends_min,
        balancer_proxy=balancer_proxy,
        watched_units=WATCHED_UNITS,
    )


def preflight(settings: MonitorSettings, hosts: Sequence[HostSpec]) -> list[Problem]:
    """Rules across settings and hosts; ``settings`` are the same on every host (site-wide keys)."""
    problems = []
    names = [h.name for h in hosts]
    if settings.host and settings.host not in names:
        problems.append(Problem("*", "monitor_host", f"names no inventory host; hosts are {', '.join(names)}"))
    ports = {
        "monitor_prometheus_port": settings.prometheus_port,
        "monitor_node_exporter_port": settings.node_exporter_port,
        "monitor_probe_port": settings.probe_port,
    }
    if len(set(ports.values())) != len(ports):
        problems.append(Problem("*", "monitor_*_port", f"the monitoring ports must differ, got {ports}"))
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


def web_config_yaml(password_hash: str) -> str:
    """Prometheus' and Alertmanager's web configuration (the exporter toolkit's): HTTPS with the monitor's key and
    certificate (read again at each handshake, so a renewal needs no restart) and one user. JSON is YAML."""
    config = {
        "tls_server_config": {"cert_file": MONITOR_CERT, "key_file": MONITOR_KEY, "min_version": "TLS12"},
        "basic_auth_users": {WEB_USER: password_hash},
    }
    return "# Managed by clawlan (role monitor).\n" + json.dumps(config, indent=2, sort_keys=True) + "\n"

"""Prometheus on the monitor host: it scrapes every exporter, the probes, the balancers and the model servers, and
evaluates the alert rules (roles/monitor/alerts) and a site's own.

Configuration and rules are checked by promtool in a staging directory before they replace the live ones; Debian's
unit is kept and extended with a drop-in (flags, hardening, an IP filter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import server

from roles.common.files import host_files
from roles.common.names import HostSpec
from roles.common.packages import install_packages
from roles.common.secrets import password_hash, site_secret
from roles.common.templates import render, rendered
from roles.common.tls import CA_CERT, Issuance, own_identity
from roles.common.units import dropin_path, service
from roles.monitor import dashboard, site_rules
from roles.monitor.alerts import AlertThresholds
from roles.monitor.common import (
    MONITOR_CERT,
    MONITOR_KEY,
    PROMETHEUS_DIR,
    PROMETHEUS_STAGING,
    PROMETHEUS_USER,
    WEB_CONFIG,
    WEB_PASSWORD_FILE,
    WEB_USER,
    ScrapeTarget,
    web_config_yaml,
)
from roles.monitor.rules import render_rules
from roles.monitor.settings import MonitorSettings

UNIT = "prometheus.service"


@dataclass(frozen=True)
class ModelServerScrape:
    """The backends whose model server has /metrics (llama-server), reached through their mTLS ingress."""

    targets: tuple[ScrapeTarget, ...]
    identity: Issuance  # the monitor's client certificate
    certificate_metrics_unit: str  # the pki role's expiry metric job: run again when that certificate changes
    slot_context_tokens: tuple[tuple[str, int], ...]  # (backend, context per slot) for the context alert


@dataclass(frozen=True)
class PrometheusConfig:
    settings: MonitorSettings  # port, scrape interval, retention, the UI's networks, the site's own rules file
    listen_address: str
    node_targets: tuple[ScrapeTarget, ...]
    probe_targets: tuple[ScrapeTarget, ...]
    balancer_targets: tuple[ScrapeTarget, ...]  # each frontend's HAProxy exporter
    model_server: ModelServerScrape
    thresholds: AlertThresholds
    alertmanager: str  # address:port of the site's Alertmanager, on the monitor host: alerts go there
    web_password_file: str  # on the control machine: the password for the UI and API of both (user WEB_USER)
    ttft_target_s: float  # the site's latency targets, drawn on the dashboard beside the alert thresholds
    inter_token_target_s: float
    site_name: str  # the dashboard's title

    def arguments(self) -> tuple[str, ...]:
        return (
            f"--config.file={PROMETHEUS_DIR}/prometheus.yml",
            "--storage.tsdb.path=/var/lib/prometheus/metrics2/",
            f"--storage.tsdb.retention.time={self.settings.retention_days}d",
            f"--web.listen-address={self.listen_address}:{self.settings.prometheus_port}",
            f"--web.external-url=https://{self.listen_address}:{self.settings.prometheus_port}/",
            f"--web.config.file={WEB_CONFIG}",
            f"--web.console.templates={dashboard.CONSOLES_DIR}",
            f"--web.console.libraries={dashboard.CONSOLES_DIR}",  # no *.lib there: the page needs none of Debian's
        )

    def dashboard_page(self) -> str:
        panels = dashboard.rows(self.thresholds, self.ttft_target_s, self.inter_token_target_s)
        return dashboard.console_page(panels, self.site_name)

    @property
    def allowed_networks(self) -> tuple[str, ...]:
        """Prometheus' IP filter: the UI's clients and every scrape target (they may sit outside those networks)."""
        scraped = (*self.node_targets, *self.probe_targets, *self.balancer_targets, *self.model_server.targets,
                   ScrapeTarget("alertmanager", self.alertmanager))  # fmt: skip
        targets = {target.address.rsplit(":", 1)[0] for target in scraped}
        networks = self.settings.client_networks
        return (*networks, *sorted(targets - set(networks)))


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
    watched_units: tuple[str, ...],
    latency_targets_s: tuple[float, float],
    site_name: str,
) -> PrometheusConfig:
    return PrometheusConfig(
        settings=settings,
        listen_address=monitor.address,
        node_targets=tuple(ScrapeTarget(h.name, f"{h.address}:{settings.node_exporter_port}") for h in hosts),
        probe_targets=tuple(
            ScrapeTarget(h.name, f"{h.address}:{settings.probe_port}") for h in hosts if h.role == "frontend"
        ),
        balancer_targets=balancer_targets,
        model_server=model_server,
        alertmanager=f"{monitor.address}:{settings.alertmanager_port}",
        web_password_file=web_password_file,
        ttft_target_s=latency_targets_s[0],
        inter_token_target_s=latency_targets_s[1],
        site_name=site_name,
        thresholds=alert_thresholds(
            settings,
            renew_before_days,
            gateway_audit_max_age_s,
            model_server.slot_context_tokens,
            balancer_proxy,
            watched_units,
        ),
    )


def alert_thresholds(
    settings: MonitorSettings,
    renew_before_days: int,
    gateway_audit_max_age_s: int,
    slot_context_tokens: tuple[tuple[str, int], ...],
    balancer_proxy: str,
    watched_units: tuple[str, ...],
) -> AlertThresholds:
    """What the alert rules read: the inventory's monitor_alert_* keys and the facts of other roles they judge.

    An 'auto' decode floor must have been made a number first (settings.with_alert_floor, from the site's target)."""
    if settings.alert_tokens_per_second_floor == "auto":
        raise ValueError("monitor_alert_tokens_per_second_floor is 'auto': read the site's settings (Site.monitor)")
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
        gpu_memory_percent=settings.alert_gpu_memory_percent,
        gpu_temperature_celsius=settings.alert_gpu_temperature_celsius,
        watched_units=watched_units,
    )


@deploy("Prometheus")
def prometheus(config: PrometheusConfig, monitor_name: str, installed_packages: frozenset[str] = frozenset()):
    """Configuration and rules are checked by promtool in a staging directory before they replace the live ones."""
    names = ("prometheus.yml", "clawlan.rules.yml", site_rules.FILE_NAME)
    known = host_files(
        PROMETHEUS_STAGING,
        dropin_path(UNIT),
        *(f"{directory}/{name}" for directory in (PROMETHEUS_STAGING, PROMETHEUS_DIR) for name in names),
        WEB_CONFIG,
        WEB_PASSWORD_FILE,
        dashboard.CONSOLES_DIR,
        f"{dashboard.CONSOLES_DIR}/{dashboard.CONSOLE}",
    )
    known.directory(name=f"Create {PROMETHEUS_STAGING}", path=PROMETHEUS_STAGING, mode="755")
    dropin = known.put(
        name="Configure Prometheus: our configuration, retention, LAN listener, IP filter",
        src=rendered(
            "monitor/prometheus.conf.j2",
            arguments=config.arguments(),
            allowed_networks=config.allowed_networks,
            config_file=f"{PROMETHEUS_DIR}/prometheus.yml",
        ),
        dest=dropin_path(UNIT),
        mode="644",
    )
    install_packages("Install Debian's Prometheus", ["prometheus"], installed_packages, no_recommends=True)
    # Prometheus' user comes with the package.
    scrape = config.model_server
    key, certificate = own_identity(
        "monitor", MONITOR_KEY, MONITOR_CERT, PROMETHEUS_USER, scrape.identity, scrape.certificate_metrics_unit
    )

    # The UI's and API's password is made on the control machine (a person types it); the hosts get its bcrypt hash,
    # and Prometheus the password itself, for its own requests to itself and to Alertmanager.
    password = site_secret(config.web_password_file)
    web_password = known.secret(
        name=f"Write Prometheus' password for its own and Alertmanager's API to {WEB_PASSWORD_FILE} (root and"
        " Prometheus only)",
        content=password + "\n",
        dest=WEB_PASSWORD_FILE,
        mode="640",
        group=PROMETHEUS_USER,
    )
    known.put(
        name=f"Write {WEB_CONFIG}: HTTPS with the monitor's certificate and a password for Prometheus and Alertmanager",
        src=StringIO(web_config_yaml(password_hash(config.web_password_file, password))),
        dest=WEB_CONFIG,
        mode="640",
        user="root",
        group=PROMETHEUS_USER,
    )
    texts = {
        "prometheus.yml": prometheus_yml_text(config, monitor_name),
        "clawlan.rules.yml": render_rules(config.thresholds),
    }
    if config.settings.rules_file:
        texts[site_rules.FILE_NAME] = site_rules.read(config.settings.rules_file)
    staged = [
        known.put(name=f"Stage {name}", src=StringIO(text), dest=f"{PROMETHEUS_STAGING}/{name}", mode="644")
        for name, text in texts.items()
    ]
    server.shell(
        name="Check the staged configuration and rules with promtool",
        commands=[
            f"promtool check config {PROMETHEUS_STAGING}/prometheus.yml > /dev/null"
            f" || {{ rm -f {PROMETHEUS_STAGING}/*; echo 'promtool rejected the configuration; Prometheus keeps its"
            " own' >&2; exit 1; }"
        ],
        _if=lambda: any(op.did_change() for op in staged),
    )
    live = [
        known.put(
            name=f"Write {PROMETHEUS_DIR}/{name}", src=StringIO(text), dest=f"{PROMETHEUS_DIR}/{name}", mode="644"
        )
        for name, text in texts.items()
    ]
    if not config.settings.rules_file:
        # After the configuration that no longer names it: a Prometheus (re)started in between still finds it.
        for directory in (PROMETHEUS_STAGING, PROMETHEUS_DIR):
            known.absent(
                name=f"Remove {directory}/{site_rules.FILE_NAME}: the inventory names no site rules file",
                path=f"{directory}/{site_rules.FILE_NAME}",
            )
    known.directory(name=f"Create {dashboard.CONSOLES_DIR}", path=dashboard.CONSOLES_DIR, mode="755")
    # Prometheus reads the page at each request: a new one needs no reload.
    known.put(
        name=f"Write the dashboard, served at /consoles/{dashboard.CONSOLE}",
        src=StringIO(config.dashboard_page()),
        dest=f"{dashboard.CONSOLES_DIR}/{dashboard.CONSOLE}",
        mode="644",
    )
    service(
        name=f"Run {UNIT} (restarted when its flags changed, reloaded when its configuration did)",
        unit=UNIT,
        daemon_reload_on=(dropin,),
        restart_on=(dropin,),
        # Prometheus reads its client certificate and key on each new connection; a reload drops the old ones.
        reload_on=(*live, key, certificate, web_password),
    )


def prometheus_yml_text(config: PrometheusConfig, monitor_name: str) -> str:
    return render(
        "monitor/prometheus.yml.j2",
        scrape_interval_s=config.settings.scrape_interval_s,
        listen_address=config.listen_address,
        port=config.settings.prometheus_port,
        monitor_name=monitor_name,
        node_targets=config.node_targets,
        probe_targets=config.probe_targets,
        balancer_targets=config.balancer_targets,
        model_server=config.model_server,
        alertmanager=config.alertmanager,
        ca_file=CA_CERT,
        cert_file=MONITOR_CERT,
        key_file=MONITOR_KEY,
        web_user=WEB_USER,
        web_password_file=WEB_PASSWORD_FILE,
        site_rules=site_rules.FILE_NAME if config.settings.rules_file else "",
    )

"""Role monitor: Debian's node exporter on every host, the latency probe on frontends, Prometheus on the monitor.

Debian's units are kept and extended with drop-ins (flags, hardening, an IP filter); Debian's own files under
/etc/default and /etc/prometheus stay untouched, so package upgrades never stop on a changed conffile.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import server

from roles.common.accounts import system_user
from roles.common.files import host_files
from roles.common.packages import install_packages
from roles.common.secrets import password_hash, site_secret
from roles.common.templates import render, rendered
from roles.common.tls import CA_CERT, own_identity
from roles.common.units import dropin_path, service
from roles.monitor import site_rules
from roles.monitor.config import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_STAGING,
    ALERTMANAGER_STORAGE,
    ALERTMANAGER_UNIT,
    MONITOR_CERT,
    MONITOR_KEY,
    NODE_EXPORTER_UNIT,
    PROBE_CERT,
    PROBE_CONFIG,
    PROBE_DIR,
    PROBE_KEY,
    PROBE_PROGRAM,
    PROBE_RUNTIME_DIR,
    PROBE_UNIT,
    PROBE_USER,
    PROMETHEUS_DIR,
    PROMETHEUS_STAGING,
    PROMETHEUS_UNIT,
    PROMETHEUS_USER,
    SMTP_PASSWORD_FILE,
    WEB_CONFIG,
    WEB_PASSWORD_FILE,
    WEB_USER,
    AlertmanagerConfig,
    NodeExporterConfig,
    ProbeConfig,
    PrometheusConfig,
    web_config_yaml,
)
from roles.monitor.rules import render_rules

# The probe program is this role's programs/collector.py and stream.py, run by the host's Python 3 with Debian's
# prometheus-client.
PROBE_SOURCES = Path(__file__).resolve().parent / "programs"


@deploy("Node exporter")
def node_exporter(config: NodeExporterConfig, installed_packages: frozenset[str] = frozenset()):
    # Written before the package is installed: its first start already listens where, and for whom, it should.
    dropin = host_files(dropin_path(NODE_EXPORTER_UNIT)).put(
        name="Configure the node exporter: LAN listener for the monitor only, unit states, textfiles",
        src=rendered(
            "monitor/node-exporter.conf.j2", arguments=config.arguments(), monitor_address=config.monitor_address
        ),  # fmt: skip
        dest=dropin_path(NODE_EXPORTER_UNIT),
        mode="644",
    )
    # No recommends: Debian's extra collectors add timers for smartctl, ipmitool and apt we do not alert on.
    install_packages("Install Debian's node exporter (and D-Bus, which it asks for unit states)",
                     ["prometheus-node-exporter", "dbus"], installed_packages, no_recommends=True)  # fmt: skip
    service(
        name=f"Run {NODE_EXPORTER_UNIT} (restarted only when its drop-in changed)",
        unit=NODE_EXPORTER_UNIT,
        daemon_reload_on=(dropin,),
        restart_on=(dropin,),
    )


@deploy("Latency probe")
def probe(config: ProbeConfig, secrets_changes=(), tls_changes=(), installed_packages: frozenset[str] = frozenset()):
    """``secrets_changes`` and ``tls_changes`` are the operations that change what the probe reads at start."""
    install_packages("Install Python and Debian's prometheus-client for the probe",
                     ["python3", "python3-prometheus-client"], installed_packages)  # fmt: skip
    system_user(name=f"Create the {PROBE_USER} system user", user=PROBE_USER, home="/nonexistent")
    unit_path = f"/etc/systemd/system/{PROBE_UNIT}"
    modules = ("collector.py", "stream.py")
    known = host_files(*(f"{PROBE_DIR}/{module}" for module in modules), PROBE_CONFIG, unit_path)
    programs = [
        known.put(name=f"Install the probe's {module}", src=str(PROBE_SOURCES / module), dest=f"{PROBE_DIR}/{module}",
                  mode="644")
        for module in modules
    ]  # fmt: skip
    settings = known.put(
        name=f"Write the probe configuration {PROBE_CONFIG} (no secrets in it)",
        src=StringIO(config.probe_json() + "\n"),
        dest=PROBE_CONFIG,
        mode="644",
    )
    unit = known.put(
        name=f"Install {PROBE_UNIT}",
        src=rendered(
            "monitor/clawlan-probe.service.j2",
            user=PROBE_USER,
            program=PROBE_PROGRAM,
            config_file=PROBE_CONFIG,
            runtime_directory=PROBE_RUNTIME_DIR,
            env_file=config.env_file,
            allowed_addresses=config.allowed_addresses,
        ),
        dest=unit_path,
        mode="644",
    )
    key, certificate = own_identity("probe", PROBE_KEY, PROBE_CERT, PROBE_USER, config.issuance,
                                        config.certificate_metrics_unit)  # fmt: skip
    changed = (*programs, settings, unit, key, certificate, *secrets_changes, *tls_changes)
    service(
        name=f"Run {PROBE_UNIT} (restarted only when its program, configuration, unit, secrets or key changed)",
        unit=PROBE_UNIT,
        daemon_reload_on=(unit,),
        restart_on=changed,
    )


@deploy("Prometheus")
def prometheus(config: PrometheusConfig, monitor_name: str, installed_packages: frozenset[str] = frozenset()):
    """Configuration and rules are checked by promtool in a staging directory before they replace the live ones."""
    names = ("prometheus.yml", "clawlan.rules.yml", site_rules.FILE_NAME)
    known = host_files(
        PROMETHEUS_STAGING,
        dropin_path(PROMETHEUS_UNIT),
        *(f"{directory}/{name}" for directory in (PROMETHEUS_STAGING, PROMETHEUS_DIR) for name in names),
        WEB_CONFIG,
        WEB_PASSWORD_FILE,
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
        dest=dropin_path(PROMETHEUS_UNIT),
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
    if config.site_rules_file:
        texts[site_rules.FILE_NAME] = site_rules.read(config.site_rules_file)
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
    if not config.site_rules_file:
        # After the configuration that no longer names it: a Prometheus (re)started in between still finds it.
        for directory in (PROMETHEUS_STAGING, PROMETHEUS_DIR):
            known.absent(
                name=f"Remove {directory}/{site_rules.FILE_NAME}: the inventory names no site rules file",
                path=f"{directory}/{site_rules.FILE_NAME}",
            )
    service(
        name=f"Run {PROMETHEUS_UNIT} (restarted when its flags changed, reloaded when its configuration did)",
        unit=PROMETHEUS_UNIT,
        daemon_reload_on=(dropin,),
        restart_on=(dropin,),
        # Prometheus reads its client certificate and key on each new connection; a reload drops the old ones.
        reload_on=(*live, key, certificate, web_password),
    )


def prometheus_yml_text(config: PrometheusConfig, monitor_name: str) -> str:
    return render(
        "monitor/prometheus.yml.j2",
        scrape_interval_s=config.scrape_interval_s,
        listen_address=config.listen_address,
        port=config.port,
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
        site_rules=site_rules.FILE_NAME if config.site_rules_file else "",
    )


@deploy("Alertmanager")
def alertmanager(config: AlertmanagerConfig, installed_packages: frozenset[str] = frozenset()):
    """Debian's Alertmanager on the monitor host: the configuration checked by amtool before it replaces the live
    one, a reload when it changed, a restart when the unit's flags did."""
    staged_file = f"{ALERTMANAGER_STAGING}/alertmanager.yml"
    known = host_files(ALERTMANAGER_STAGING, dropin_path(ALERTMANAGER_UNIT), ALERTMANAGER_CONFIG, staged_file,
                       SMTP_PASSWORD_FILE)  # fmt: skip
    dropin = known.put(
        name="Configure Alertmanager: our configuration, the LAN listener for the UI's networks, no gossip port",
        src=StringIO(alertmanager_dropin_text(config)),
        dest=dropin_path(ALERTMANAGER_UNIT),
        mode="644",
    )
    install_packages("Install Debian's Alertmanager", ["prometheus-alertmanager"], installed_packages,
                     no_recommends=True)  # fmt: skip
    secrets = []
    if config.sends_mail and config.smtp_username:
        secrets.append(known.secret(
            name=f"Write the mail relay's password to {SMTP_PASSWORD_FILE} (root and Alertmanager only)",
            content=Path(config.smtp_password_file).read_text().strip() + "\n",
            dest=SMTP_PASSWORD_FILE, mode="640", group=PROMETHEUS_USER,
        ))  # fmt: skip
    known.directory(name=f"Create {ALERTMANAGER_STAGING}", path=ALERTMANAGER_STAGING, mode="755")
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
    live = known.put(name=f"Write {ALERTMANAGER_CONFIG}", src=StringIO(text), dest=ALERTMANAGER_CONFIG, mode="640",
                     user="root", group=PROMETHEUS_USER)  # fmt: skip
    service(
        name=f"Run {ALERTMANAGER_UNIT} (restarted when its flags changed, reloaded when its configuration did)",
        unit=ALERTMANAGER_UNIT,
        daemon_reload_on=(dropin,),
        restart_on=(dropin,),
        reload_on=(live, *secrets),
    )


def alertmanager_dropin_text(config: AlertmanagerConfig) -> str:
    return render(
        "monitor/alertmanager.conf.j2",
        arguments=config.arguments(),
        config_file=ALERTMANAGER_CONFIG,
        storage=ALERTMANAGER_STORAGE,
    )

"""Every file the deploys write from a ``Site``, rendered as deploys/full.py renders it, without a host.

The deploys call these templates with these contexts (roles/<role>/deploy.py); the unit tests read what a site's
values become on the hosts from here: {"<host>:<path on the host>": text}.
"""

from __future__ import annotations

from roles.base.deploy import SYSCTL_FILE, THP_TMPFILES, TIMESYNCD_DROPIN
from roles.common.templates import render
from roles.common.tls import PKI_DIR
from roles.common.units import dropin_path
from roles.firewall.config import RULES, TABLE
from roles.firewall.config import UNIT as FIREWALL_UNIT
from roles.gateway.config import AUDIT_UNIT, BACKUP_UNIT
from roles.gateway.config import CLI as GATEWAY_CLI
from roles.gateway.config import CONFIG_FILE as GATEWAY_CONFIG
from roles.gateway.config import UNIT as GATEWAY_UNIT
from roles.gateway.deploy import _unit_context, audit_unit_text, backup_unit_text
from roles.model_server.config import CONFIG_FILE as MODEL_CONFIG
from roles.model_server.config import UNIT
from roles.model_server.deploy import (
    CAPTURE_SERVICE_FILE,
    CAPTURE_SOCKET_FILE,
    capture_service_text,
    capture_socket_text,
    unit_text,
)
from roles.monitor.alertmanager import UNIT as ALERTMANAGER_UNIT
from roles.monitor.alertmanager import alertmanager_dropin_text
from roles.monitor.common import PROMETHEUS_DIR
from roles.monitor.node_exporter import UNIT as NODE_EXPORTER_UNIT
from roles.monitor.probe import CONFIG as PROBE_CONFIG
from roles.monitor.probe import PROGRAM as PROBE_PROGRAM
from roles.monitor.probe import RUNTIME_DIR as PROBE_RUNTIME_DIR
from roles.monitor.probe import UNIT as PROBE_UNIT
from roles.monitor.probe import USER as PROBE_USER
from roles.monitor.prometheus import UNIT as PROMETHEUS_UNIT
from roles.monitor.prometheus import prometheus_yml_text
from roles.monitor.rules import render_rules
from roles.mtls.config import BALANCER_CONF, BALANCER_UNIT, CONF, HARDENING, INGRESS_UNIT
from roles.pki.config import METRICS_SCRIPT, METRICS_UNIT
from roles.site.site import Site


def host_files(site: Site, name: str) -> dict[str, str]:
    """The files deploys/full.py writes on host ``name`` (besides fixed programs and secrets)."""
    files: dict[str, str] = {}
    role = site.topology.host(name).role
    base = site.base_config(name)
    files["/etc/hosts (block)"] = render("base/hosts-block.j2", entries=base.hosts_entries)
    files["/etc/fstab (line)"] = f"{base.swap_path} none swap sw 0 0\n" if base.swap_size_mib > 0 else ""
    files[SYSCTL_FILE] = render("base/sysctl.conf.j2", sysctls=base.sysctls)
    files[THP_TMPFILES] = render("base/thp.tmpfiles.conf.j2", enabled=base.thp_enabled, defrag=base.thp_defrag)
    if base.ntp_servers:
        files[TIMESYNCD_DROPIN] = render("base/timesyncd.conf.j2", servers=base.ntp_servers)
    files[f"/etc/systemd/system/{FIREWALL_UNIT}"] = render("firewall/clawlan-firewall.service.j2", table=TABLE,
                                                          rules=RULES)  # fmt: skip

    exporter = site.node_exporter_config(name)
    files[dropin_path(NODE_EXPORTER_UNIT)] = render(
        "monitor/node-exporter.conf.j2", arguments=exporter.arguments(), monitor_address=exporter.monitor_address
    )
    pki = site.pki_config(name)
    files[f"/etc/systemd/system/{METRICS_UNIT}.service"] = render(
        "pki/clawlan-certificate-metrics.service.j2", script=METRICS_SCRIPT, metrics_dir=pki.metrics_dir,
        pki_dir=PKI_DIR,
    )  # fmt: skip

    if role == "backend":
        model = site.model_server_config(name)
        files[MODEL_CONFIG] = render("model_server/model-server.conf.j2", environment=model.environment())
        files[f"/etc/systemd/system/{UNIT}"] = unit_text(model)
        files[CAPTURE_SOCKET_FILE] = capture_socket_text(model)
        files[CAPTURE_SERVICE_FILE] = capture_service_text(model)
        files[CONF] = render("mtls/ingress.conf.j2", **site.ingress_config(name).__dict__)
        files[dropin_path(INGRESS_UNIT)] = render(HARDENING[INGRESS_UNIT])
    else:
        files[BALANCER_CONF] = render("mtls/haproxy.cfg.j2", **site.egress_config(name).__dict__)
        files[dropin_path(BALANCER_UNIT)] = render(HARDENING[BALANCER_UNIT])
        gateway = site.gateway_config(name)
        context = _unit_context(gateway)
        files[GATEWAY_CLI] = render("gateway/openclaw.sh.j2", **context)
        files[GATEWAY_CONFIG] = gateway.openclaw_json()
        files[f"/etc/systemd/system/{GATEWAY_UNIT}"] = render("gateway/clawlan-gateway.service.j2", **context)
        files[f"/etc/systemd/system/{AUDIT_UNIT}.service"] = audit_unit_text(gateway)
        files[f"/etc/systemd/system/{BACKUP_UNIT}.service"] = backup_unit_text(gateway)
        probe = site.probe_config(name)
        files[PROBE_CONFIG] = probe.probe_json() + "\n"
        files[f"/etc/systemd/system/{PROBE_UNIT}"] = render(
            "monitor/clawlan-probe.service.j2", user=PROBE_USER, program=PROBE_PROGRAM, config_file=PROBE_CONFIG,
            runtime_directory=PROBE_RUNTIME_DIR, env_file=probe.env_file, allowed_addresses=probe.allowed_addresses,
        )  # fmt: skip

    if name == site.topology.monitor_host.name:
        prometheus = site.prometheus_config()
        files[dropin_path(PROMETHEUS_UNIT)] = render(
            "monitor/prometheus.conf.j2", arguments=prometheus.arguments(),
            allowed_networks=prometheus.allowed_networks, config_file=f"{PROMETHEUS_DIR}/prometheus.yml",
        )  # fmt: skip
        files[f"{PROMETHEUS_DIR}/prometheus.yml"] = prometheus_yml_text(prometheus, name)
        files[f"{PROMETHEUS_DIR}/clawlan.rules.yml"] = render_rules(prometheus.thresholds)
        files[dropin_path(ALERTMANAGER_UNIT)] = alertmanager_dropin_text(site.alertmanager_config())
    return files


def site_files(site: Site) -> dict[str, str]:
    """Every host's files, keyed ``<host>:<path>``."""
    return {
        f"{host.name}:{path}": text
        for host in site.topology.hosts
        for path, text in host_files(site, host.name).items()
    }

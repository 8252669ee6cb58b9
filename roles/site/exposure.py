"""What each box serves on its LAN address, and to whom: the same ports and peers its roles are given, so the
firewall opens exactly what the services listen on."""

from __future__ import annotations

from roles.firewall.config import FirewallConfig, Opening, build_firewall_config, opening
from roles.monitor.settings import MonitorSettings
from roles.site.settings import HostSettings
from roles.site.topology import Topology


def firewall_config(topology: Topology, name: str, own: HostSettings, monitor: MonitorSettings) -> FirewallConfig:
    """``own``: the host's settings; ``monitor``: the site's (site-wide) monitor settings."""
    spec, monitor_address = topology.host(name), topology.monitor_host.address
    services: list[Opening] = [opening("node exporter", monitor.node_exporter_port, [monitor_address])]
    if spec.role == "frontend":
        services += [
            opening("gateway (HTTPS)", own.gateway.port, own.gateway.client_networks),
            opening("latency probe metrics", monitor.probe_port, [monitor_address]),
            opening("balancer metrics", own.mtls.balancer_metrics_port, [monitor_address]),
        ]
    else:
        frontends = [h.address for h in topology.frontends]
        services.append(opening("model (mutual TLS)", own.mtls.port, [*frontends, monitor_address]))
    if name == topology.monitor_host.name:
        services += [
            opening("Prometheus", monitor.prometheus_port, monitor.client_networks),
            opening("Alertmanager", monitor.alertmanager_port, monitor.client_networks),
        ]
    return build_firewall_config(own.firewall, name, spec.address, spec.ssh_port, tuple(services))

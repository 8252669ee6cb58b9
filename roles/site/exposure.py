"""What each box serves, where, and to whom: one declaration, from which the firewall's openings, the inventory's
port-clash check, the listener control (NET-01) and the table under role firewall (docs/roles.md) are all made, so
they cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from roles.firewall.config import FirewallConfig, Opening, build_firewall_config, opening
from roles.site.settings import HostSettings
from roles.site.topology import Topology

# Which boxes serve it.
EVERY_HOST, FRONTEND, BACKEND, MONITOR_HOST = "every host", "frontend", "backend", "monitor host"
# Where it listens: the box's LAN address (the firewall opens it to its clients), loopback only (the box's own
# business, never opened), or every address (sshd).
LAN, LOOPBACK, EVERY_ADDRESS = "LAN", "loopback", "every address"


@dataclass(frozen=True)
class Peers:
    """What a service's clients are, in the firewall's terms: the site's own addresses for what they describe."""

    topology: Topology
    own: HostSettings

    @property
    def monitor(self) -> tuple[str, ...]:
        return (self.topology.monitor_host.address,)

    @property
    def frontends_and_monitor(self) -> tuple[str, ...]:
        return (*(h.address for h in self.topology.frontends), self.topology.monitor_host.address)


@dataclass(frozen=True)
class Box:
    """A box's own settings, as its services' ports are read from them."""

    own: HostSettings
    ssh_port: int  # sshd's, from the inventory's connection settings


@dataclass(frozen=True)
class Service:
    what: str  # the firewall rule's comment, and how reports and docs/roles.md name it
    key: str  # the inventory key that sets its port
    boxes: str
    listens: str
    admits: str  # its clients, as docs/roles.md says it
    port: Callable[[Box], int]
    clients: Callable[[Peers], Sequence[str]] = lambda peers: ()  # addresses and networks the firewall admits


# fmt: off
SERVICES = (
    Service("ssh", "ssh_port", EVERY_HOST, EVERY_ADDRESS, "`firewall_admin_networks`",
            lambda box: box.ssh_port, lambda peers: peers.own.firewall.admin_networks),
    Service("node exporter", "monitor_node_exporter_port", EVERY_HOST, LAN, "the monitor host",
            lambda box: box.own.monitor.node_exporter_port, lambda peers: peers.monitor),
    Service("gateway (HTTPS)", "gateway_port", FRONTEND, LAN, "`gateway_client_networks`",
            lambda box: box.own.gateway.port, lambda peers: peers.own.gateway.client_networks),
    Service("latency probe metrics", "monitor_probe_port", FRONTEND, LAN, "the monitor host",
            lambda box: box.own.monitor.probe_port, lambda peers: peers.monitor),
    Service("balancer metrics", "mtls_balancer_metrics_port", FRONTEND, LAN, "the monitor host",
            lambda box: box.own.mtls.balancer_metrics_port, lambda peers: peers.monitor),
    Service("balancer", "mtls_egress_port", FRONTEND, LOOPBACK, "the gateway",
            lambda box: box.own.mtls.egress_port),
    Service("balancer's session table", "mtls_balancer_peers_port", FRONTEND, LOOPBACK, "HAProxy's next process",
            lambda box: box.own.mtls.balancer_peers_port),
    Service("model (mutual TLS)", "mtls_port", BACKEND, LAN, "the frontends and the monitor host",
            lambda box: box.own.mtls.port, lambda peers: peers.frontends_and_monitor),
    Service("model server", "model_server_port", BACKEND, LOOPBACK, "the ingress (nginx)",
            lambda box: box.own.model_server.port),
    Service("Prometheus", "monitor_prometheus_port", MONITOR_HOST, LAN, "`monitor_client_networks`",
            lambda box: box.own.monitor.prometheus_port, lambda peers: peers.own.monitor.client_networks),
    Service("Alertmanager", "monitor_alertmanager_port", MONITOR_HOST, LAN, "`monitor_client_networks`",
            lambda box: box.own.monitor.alertmanager_port, lambda peers: peers.own.monitor.client_networks),
)
# fmt: on


def served(role: str, is_monitor: bool, own: HostSettings, ssh_port: int) -> tuple[tuple[Service, int], ...]:
    """What a box of ``role`` serves, each with its port (the monitor host's services when ``is_monitor``)."""
    boxes = {EVERY_HOST, role} | ({MONITOR_HOST} if is_monitor else set())
    box = Box(own, ssh_port)
    return tuple((service, service.port(box)) for service in SERVICES if service.boxes in boxes)


def lan_listeners(topology: Topology, name: str, own: HostSettings) -> set[str]:
    """address:port of every socket the box should listen on beyond loopback, as ``ss`` shows them."""
    spec = topology.host(name)
    listening = set()
    for service, port in served(spec.role, name == topology.monitor_host.name, own, spec.ssh_port):
        if service.listens == EVERY_ADDRESS:
            listening |= {f"0.0.0.0:{port}", f"[::]:{port}"}
        elif service.listens == LAN:
            listening.add(f"{spec.address}:{port}")
    return listening


def firewall_config(topology: Topology, name: str, own: HostSettings) -> FirewallConfig:
    """The box's openings: its LAN services, each to its clients."""
    spec, peers = topology.host(name), Peers(topology, own)
    services: list[Opening] = [
        opening(service.what, port, service.clients(peers))
        for service, port in served(spec.role, name == topology.monitor_host.name, own, spec.ssh_port)
        if service.listens == LAN
    ]
    return build_firewall_config(own.firewall, name, spec.address, spec.ssh_port, tuple(services))

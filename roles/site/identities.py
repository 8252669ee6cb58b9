"""The certificates the site CA issues: each host's own, the gateway's and the monitor's made from it, and which of
them each host keeps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from roles.common.tls import HOST_CERT, Issuance
from roles.gateway.config import TLS_CERT as GATEWAY_CERT
from roles.monitor.common import MONITOR_CERT
from roles.monitor.probe import CERT as PROBE_CERT
from roles.pki.config import issuance
from roles.pki.settings import PkiSettings
from roles.site.topology import Topology


@dataclass(frozen=True)
class Identities:
    topology: Topology
    pki: Mapping[str, PkiSettings]  # host name -> its pki settings
    state_dir: Path  # the control machine's, where the site CA lives

    def host(self, name: str) -> Issuance:
        """The host's own certificate: its names and address, the subject of its role; client and server."""
        spec = self.topology.host(name)
        return issuance(self.pki[name], self.state_dir, spec.role, self.topology.names_of(name), spec.address,
                        self.topology.domain)  # fmt: skip

    def gateway(self, name: str) -> Issuance:
        """The gateway's HTTPS certificate: the frontend's names and address, its own subject (OU=gateway), server
        use only, so it can never open a backend's door."""
        own = self.host(name)
        return replace(own, spec=replace(own.spec, role="gateway", client=False, server=True))

    def monitor(self) -> Issuance:
        """The monitor's certificate: its host's names, its own subject (OU=monitor); a client toward the backends'
        /metrics, and the server of Prometheus' and Alertmanager's HTTPS."""
        own = self.host(self.topology.monitor_host.name)
        return replace(own, spec=replace(own.spec, role="monitor", client=True, server=True))

    def certificate_paths(self, name: str) -> tuple[str, ...]:
        """Every certificate the site CA keeps issued on ``name``: its own, the probe's and the gateway's on a
        frontend, the monitor's on the monitor host. What these hold is what the revocation list spares."""
        paths = [HOST_CERT]
        if self.topology.host(name).role == "frontend":
            paths += [PROBE_CERT, GATEWAY_CERT]
        if name == self.topology.monitor_host.name:
            paths.append(MONITOR_CERT)
        return tuple(paths)

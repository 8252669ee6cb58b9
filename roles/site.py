"""The whole site as the roles see it: one validated inventory turned into each host's role configs.

The one place roles meet: what one role needs of another (a path, a port, a name) is put into its config here,
so no role imports another. ``roles/inventory/`` loads and validates the inventory and builds the ``Site``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from roles.base.config import BaseConfig, build_base_config
from roles.common.locks import MODEL_SERVER, NODE, OPENCLAW, REPOSITORY_LOCKS, Lock, read_lock
from roles.common.names import HostSpec, SiteNames, site_names
from roles.common.tls import HOST_CERT, Issuance
from roles.firewall.config import FirewallConfig, Opening, build_firewall_config, opening
from roles.gateway.config import AUDIT_MAX_AGE_S, GatewayConfig, build_gateway_config
from roles.gateway.config import ENV_FILE as GATEWAY_ENV_FILE
from roles.gateway.config import TLS_CERT as GATEWAY_CERT
from roles.model_server.config import IDLE_CLOSE_S, ModelServerConfig, build_model_server_config, health_path, slots
from roles.model_server.settings import LLAMA_SERVER
from roles.monitor.config import (
    MONITOR_CERT,
    PROBE_CERT,
    TEXTFILE_DIR,
    AlertmanagerConfig,
    ModelServerScrape,
    NodeExporterConfig,
    ProbeConfig,
    PrometheusConfig,
    ScrapeTarget,
    build_alertmanager_config,
    build_node_exporter_config,
    build_probe_config,
    build_prometheus_config,
    monitor_host,
)
from roles.monitor.settings import MonitorSettings
from roles.mtls.config import (
    BALANCER_PROXY,
    EgressConfig,
    IngressConfig,
    PoolMember,
    build_egress_config,
    build_ingress_config,
)
from roles.pki.config import METRICS_UNIT, PkiConfig, issuance
from roles.site_settings import HostSettings, LatencyTargets


@dataclass(frozen=True)
class Site:
    hosts: tuple[HostSpec, ...]
    settings: Mapping[str, HostSettings]  # host name -> its settings
    # The site CA's revocation list (PEM) for this run: certificates it issued that no inventory host holds any more.
    # Read off the hosts by deploys/_site.py; empty where no deploy runs (the inventory check, unit tests).
    revocations: str = ""

    def host(self, name: str) -> HostSpec:
        return next(h for h in self.hosts if h.name == name)

    @property
    def _site_wide(self) -> HostSettings:
        """Where the site reads its site-wide keys: the inventory check holds them equal on every host."""
        return self.settings[self.hosts[0].name]

    @property
    def state_dir(self) -> Path:
        return Path(self._site_wide.site.state_dir).expanduser()

    @property
    def cache_dir(self) -> Path:
        return Path(self._site_wide.site.cache_dir).expanduser()

    @property
    def locks_dir(self) -> Path:
        locks_dir = self._site_wide.site.locks_dir
        return Path(locks_dir).expanduser() if locks_dir else REPOSITORY_LOCKS

    def lock(self, package: str, version: str) -> Lock:
        """Raises LockMissing; the inventory check has reported a missing lock before any config is built."""
        return read_lock(self.locks_dir, package, version)

    def locks_needed(self, name: str) -> dict[str, tuple[str, str]]:
        """What the host installs from locks: {inventory key: (package, version)}."""
        if self.host(name).role == "backend":
            return {"model_server_version": (MODEL_SERVER, self.settings[name].model_server.version)}
        gateway = self.settings[name].gateway
        return {
            "gateway_node_version": (NODE, gateway.node_version),
            "gateway_openclaw_version": (OPENCLAW, gateway.openclaw_version),
        }

    @cached_property
    def names(self) -> SiteNames:
        base = self._site_wide.base
        return site_names(self.hosts, base.dns_domain, base.host_aliases, base.extra_hosts)

    def names_of(self, name: str) -> tuple[str, ...]:
        """The host's names as the site pins them: FQDN, short name, then its service aliases."""
        return self.names.of(name)

    def base_config(self, name: str) -> BaseConfig:
        return build_base_config(self.settings[name].base, self.host(name), self.names.hosts_entries)

    @property
    def backends(self) -> tuple[HostSpec, ...]:
        """Every backend holds the whole model: the frontends balance chats across them."""
        return tuple(h for h in self.hosts if h.role == "backend")

    @property
    def backend(self) -> HostSpec:
        """The first backend: its model settings stand for all (the inventory check holds them equal)."""
        return self.backends[0]

    @property
    def model_server_api_key_file(self) -> Path:
        return self.state_dir / "secrets" / "model-server-api-key"

    def model_server_config(self, name: str) -> ModelServerConfig:
        return build_model_server_config(
            self.settings[name].model_server,
            self.host(name),
            wheelhouse_dir=str(self.cache_dir / "wheelhouse"),
            api_key_file=str(self.model_server_api_key_file),
            lock=self.lock(MODEL_SERVER, self.settings[name].model_server.version),
        )

    def ingress_config(self, name: str) -> IngressConfig:
        frontends = tuple(
            self.pki_config(h.name).issuance.spec.subject_dn() for h in self.hosts if h.role == "frontend"
        )
        return build_ingress_config(
            self.settings[name].mtls,
            self.host(name).address,
            self.settings[name].model_server.port,
            frontends,
            monitor_dn=self.monitor_identity().spec.subject_dn(),
            api_key_file=str(self.model_server_api_key_file),
            health_upstream_path=health_path(self.settings[name].model_server),
            upstream_idle_close_s=IDLE_CLOSE_S,
        )

    def model_endpoint_name(self) -> str:
        """The name the frontends use for the model: the backends' shared service alias (or the first's FQDN)."""
        return self.names.services["backend"]

    def pool(self) -> tuple[PoolMember, ...]:
        """The backends as each frontend's balancer sees them, in inventory order."""
        return tuple(
            PoolMember(h.name, h.address, self.names_of(h.name)[0], slots(self.settings[h.name].model_server))
            for h in self.backends
        )

    def egress_config(self, name: str) -> EgressConfig:
        return build_egress_config(
            self.settings[name].mtls,
            self.model_endpoint_name(),
            self.pool(),
            address=self.host(name).address,
            monitor_address=self.monitor_host().address,
        )

    @property
    def gateway_token_file(self) -> Path:
        return self.state_dir / "secrets" / "gateway-token"

    def gateway_config(self, name: str) -> GatewayConfig:
        """The model's id, context and answer length come from the backend's settings: one source of truth."""
        model = self.settings[self.backend.name].model_server
        return build_gateway_config(
            self.settings[name].gateway,
            self.host(name).address,
            self.names_of(name),
            egress_port=self.settings[name].mtls.egress_port,
            model_id=model.model_alias,
            # llama-cpp-python's server does not parse tool calls back out of the model's answer; llama-server does.
            model_parses_tools=model.engine == LLAMA_SERVER,
            context_tokens=model.context_tokens,
            max_tokens=model.max_answer_tokens,
            token_file=str(self.gateway_token_file),
            model_api_key_file=str(self.model_server_api_key_file),
            metrics_dir=TEXTFILE_DIR,
            node_lock=self.lock(NODE, self.settings[name].gateway.node_version),
            openclaw_lock=self.lock(OPENCLAW, self.settings[name].gateway.openclaw_version),
            backup_copies_dir=str(self.state_dir / "backups" / name),
            tls=self.gateway_identity(name),
            certificate_metrics_unit=METRICS_UNIT,
        )

    def gateway_identity(self, name: str) -> Issuance:
        """The gateway's HTTPS certificate: the frontend's names and address, its own subject (OU=gateway), server
        use only, so it can never open a backend's door."""
        own = self.pki_config(name).issuance
        return replace(own, spec=replace(own.spec, role="gateway", client=False, server=True))

    @property
    def monitor(self) -> MonitorSettings:
        return self._site_wide.monitor

    @property
    def latency(self) -> LatencyTargets:
        return self._site_wide.latency

    def monitor_host(self) -> HostSpec:
        return monitor_host(self.monitor, self.hosts)

    def node_exporter_config(self, name: str) -> NodeExporterConfig:
        return build_node_exporter_config(self.monitor, self.host(name), self.monitor_host())

    def probe_config(self, name: str) -> ProbeConfig:
        backend = self.backend
        return build_probe_config(
            self.monitor,
            self.host(name),
            self.monitor_host(),
            self.backends,
            gateway_port=self.settings[name].gateway.port,
            backend_name=self.model_endpoint_name(),
            mtls_port=self.settings[name].mtls.port,
            backend_model=self.settings[backend.name].model_server.model_alias,
            issuance=self.pki_config(name).issuance,
            env_file=GATEWAY_ENV_FILE,
            certificate_metrics_unit=METRICS_UNIT,
        )

    def monitor_identity(self) -> Issuance:
        """The monitor's certificate: its host's names, its own subject (OU=monitor); a client toward the backends'
        /metrics, and the server of Prometheus' and Alertmanager's HTTPS."""
        monitor = self.monitor_host()
        own = self.pki_config(monitor.name).issuance
        return replace(own, spec=replace(own.spec, role="monitor", client=True, server=True))

    @property
    def alert_smtp_password_file(self) -> Path:
        """The mail relay's password: put there by a person (0600), never in the inventory."""
        return self.state_dir / "secrets" / "alert-smtp-password"

    @property
    def monitor_web_password_file(self) -> Path:
        """The password of Prometheus' and Alertmanager's UI and API (user ``clawlan``): made on first use, 0600."""
        return self.state_dir / "secrets" / "monitor-password"

    def alertmanager_config(self) -> AlertmanagerConfig:
        return build_alertmanager_config(self.monitor, self.monitor_host(), str(self.alert_smtp_password_file))

    def model_server_scrape(self) -> ModelServerScrape:
        servers = [
            (h, self.settings[h.name].model_server)
            for h in self.hosts
            if h.role == "backend" and self.settings[h.name].model_server.engine == LLAMA_SERVER
        ]
        return ModelServerScrape(
            targets=tuple(
                ScrapeTarget(h.name, f"{h.address}:{self.settings[h.name].mtls.port}", self.names_of(h.name)[0])
                for h, _ in servers
            ),
            identity=self.monitor_identity(),
            certificate_metrics_unit=METRICS_UNIT,
            slot_context_tokens=tuple((h.name, model.context_tokens) for h, model in servers),
        )

    def prometheus_config(self) -> PrometheusConfig:
        monitor = self.monitor_host()
        renew = self.settings[monitor.name].pki.renew_before_days
        balancers = tuple(
            ScrapeTarget(h.name, f"{h.address}:{self.settings[h.name].mtls.balancer_metrics_port}")
            for h in self.hosts
            if h.role == "frontend"
        )
        return build_prometheus_config(
            self.monitor,
            self.hosts,
            monitor,
            renew,
            AUDIT_MAX_AGE_S,
            self.model_server_scrape(),
            balancers,
            BALANCER_PROXY,
            str(self.monitor_web_password_file),
        )

    def pki_config(self, name: str) -> PkiConfig:
        host = self.host(name)
        own = issuance(self.settings[name].pki, self.state_dir, host.role, self.names_of(name), host.address,
                       self._site_wide.base.dns_domain)  # fmt: skip
        return PkiConfig(issuance=own, metrics_dir=TEXTFILE_DIR, revocations=self.revocations)

    def firewall_config(self, name: str) -> FirewallConfig:
        """What the box serves on its LAN address, and to whom: the same ports and peers its roles are given."""
        spec, monitor, monitor_address = self.host(name), self.monitor, self.monitor_host().address
        services: list[Opening] = [opening("node exporter", monitor.node_exporter_port, [monitor_address])]
        if spec.role == "frontend":
            gateway, mtls = self.settings[name].gateway, self.settings[name].mtls
            services += [
                opening("gateway (HTTPS)", gateway.port, gateway.client_networks),
                opening("latency probe metrics", monitor.probe_port, [monitor_address]),
                opening("balancer metrics", mtls.balancer_metrics_port, [monitor_address]),
            ]
        else:
            frontends = [h.address for h in self.hosts if h.role == "frontend"]
            services.append(opening("model (mutual TLS)", self.settings[name].mtls.port, [*frontends, monitor_address]))
        if name == self.monitor_host().name:
            services += [
                opening("Prometheus", monitor.prometheus_port, monitor.client_networks),
                opening("Alertmanager", monitor.alertmanager_port, monitor.client_networks),
            ]
        return build_firewall_config(self.settings[name].firewall, name, spec.address, spec.ssh_port,
                                     tuple(services))  # fmt: skip

    def certificate_paths(self, name: str) -> tuple[str, ...]:
        """Every certificate the site CA keeps issued on ``name``: its own, the probe's and the gateway's on a
        frontend, the monitor's on the monitor host. What these hold is what the revocation list spares."""
        paths = [HOST_CERT]
        if self.host(name).role == "frontend":
            paths += [PROBE_CERT, GATEWAY_CERT]
        if name == self.monitor_host().name:
            paths.append(MONITOR_CERT)
        return tuple(paths)

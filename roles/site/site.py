"""The whole site as the roles see it: one validated inventory turned into each host's role configs.

The one place roles meet: what one role needs of another (a path, a port, a name) is put into its config here,
so no role imports another. ``roles/inventory/`` loads and validates the inventory and builds the ``Site``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property

from roles.base.config import BaseConfig, build_base_config
from roles.common.locks import MODEL_SERVER, NODE, OPENCLAW
from roles.common.names import HostSpec
from roles.firewall.config import FirewallConfig
from roles.gateway.config import AUDIT_MAX_AGE_S, MODEL_API_KEY_ENV, TOKEN_ENV, GatewayConfig, build_gateway_config
from roles.gateway.config import ENV_FILE as GATEWAY_ENV_FILE
from roles.gateway.config import UNIT as GATEWAY_UNIT
from roles.model_server.config import (
    CAPTURE_SOCKET,
    IDLE_CLOSE_S,
    WARM_MARKER,
    ModelServerConfig,
    apt_components,
    build_model_server_config,
    health_path,
    slots,
)
from roles.model_server.config import UNIT as MODEL_SERVER_UNIT
from roles.model_server.decode_floors import decode_floor
from roles.model_server.settings import LLAMA_SERVER
from roles.monitor.alertmanager import UNIT as ALERTMANAGER_UNIT
from roles.monitor.alertmanager import AlertmanagerConfig, build_alertmanager_config
from roles.monitor.common import ScrapeTarget
from roles.monitor.node_exporter import TEXTFILE_DIR, NodeExporterConfig, build_node_exporter_config
from roles.monitor.node_exporter import UNIT as NODE_EXPORTER_UNIT
from roles.monitor.probe import UNIT as PROBE_UNIT
from roles.monitor.probe import ProbeConfig, build_probe_config
from roles.monitor.prometheus import UNIT as PROMETHEUS_UNIT
from roles.monitor.prometheus import ModelServerScrape, PrometheusConfig, build_prometheus_config
from roles.monitor.settings import MonitorSettings, with_alert_floor
from roles.mtls.config import (
    BALANCER_PROXY,
    BALANCER_UNIT,
    INGRESS_UNIT,
    WORKER_GROUP,
    EgressConfig,
    IngressConfig,
    PoolMember,
    build_egress_config,
    build_ingress_config,
)
from roles.pki.config import METRICS_UNIT, PkiConfig
from roles.site import exposure
from roles.site.control import ControlMachine
from roles.site.identities import Identities
from roles.site.settings import HostSettings, LatencyTargets
from roles.site.topology import Topology

# Long-running units whose state the node exporter reports and the unit-down alert watches, each named by its role;
# oneshots are left out: between runs they are inactive by design.
WATCHED_UNITS = (
    MODEL_SERVER_UNIT,
    GATEWAY_UNIT,
    PROBE_UNIT,
    INGRESS_UNIT,
    BALANCER_UNIT,
    PROMETHEUS_UNIT,
    ALERTMANAGER_UNIT,
    NODE_EXPORTER_UNIT,
)


@dataclass(frozen=True)
class Site:
    topology: Topology
    settings: Mapping[str, HostSettings]  # host name -> its settings
    # The site CA's revocation list (PEM) for this run: certificates it issued that no inventory host holds any more.
    # Read off the hosts by deploys/_site.py; empty where no deploy runs (the inventory check, unit tests).
    revocations: str = ""

    @classmethod
    def of(cls, hosts: tuple[HostSpec, ...], settings: Mapping[str, HostSettings]) -> Site:
        site_wide = settings[hosts[0].name]
        return cls(Topology.of(hosts, site_wide.base, site_wide.monitor), settings)

    @property
    def _site_wide(self) -> HostSettings:
        """Where the site reads its site-wide keys: the inventory check holds them equal on every host."""
        return self.settings[self.topology.hosts[0].name]

    @cached_property
    def monitor(self) -> MonitorSettings:
        """The site-wide monitor_* keys, an 'auto' decode alert floor made a number from the site's decode target."""
        return with_alert_floor(self._site_wide.monitor, self.latency.tokens_per_second)

    @cached_property
    def latency(self) -> LatencyTargets:
        """The latency suite's targets, an 'auto' decode floor made a number: the slowest device class among the
        backends (roles/model_server/decode_floors.py), for the targets are site-wide."""
        own = self._site_wide.latency
        if own.tokens_per_second != "auto":
            return own
        backends = tuple(self.settings[h.name].model_server for h in self.topology.backends)
        return replace(own, tokens_per_second=decode_floor(backends))

    @cached_property
    def control(self) -> ControlMachine:
        return ControlMachine.of(self._site_wide.site)

    @cached_property
    def identities(self) -> Identities:
        pki = {name: settings.pki for name, settings in self.settings.items()}
        return Identities(self.topology, pki, self.control.state_dir)

    def locks_needed(self, name: str) -> dict[str, tuple[str, str]]:
        """What the host installs from locks: {inventory key: (package, version)}."""
        if self.topology.host(name).role == "backend":
            return {"model_server_version": (MODEL_SERVER, self.settings[name].model_server.version)}
        gateway = self.settings[name].gateway
        return {
            "gateway_node_version": (NODE, gateway.node_version),
            "gateway_openclaw_version": (OPENCLAW, gateway.openclaw_version),
        }

    def base_config(self, name: str) -> BaseConfig:
        spec = self.topology.host(name)
        components = apt_components(self.settings[name].model_server) if spec.role == "backend" else ()
        return build_base_config(self.settings[name].base, spec, self.topology.names.hosts_entries, components)

    def model_server_config(self, name: str) -> ModelServerConfig:
        model = self.settings[name].model_server
        return build_model_server_config(
            model,
            self.topology.host(name),
            wheelhouse_dir=str(self.control.wheelhouse_dir),
            api_key_file=str(self.control.model_server_api_key_file),
            lock=self.control.lock(MODEL_SERVER, model.version),
            system_reserve_gib=self.settings[name].base.system_reserve_gib,
            # The prompt prefix capture reads what the ingress mirrors to it: no more than it admits, from its workers.
            max_request_mib=self.settings[name].mtls.max_body_mib,
            ingress_group=WORKER_GROUP,
        )

    def ingress_config(self, name: str) -> IngressConfig:
        own = self.settings[name]
        frontends = tuple(self.identities.host(h.name).spec.subject_dn() for h in self.topology.frontends)
        return build_ingress_config(
            own.mtls,
            self.topology.host(name).address,
            own.model_server.port,
            frontends,
            monitor_dn=self.identities.monitor().spec.subject_dn(),
            api_key_file=str(self.control.model_server_api_key_file),
            health_upstream_path=health_path(own.model_server),
            upstream_idle_close_s=IDLE_CLOSE_S,
            capture_socket=CAPTURE_SOCKET,
            warm_marker=WARM_MARKER,
        )

    def pool(self) -> tuple[PoolMember, ...]:
        """The backends as each frontend's balancer sees them, in inventory order."""
        return tuple(
            PoolMember(h.name, h.address, self.topology.names_of(h.name)[0], slots(self.settings[h.name].model_server))
            for h in self.topology.backends
        )

    def egress_config(self, name: str) -> EgressConfig:
        return build_egress_config(
            self.settings[name].mtls,
            self.topology.model_endpoint_name(),
            self.pool(),
            address=self.topology.host(name).address,
            monitor_address=self.topology.monitor_host.address,
        )

    def gateway_config(self, name: str) -> GatewayConfig:
        """The model's id, context and answer length come from the backend's settings: one source of truth."""
        own, model = self.settings[name], self.settings[self.topology.backend.name].model_server
        return build_gateway_config(
            own.gateway,
            self.topology.host(name).address,
            self.topology.names_of(name),
            egress_port=own.mtls.egress_port,
            model_id=model.model_alias,
            # llama-cpp-python's server does not parse tool calls back out of the model's answer; llama-server does.
            model_parses_tools=model.engine == LLAMA_SERVER,
            context_tokens=model.context_tokens,
            max_tokens=model.max_answer_tokens,
            backend_slots=sum(member.slots for member in self.pool()),
            token_file=str(self.control.gateway_token_file),
            model_api_key_file=str(self.control.model_server_api_key_file),
            metrics_dir=TEXTFILE_DIR,
            node_lock=self.control.lock(NODE, own.gateway.node_version),
            openclaw_lock=self.control.lock(OPENCLAW, own.gateway.openclaw_version),
            backup_copies_dir=str(self.control.backups_dir(name)),
            tls=self.identities.gateway(name),
            certificate_metrics_unit=METRICS_UNIT,
        )

    def node_exporter_config(self, name: str) -> NodeExporterConfig:
        return build_node_exporter_config(
            self.monitor, self.topology.host(name), self.topology.monitor_host, WATCHED_UNITS
        )

    def probe_config(self, name: str) -> ProbeConfig:
        own = self.settings[name]
        return build_probe_config(
            self.monitor,
            self.topology.host(name),
            self.topology.monitor_host,
            self.topology.backends,
            gateway_port=own.gateway.port,
            backend_name=self.topology.model_endpoint_name(),
            mtls_port=own.mtls.port,
            backend_model=self.settings[self.topology.backend.name].model_server.model_alias,
            issuance=self.identities.host(name),
            env_file=GATEWAY_ENV_FILE,
            token_env=TOKEN_ENV,
            model_api_key_env=MODEL_API_KEY_ENV,
            certificate_metrics_unit=METRICS_UNIT,
        )

    def alertmanager_config(self) -> AlertmanagerConfig:
        return build_alertmanager_config(
            self.monitor, self.topology.monitor_host, str(self.control.alert_smtp_password_file)
        )

    def model_server_scrape(self) -> ModelServerScrape:
        servers = [
            (h, self.settings[h.name])
            for h in self.topology.backends
            if self.settings[h.name].model_server.engine == LLAMA_SERVER
        ]
        return ModelServerScrape(
            targets=tuple(
                ScrapeTarget(h.name, f"{h.address}:{own.mtls.port}", self.topology.names_of(h.name)[0])
                for h, own in servers
            ),
            identity=self.identities.monitor(),
            certificate_metrics_unit=METRICS_UNIT,
            slot_context_tokens=tuple((h.name, own.model_server.context_tokens) for h, own in servers),
        )

    def prometheus_config(self) -> PrometheusConfig:
        monitor = self.topology.monitor_host
        balancers = tuple(
            ScrapeTarget(h.name, f"{h.address}:{self.settings[h.name].mtls.balancer_metrics_port}")
            for h in self.topology.frontends
        )
        return build_prometheus_config(
            self.monitor,
            self.topology.hosts,
            monitor,
            self.settings[monitor.name].pki.renew_before_days,
            AUDIT_MAX_AGE_S,
            self.model_server_scrape(),
            balancers,
            BALANCER_PROXY,
            str(self.control.monitor_web_password_file),
            WATCHED_UNITS,
            (self.latency.ttft_p99_s, self.latency.inter_token_p99_s),
            f"clawlan on {monitor.name}",
        )

    def pki_config(self, name: str) -> PkiConfig:
        return PkiConfig(issuance=self.identities.host(name), metrics_dir=TEXTFILE_DIR, revocations=self.revocations)

    def firewall_config(self, name: str) -> FirewallConfig:
        return exposure.firewall_config(self.topology, name, self.settings[name])

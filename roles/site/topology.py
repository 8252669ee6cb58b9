"""The site's hosts, what each is called, and which does what: the frontends, the backends, the monitor."""

from __future__ import annotations

from dataclasses import dataclass

from roles.base.settings import BaseSettings
from roles.common.names import HostSpec, SiteNames, site_names
from roles.monitor.common import monitor_host
from roles.monitor.settings import MonitorSettings


@dataclass(frozen=True)
class Topology:
    hosts: tuple[HostSpec, ...]  # in inventory order
    names: SiteNames
    domain: str  # of every appliance name
    monitor_host: HostSpec  # runs Prometheus and Alertmanager

    @classmethod
    def of(cls, hosts: tuple[HostSpec, ...], base: BaseSettings, monitor: MonitorSettings) -> Topology:
        """``base`` and ``monitor``: site-wide settings (the inventory check holds them equal on every host)."""
        names = site_names(hosts, base.dns_domain, base.host_aliases, base.extra_hosts)
        return cls(hosts, names, base.dns_domain, monitor_host(monitor, hosts))

    def host(self, name: str) -> HostSpec:
        return next(h for h in self.hosts if h.name == name)

    @property
    def backends(self) -> tuple[HostSpec, ...]:
        """Every backend holds the whole model: the frontends balance chats across them."""
        return tuple(h for h in self.hosts if h.role == "backend")

    @property
    def backend(self) -> HostSpec:
        """The first backend: its model settings stand for all (the inventory check holds them equal)."""
        return self.backends[0]

    @property
    def frontends(self) -> tuple[HostSpec, ...]:
        return tuple(h for h in self.hosts if h.role == "frontend")

    def names_of(self, name: str) -> tuple[str, ...]:
        """The host's names as the site pins them: FQDN, short name, then its service aliases."""
        return self.names.of(name)

    def model_endpoint_name(self) -> str:
        """The name the frontends use for the model: the backends' shared service alias (or the first's FQDN)."""
        return self.names.services["backend"]

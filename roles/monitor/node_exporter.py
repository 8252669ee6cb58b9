"""Debian's node exporter on every host: the host's metrics, our units' states and the textfiles other roles write.

Debian's unit is kept and extended with a drop-in (flags, hardening, an IP filter that admits the monitor only).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api import deploy

from roles.common.files import host_files
from roles.common.names import HostSpec
from roles.common.packages import install_packages
from roles.common.templates import rendered
from roles.common.units import dropin_path, service
from roles.monitor.settings import MonitorSettings

UNIT = "prometheus-node-exporter.service"
# Debian's node exporter reads this directory (its package creates it); the pki and gateway roles write metrics here.
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


@dataclass(frozen=True)
class NodeExporterConfig:
    settings: MonitorSettings
    listen_address: str
    monitor_address: str  # the one LAN address allowed to scrape
    # Long-running units whose state it reports (the unit-down alert reads them); oneshots are left out: between
    # runs they are inactive by design.
    watched_units: tuple[str, ...]

    def arguments(self) -> tuple[str, ...]:
        """Command-line flags: defaults plus the systemd collector for our units and the textfile collector."""
        # "[.]", not "\\.": systemd's ExecStart= would take the backslash for an escape of its own.
        unit_regex = "|".join(unit.replace(".", "[.]") for unit in self.watched_units)
        return (
            f"--web.listen-address={self.listen_address}:{self.settings.node_exporter_port}",
            f"--collector.textfile.directory={TEXTFILE_DIR}",
            "--collector.systemd",
            f"--collector.systemd.unit-include=({unit_regex})",
            # Restarts show a unit that flaps while 'active' looks fine at every scrape.
            "--collector.systemd.enable-restarts-metrics",
            # amdgpu's memory (GTT and VRAM, used and size) and busy %: the GPU alerts read them. Off by default;
            # a box without a GPU reports nothing. hwmon (temperature, power) is on by default.
            "--collector.drm",
        )


def build_node_exporter_config(
    settings: MonitorSettings, host: HostSpec, monitor: HostSpec, watched_units: tuple[str, ...]
) -> NodeExporterConfig:
    return NodeExporterConfig(settings, host.address, monitor.address, watched_units)


@deploy("Node exporter")
def node_exporter(config: NodeExporterConfig, installed_packages: frozenset[str] = frozenset()):
    # Written before the package is installed: its first start already listens where, and for whom, it should.
    dropin = host_files(dropin_path(UNIT)).put(
        name="Configure the node exporter: LAN listener for the monitor only, unit states, textfiles",
        src=rendered(
            "monitor/node-exporter.conf.j2", arguments=config.arguments(), monitor_address=config.monitor_address
        ),  # fmt: skip
        dest=dropin_path(UNIT),
        mode="644",
    )
    # No recommends: Debian's extra collectors add timers for smartctl, ipmitool and apt we do not alert on.
    install_packages("Install Debian's node exporter (and D-Bus, which it asks for unit states)",
                     ["prometheus-node-exporter", "dbus"], installed_packages, no_recommends=True)  # fmt: skip
    service(
        name=f"Run {UNIT} (restarted only when its drop-in changed)",
        unit=UNIT,
        daemon_reload_on=(dropin,),
        restart_on=(dropin,),
    )

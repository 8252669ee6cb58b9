"""The latency probe on each frontend: a real streamed chat through the gateway and one to the backends over mTLS,
every probe interval, as Prometheus metrics (time to first token, inter-token gaps, tokens/s, success).

The program is this role's programs/collector.py and stream.py, run by the host's Python 3 with Debian's
prometheus-client, as its own user with its own key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from pyinfra.api import deploy

from roles.common.accounts import system_user
from roles.common.files import host_files
from roles.common.names import HostSpec
from roles.common.packages import install_packages
from roles.common.templates import rendered
from roles.common.tls import CA_CERT, PKI_DIR, Issuance, own_identity
from roles.common.units import service
from roles.monitor.settings import MonitorSettings

UNIT = "clawlan-probe.service"
USER = "clawlan-probe"
DIR = "/opt/clawlan/probe"  # collector.py and the stream.py it imports
PROGRAM = f"{DIR}/collector.py"
CONFIG = "/etc/clawlan/probe.json"
SOURCES = Path(__file__).resolve().parent / "programs"
# The probe's RuntimeDirectory (systemd makes it at start and removes it at stop); the file lock in it keeps probe
# rounds and a latency check's chats off the single-slot model server at the same time.
RUNTIME_DIR = "clawlan-probe"
ROUND_LOCK = f"/run/{RUNTIME_DIR}/round.lock"
# The probe's own TLS identity: a key made on the frontend for the probe's user (the host key stays root's), with
# a certificate for the frontend's identity, which the backend admits.
KEY = f"{PKI_DIR}/probe.key"
CERT = f"{PKI_DIR}/probe.crt"


@dataclass(frozen=True)
class ProbeConfig:
    settings: MonitorSettings
    listen_address: str
    gateway_url: str
    backend_url: str
    backend_model: str
    issuance: Issuance  # the frontend's: the probe's certificate carries the same identity
    allowed_addresses: tuple[str, ...]  # the probe's IP filter: whom it scrapes for and whom it probes
    env_file: str  # the gateway's EnvironmentFile: the gateway token and the model API key the probe sends
    token_env: str  # their names in it (the gateway role's); the probe's configuration names them, never holds them
    model_api_key_env: str
    certificate_metrics_unit: str  # the pki role's expiry metric job: run again when the probe's certificate changes

    def probe_json(self) -> str:
        """The probe's configuration; secrets are names of environment variables, never values."""
        common = {"max_tokens": self.settings.probe_max_tokens, "timeout_s": self.settings.probe_timeout_s}
        return json.dumps(
            {
                "listen_address": self.listen_address,
                "port": self.settings.probe_port,
                "interval_s": self.settings.probe_interval_s,
                "round_lock_file": ROUND_LOCK,
                "targets": [
                    {
                        "name": "gateway",
                        "url": self.gateway_url,
                        "model": "openclaw",
                        "api_key_env": self.token_env,
                        "ca_file": CA_CERT,
                        **common,
                    },
                    {
                        "name": "backend",
                        "url": self.backend_url,
                        "model": self.backend_model,
                        "api_key_env": self.model_api_key_env,
                        "ca_file": CA_CERT,
                        "cert_file": CERT,
                        "key_file": KEY,
                        **common,
                    },
                ],
            },
            indent=2,
            sort_keys=True,
        )


def build_probe_config(
    settings: MonitorSettings,
    host: HostSpec,
    monitor: HostSpec,
    backends: tuple[HostSpec, ...],
    *,
    gateway_port: int,
    backend_name: str,
    mtls_port: int,
    backend_model: str,
    issuance: Issuance,
    env_file: str,
    token_env: str,
    model_api_key_env: str,
    certificate_metrics_unit: str,
) -> ProbeConfig:
    return ProbeConfig(
        settings=settings,
        listen_address=host.address,
        # The LAN address, as a user's browser reaches the gateway, not its loopback listener.
        gateway_url=f"https://{host.address}:{gateway_port}/v1/chat/completions",
        # The backends' shared name, pinned to each of them: the first that answers is probed.
        backend_url=f"https://{backend_name}:{mtls_port}/v1/chat/completions",
        backend_model=backend_model,
        issuance=issuance,
        allowed_addresses=tuple(sorted({host.address, monitor.address, *(b.address for b in backends)})),
        env_file=env_file,
        token_env=token_env,
        model_api_key_env=model_api_key_env,
        certificate_metrics_unit=certificate_metrics_unit,
    )


@deploy("Latency probe")
def probe(config: ProbeConfig, secrets_changes=(), tls_changes=(), installed_packages: frozenset[str] = frozenset()):
    """``secrets_changes`` and ``tls_changes`` are the operations that change what the probe reads at start."""
    install_packages("Install Python and Debian's prometheus-client for the probe",
                     ["python3", "python3-prometheus-client"], installed_packages)  # fmt: skip
    system_user(name=f"Create the {USER} system user", user=USER, home="/nonexistent")
    unit_path = f"/etc/systemd/system/{UNIT}"
    modules = ("collector.py", "stream.py")
    known = host_files(*(f"{DIR}/{module}" for module in modules), CONFIG, unit_path)
    programs = [
        known.put(name=f"Install the probe's {module}", src=str(SOURCES / module), dest=f"{DIR}/{module}",
                  mode="644")
        for module in modules
    ]  # fmt: skip
    settings = known.put(
        name=f"Write the probe configuration {CONFIG} (no secrets in it)",
        src=StringIO(config.probe_json() + "\n"),
        dest=CONFIG,
        mode="644",
    )
    unit = known.put(
        name=f"Install {UNIT}",
        src=rendered(
            "monitor/clawlan-probe.service.j2",
            user=USER,
            program=PROGRAM,
            config_file=CONFIG,
            runtime_directory=RUNTIME_DIR,
            env_file=config.env_file,
            allowed_addresses=config.allowed_addresses,
        ),
        dest=unit_path,
        mode="644",
    )
    key, certificate = own_identity("probe", KEY, CERT, USER, config.issuance, config.certificate_metrics_unit)
    changed = (*programs, settings, unit, key, certificate, *secrets_changes, *tls_changes)
    service(
        name=f"Run {UNIT} (restarted only when its program, configuration, unit, secrets or key changed)",
        unit=UNIT,
        daemon_reload_on=(unit,),
        restart_on=changed,
    )

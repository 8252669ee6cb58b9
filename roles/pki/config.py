"""What the pki role deploys on one host."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roles.pki.ca import CertSpec
from roles.pki.settings import PkiSettings

PKI_DIR = "/etc/clawlan/pki"
HOST_KEY = f"{PKI_DIR}/host.key"
HOST_CERT = f"{PKI_DIR}/host.crt"
CA_CERT = f"{PKI_DIR}/ca.crt"
METRICS_SCRIPT = "/usr/local/lib/clawlan/certificate-expiry-metrics"
METRICS_UNIT = "clawlan-certificate-metrics"  # .service writes the metric, .timer runs it hourly


@dataclass(frozen=True)
class PkiConfig:
    ca_dir: str  # on the control machine
    organization: str
    ca_days: int
    cert_days: int
    renew_before_days: int
    spec: CertSpec
    metrics_dir: str  # the node exporter's textfile directory: certificate expiry is written there


def build_pki_config(
    settings: PkiSettings, state_dir: Path, role: str, names: tuple[str, ...], address: str, metrics_dir: str
):
    """``names`` are the host's names as /etc/hosts pins them, FQDN first."""
    return PkiConfig(
        ca_dir=str(state_dir / "pki"),
        organization=settings.organization,
        ca_days=settings.ca_days,
        cert_days=settings.cert_days,
        renew_before_days=settings.renew_before_days,
        spec=CertSpec(
            common_name=names[0],
            role=role,
            organization=settings.organization,
            dns_names=names,
            ip_addresses=(address,),
            client=role == "frontend",
            server=True,
        ),
        metrics_dir=metrics_dir,
    )

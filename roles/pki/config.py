"""What the pki role deploys on one host."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roles.common.ca import CertSpec
from roles.common.tls import Issuance
from roles.pki.settings import PkiSettings

METRICS_SCRIPT = "/usr/local/lib/clawlan/certificate-expiry-metrics"
METRICS_UNIT = "clawlan-certificate-metrics"  # .service writes the metric, .timer runs it hourly


@dataclass(frozen=True)
class PkiConfig:
    issuance: Issuance  # this host's own certificate
    metrics_dir: str  # the node exporter's textfile directory: certificate expiry is written there
    revocations: str  # the site CA's revocation list (PEM), installed beside the CA certificate


def issuance(settings: PkiSettings, state_dir: Path, role: str, names: tuple[str, ...], address: str) -> Issuance:
    """The host's certificate; ``names`` are its names as the site pins them, FQDN first."""
    return Issuance(
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
    )

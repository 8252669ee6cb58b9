"""What the pki role deploys on one host."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from roles.common.ca import CertSpec, NameScope
from roles.common.names import ROLE_GROUPS, HostSpec
from roles.common.preflight import Preflight
from roles.common.settings import Problem
from roles.common.tls import Issuance
from roles.pki.settings import PkiSettings

METRICS_SCRIPT = "/usr/local/lib/clawlan/certificate-expiry-metrics"
METRICS_UNIT = "clawlan-certificate-metrics"  # .service writes the metric, .timer runs it hourly


@dataclass(frozen=True)
class PkiConfig:
    issuance: Issuance  # this host's own certificate
    metrics_dir: str  # the node exporter's textfile directory: certificate expiry is written there
    revocations: str  # the site CA's revocation list (PEM), installed beside the CA certificate


def issuance(settings: PkiSettings, state_dir: Path, role: str, names: tuple[str, ...], address: str,
             domain: str) -> Issuance:  # fmt: skip
    """The host's certificate; ``names`` are its names as the site pins them, FQDN first; ``domain`` the site's."""
    return Issuance(
        ca_dir=str(state_dir / "pki"),
        organization=settings.organization,
        ca_days=settings.ca_days,
        cert_days=settings.cert_days,
        renew_before_days=settings.renew_before_days,
        scope=NameScope(domain, settings.permitted_networks),
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


def preflight(settings: PkiSettings, spec: HostSpec) -> list[Problem]:
    return _scope_problems(settings, spec) + _lifetime_problems(settings, spec)


def _scope_problems(settings: PkiSettings, spec: HostSpec) -> list[Problem]:
    own = ipaddress.ip_address(spec.address)
    if any(own in ipaddress.ip_network(network) for network in settings.permitted_networks):
        return []
    return [Problem(spec.name, "pki_permitted_networks", f"none of them holds the host's address {spec.address}: the "
                    "site CA could not vouch for it")]  # fmt: skip


def _lifetime_problems(settings: PkiSettings, spec: HostSpec) -> list[Problem]:
    """Each renewal window inside the life it renews: a window as long as the life renews on every deploy, and its
    alert never ends."""
    renew, cert, crl, ca = settings.renew_before_days, settings.cert_days, settings.crl_days, settings.ca_days
    wrong = []
    if renew >= cert:
        wrong.append(("pki_renew_before_days", f"{renew} days is not shorter than pki_cert_days ({cert}): every deploy "
                      "would reissue every certificate and ClawlanCertificateExpiring would never end"))  # fmt: skip
    # A deploy signs the revocation list anew only in the second half of its life, while its alert warns within the
    # renewal window: a window over half that life raises an alert no deploy clears.
    if 2 * renew > crl:
        wrong.append(("pki_renew_before_days", f"{renew} days is more than half of pki_crl_days ({crl}): "
                      "ClawlanRevocationListExpiring would fire before a deploy signs the list anew"))  # fmt: skip
    if cert >= ca:
        wrong.append(("pki_cert_days", f"{cert} days is not shorter than pki_ca_days ({ca}): certificates would "
                      "outlive the site CA that signs them"))  # fmt: skip
    return [Problem(spec.name, key, message) for key, message in wrong]


PREFLIGHT = Preflight("pki", ROLE_GROUPS, preflight)

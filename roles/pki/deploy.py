"""Role pki: this host's key (made here, never copied) and its certificate from the site CA."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra.api import deploy

from roles.common.ca import trust_bundle
from roles.common.files import HostFiles, host_files, writing
from roles.common.packages import install_packages
from roles.common.templates import TEMPLATES, rendered
from roles.common.tls import CA_CERT, CRL, HOST_CERT, HOST_KEY, PKI_DIR, host_certificate, private_key
from roles.common.units import program_on_timer, program_on_timer_files
from roles.pki.config import METRICS_SCRIPT, METRICS_UNIT, PkiConfig

PROGRAMS = Path(__file__).resolve().parent / "programs"  # run on the hosts


@deploy("Site PKI")
def pki(config: PkiConfig, installed_packages: frozenset[str] = frozenset()):
    """Returns the operations that change TLS material, for the services that must reload on them."""
    issuance = config.issuance
    issuance.site_ca()  # made on first use
    trusted = trust_bundle(Path(issuance.ca_dir))  # two CAs while a rotation is under way
    install_packages("Install openssl", ["openssl"], installed_packages)
    known = host_files(PKI_DIR, CA_CERT, CRL, config.metrics_dir, *program_on_timer_files(METRICS_UNIT, METRICS_SCRIPT))
    known.directory(name=f"Create {PKI_DIR}", path=PKI_DIR, mode="755", user="root", group="root")
    private_key(name="Generate this host's private key on the host", path=HOST_KEY)
    ca_cert = _public_pem(known, "Install the site CA certificate (both CAs during a rotation)", trusted, CA_CERT)
    # Before the services that read it are configured: nginx and HAProxy refuse a configuration naming a missing file.
    revocations = _public_pem(
        known, "Install the site CA's revocation list (certificates no inventory host holds any more)",
        config.revocations, CRL,
    )  # fmt: skip
    certificate = writing(
        host_certificate(
            name="Keep this host's certificate issued by the site CA",
            key_path=HOST_KEY,
            cert_path=HOST_CERT,
            issuance=issuance,
        ),
        HOST_CERT,
    )
    _expiry_metrics(config, known, tls_changes=(ca_cert, revocations, certificate))
    return ca_cert, revocations, certificate


def _public_pem(known: HostFiles, name: str, pem: str, dest: str):
    """Public material from the control machine's CA, readable by every service that verifies a peer."""
    return known.put(name=name, src=StringIO(pem), dest=dest, mode="644", create_remote_dir=False)


def _expiry_metrics(config: PkiConfig, known: HostFiles, tls_changes):
    """Certificate expiry as a node exporter textfile metric, so an alert fires inside the renewal window."""
    known.directory(name=f"Create the textfile metrics directory {config.metrics_dir}", path=config.metrics_dir)
    program_on_timer(
        known,
        unit=METRICS_UNIT,
        program=METRICS_SCRIPT,
        program_src=str(PROGRAMS / "certificate-expiry-metrics.sh"),
        what="the certificate expiry metrics script",
        service_src=rendered(
            "pki/clawlan-certificate-metrics.service.j2",
            script=METRICS_SCRIPT,
            metrics_dir=config.metrics_dir,
            pki_dir=PKI_DIR,
        ),
        timer_src=str(TEMPLATES / "pki" / "clawlan-certificate-metrics.timer"),
        run_now="Write the certificate expiry metric now (a certificate or the script changed)",
        run_now_on=tls_changes,
    )

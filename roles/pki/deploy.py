"""Role pki: this host's key (made here, never copied) and its certificate from the site CA."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra.api import deploy

from roles.files import HostFiles, host_files
from roles.packages import install_packages
from roles.pki.ca import load_or_create_ca
from roles.pki.config import CA_CERT, HOST_CERT, HOST_KEY, METRICS_SCRIPT, METRICS_UNIT, PKI_DIR, PkiConfig
from roles.pki.operations import host_certificate, private_key
from roles.templates import TEMPLATES, rendered
from roles.units import timer_job, timer_job_files


@deploy("Site PKI")
def pki(config: PkiConfig, installed_packages: frozenset[str] = frozenset()):
    """Returns the operations that change TLS material, for the services that must reload on them."""
    ca = load_or_create_ca(Path(config.ca_dir), config.organization, config.ca_days)
    install_packages("Install openssl", ["openssl"], installed_packages)
    known = host_files(PKI_DIR, CA_CERT, config.metrics_dir, METRICS_SCRIPT, *timer_job_files(METRICS_UNIT))
    known.directory(name=f"Create {PKI_DIR}", path=PKI_DIR, mode="755", user="root", group="root")
    private_key(name="Generate this host's private key on the host", path=HOST_KEY)
    ca_cert = known.put(
        name="Install the site CA certificate",
        src=StringIO(ca.cert_pem),
        dest=CA_CERT,
        mode="644",
        create_remote_dir=False,
    )
    certificate = host_certificate(
        name="Keep this host's certificate issued by the site CA",
        key_path=HOST_KEY,
        cert_path=HOST_CERT,
        ca_dir=config.ca_dir,
        spec=config.spec,
        organization=config.organization,
        ca_days=config.ca_days,
        cert_days=config.cert_days,
        renew_before_days=config.renew_before_days,
    )
    _expiry_metrics(config, known, tls_changes=(ca_cert, certificate))
    return ca_cert, certificate


def _expiry_metrics(config: PkiConfig, known: HostFiles, tls_changes):
    """Certificate expiry as a node exporter textfile metric, so an alert fires inside the renewal window."""
    known.directory(name=f"Create the textfile metrics directory {config.metrics_dir}", path=config.metrics_dir)
    script = known.put(
        name="Install the certificate expiry metrics script",
        src=str(TEMPLATES / "pki" / "certificate-expiry-metrics.sh"),
        dest=METRICS_SCRIPT,
        mode="755",
    )
    timer_job(
        known,
        unit=METRICS_UNIT,
        service_src=rendered(
            "pki/clawlan-certificate-metrics.service.j2",
            script=METRICS_SCRIPT,
            metrics_dir=config.metrics_dir,
            pki_dir=PKI_DIR,
        ),
        timer_src=str(TEMPLATES / "pki" / "clawlan-certificate-metrics.timer"),
        run_now="Write the certificate expiry metric now (a certificate or the script changed)",
        run_now_on=(*tls_changes, script),
    )

"""Role pki: this host's key (made here, never copied) and its certificate from the site CA."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import files

from roles.packages import install_packages
from roles.pki.ca import load_or_create_ca
from roles.pki.config import CA_CERT, HOST_CERT, HOST_KEY, PKI_DIR, PkiConfig
from roles.pki.operations import host_certificate, private_key


@deploy("Site PKI")
def pki(config: PkiConfig, installed_packages: frozenset[str] = frozenset()):
    """Returns the operations that change TLS material, for the services that must reload on them."""
    ca = load_or_create_ca(Path(config.ca_dir), config.organization, config.ca_days)
    install_packages("Install openssl", ["openssl"], installed_packages)
    files.directory(name=f"Create {PKI_DIR}", path=PKI_DIR, mode="755", user="root", group="root")
    private_key(name="Generate this host's private key on the host", path=HOST_KEY)
    ca_cert = files.put(
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
    return ca_cert, certificate

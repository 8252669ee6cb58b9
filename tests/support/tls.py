"""TLS from the control machine to a site's services: trusting the site CA, and nothing else."""

from __future__ import annotations

import functools
import ssl

from cryptography import x509

from roles.common.ca import CA_CERT
from roles.site.site import Site


@functools.cache
def _context(ca_pem: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca_pem)


def site_tls(site: Site) -> ssl.SSLContext:
    """A client context that trusts the site CA (the control machine's copy, as it is now: a rotation replaces it)
    and checks names as a browser does."""
    return _context((site.control.state_dir / "pki" / CA_CERT).read_text())


def site_ca_cert(site: Site) -> x509.Certificate:
    """The site CA's certificate on the control machine, as it is now: the one the hosts must trust."""
    return x509.load_pem_x509_certificate((site.control.state_dir / "pki" / CA_CERT).read_bytes())


@functools.cache
def lab_site() -> Site:
    """The lab inventory's site, for helpers called without the suite's fixtures."""
    from lab.core import INVENTORY
    from lab.runner import REPO
    from roles.inventory.load import load_inventory, site_from_inventory

    return site_from_inventory(load_inventory(str(INVENTORY), cwd=str(REPO)))

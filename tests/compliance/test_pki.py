"""PKI: each host's key and certificate from the site CA (role pki; the probe's own pair from role monitor)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from roles.common.ca import CRL_FILE, vouched
from roles.common.tls import CA_CERT, CRL, HOST_CERT, HOST_KEY
from roles.monitor.probe import CERT as PROBE_CERT
from roles.monitor.probe import KEY as PROBE_KEY
from roles.monitor.probe import USER as PROBE_USER
from tests.compliance.conftest import control
from tests.support.tls import site_ca_cert

PAIRS = {"host": (HOST_KEY, HOST_CERT, "root"), "probe": (PROBE_KEY, PROBE_CERT, PROBE_USER)}


@pytest.fixture(scope="session")
def site_ca(site) -> x509.Certificate:
    """The CA on the control machine: the one the hosts must trust, not whatever sits on them."""
    return site_ca_cert(site)


def certificate(host, path) -> x509.Certificate:
    pem = host.file(path)
    assert pem.exists, f"{path} is missing"
    return x509.load_pem_x509_certificate(pem.content)


def skip_probe_on_backends(pair, spec):
    if pair == "probe" and spec.role != "frontend":
        pytest.skip("n/a: the probe runs on frontends")


@pytest.mark.parametrize("pair", PAIRS)
@control("PKI-01", "Private keys are 0600 and owned by their one user", impact=1.0)
def test_PKI_01_private_key_mode(host, spec, pair):
    """A key readable by anyone else lets them impersonate this box to the others."""
    skip_probe_on_backends(pair, spec)
    key_path, _, owner = PAIRS[pair]
    key = host.file(key_path)
    assert key.exists, f"{key_path} is missing"
    assert (key.user, key.mode) == (owner, 0o600), f"{key_path}: {key.user} {oct(key.mode)}"


@pytest.mark.parametrize("pair", PAIRS)
@control("PKI-02", "Certificates are issued by the site CA", impact=1.0)
def test_PKI_02_issued_by_the_site_ca(host, spec, site_ca, pair):
    """A certificate from another CA is either refused by the peers (an outage) or a sign of tampering."""
    skip_probe_on_backends(pair, spec)
    cert = certificate(host, PAIRS[pair][1])
    try:
        cert.verify_directly_issued_by(site_ca)
    except Exception as error:  # cryptography raises several types for "not this issuer"
        pytest.fail(f"{PAIRS[pair][1]} is not signed by the site CA ({cert.issuer.rfc4514_string()}): {error!r}")


@control("PKI-03", "The trusted CA on the host is the site CA", impact=0.9)
def test_PKI_03_trusted_ca(host, site_ca):
    """Peers are verified against this file: another CA here would admit certificates the site never issued."""
    assert certificate(host, CA_CERT) == site_ca


@control("PKI-04", "The certificate names the host's inventory names and address", impact=0.8)
def test_PKI_04_subject_alternative_names(host, site, host_name):
    """TLS checks the name a peer connects to: a host renamed or readdressed needs a new certificate. A site CA with
    name constraints vouches for the names under the site's domain only: the short names are left out."""
    spec = vouched(site.pki_config(host_name).issuance.spec, site_ca_cert(site))
    names = certificate(host, HOST_CERT).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = (set(names.get_values_for_type(x509.DNSName)), {str(a) for a in names.get_values_for_type(x509.IPAddress)})
    assert have == (set(spec.dns_names), set(spec.ip_addresses))


@pytest.mark.parametrize("pair", PAIRS)
@control("PKI-05", "Certificates are outside their renewal window", impact=0.6)
def test_PKI_05_not_expiring(host, site, host_name, spec, pair):
    """Inside the window a deploy would reissue it; a certificate there means no deploy has run for too long."""
    skip_probe_on_backends(pair, spec)
    window = dt.timedelta(days=site.pki_config(host_name).issuance.renew_before_days)
    not_after = certificate(host, PAIRS[pair][1]).not_valid_after_utc
    assert not_after - dt.datetime.now(dt.UTC) > window, f"expires {not_after:%Y-%m-%d}, within {window.days} days"


@pytest.mark.parametrize("pair", PAIRS)
@control("PKI-06", "Each certificate matches its private key", impact=0.9)
def test_PKI_06_certificate_matches_key(host, spec, pair):
    """A certificate for another key makes every TLS handshake from this box fail."""
    skip_probe_on_backends(pair, spec)
    key_path, cert_path, _ = PAIRS[pair]
    public = host.check_output(f"openssl pkey -in {key_path} -pubout")
    assert serialization.load_pem_public_key(public.encode()) == certificate(host, cert_path).public_key()


@control("PKI-07", "The probe's user cannot read the host's private key", impact=0.8, roles=("frontend",))
def test_PKI_07_probe_cannot_read_the_host_key(host):
    """The probe has a key of its own so that its process, which talks to the LAN, never holds the one nginx and the
    egress proxy use: its user trying to read that key must be refused."""
    # Anything read goes to /dev/null: a key that could be read never comes back over SSH or into a report.
    result = host.run(f"runuser -u {PROBE_USER} -- cat {HOST_KEY} >/dev/null")
    assert result.rc != 0, f"{PROBE_USER} can read {HOST_KEY}"
    assert "Permission denied" in result.stderr, f"not refused for its permissions: {result.stderr.strip()}"


@control("PKI-08", "The host has the site CA's current revocation list, and none of its certificates is on it",
         impact=0.8)  # fmt: skip
def test_PKI_08_revocation_list(host, site, host_name):
    """Backends refuse the clients it names and frontends the backends it names: an old list still admits a
    retired box's certificate, and a host whose own certificate is on it is locked out."""
    current = (Path(site.control.state_dir) / "pki" / CRL_FILE).read_bytes()
    on_host = host.file(CRL)
    assert on_host.exists and on_host.content == current, f"{CRL} is not the site CA's current list"
    revoked = {entry.serial_number for entry in x509.load_pem_x509_crl(current)}
    held = [
        path
        for path in site.identities.certificate_paths(host_name)
        if certificate(host, path).serial_number in revoked
    ]
    assert not held, f"revoked, yet in use: {', '.join(held)}"


@control("PKI-09", "The revocation lists the host checks are fresh", impact=0.7)
def test_PKI_09_revocation_list_fresh(host, site, host_name):
    """Each list (one per trusted CA) must run longer than the renewal window: a deploy signs it anew in the second
    half of its life, so one near its end means no deploy for too long; at its end nginx refuses every client."""
    window = dt.timedelta(days=site.pki_config(host_name).issuance.renew_before_days)
    now = dt.datetime.now(dt.UTC)
    text = host.file(CRL).content_string
    blocks = [f"-----BEGIN X509 CRL-----{block}" for block in text.split("-----BEGIN X509 CRL-----")[1:]]
    assert blocks, f"{CRL} holds no revocation list"
    for crl in (x509.load_pem_x509_crl(block.encode()) for block in blocks):
        assert crl.next_update_utc is not None and crl.next_update_utc - now > window, (
            f"the list of {crl.issuer.rfc4514_string()} runs out {crl.next_update_utc:%Y-%m-%d},"
            f" within {window.days} days"
        )

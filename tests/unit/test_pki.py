"""Site CA decisions: when a host certificate is issued, renewed or left alone."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from roles.common.ca import CertSpec, load_or_create_ca, reissue_reason, sign_csr
from tests.support.pki import SPEC, csr_for, host_key, public_pem

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
WINDOW = dt.timedelta(days=30)


@pytest.fixture
def ca(tmp_path):
    return load_or_create_ca(tmp_path / "state" / "pki", "clawlan", 3650)


@pytest.fixture
def issued(ca):
    key = host_key()
    return key, sign_csr(ca, csr_for(key), SPEC, days=365, now=NOW)


def test_ca_is_created_once_with_private_files(tmp_path, ca):
    again = load_or_create_ca(tmp_path / "state" / "pki", "clawlan", 3650)
    assert again.cert == ca.cert
    for path, mode in (
        (tmp_path / "state", 0o700),
        (tmp_path / "state/pki", 0o700),
        (tmp_path / "state/pki/ca.key", 0o600),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == mode
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0


def test_signed_certificate_carries_the_inventory_identity_not_the_csr(ca, issued):
    _, pem = issued
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert cert.subject.rfc4514_string() == "CN=front.home.arpa,OU=frontend,O=clawlan"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(SPEC.dns_names)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    cert.verify_directly_issued_by(ca.cert)


def test_backend_certificate_cannot_authenticate_a_client(ca):
    key = host_key()
    spec = CertSpec(
        "back.home.arpa", "backend", "clawlan", ("back.home.arpa",), ("10.0.0.20",), client=False, server=True
    )
    cert = x509.load_pem_x509_certificate(sign_csr(ca, csr_for(key), spec, 365, NOW).encode())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_a_tampered_csr_is_refused(ca):
    csr = csr_for(host_key())
    body = csr.splitlines()
    body[3] = body[3][:-4] + ("AAAA" if not body[3].endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        sign_csr(ca, "\n".join(body) + "\n", SPEC, 365, NOW)


def test_a_good_certificate_is_left_alone(ca, issued):
    key, pem = issued
    assert reissue_reason(pem, ca.cert, public_pem(key), SPEC, WINDOW, NOW + dt.timedelta(days=300)) is None


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "no certificate yet"),
        ("other CA", "not issued by this site's CA"),
        ("other key", "does not match the host's private key"),
        ("key not made yet", "does not match the host's private key"),
        ("address changed", "names or addresses"),
        ("alias added", "names or addresses"),
        ("role changed", "identity changed"),
        ("now a server too", "what the certificate is for changed"),
        ("near expiry", "within the renewal window"),
    ],
)
def test_reissue_reasons(tmp_path, ca, issued, case, expected):
    key, pem = issued
    public, spec, now = public_pem(key), SPEC, NOW + dt.timedelta(days=1)
    if case == "missing":
        pem = None
    elif case == "other CA":
        other = load_or_create_ca(tmp_path / "other" / "pki", "clawlan", 3650)
        pem = sign_csr(other, csr_for(key), SPEC, 365, NOW)
    elif case == "other key":
        public = public_pem(host_key())
    elif case == "key not made yet":
        public = None
    elif case == "address changed":
        spec = CertSpec(**{**SPEC.__dict__, "ip_addresses": ("10.0.0.99",)})
    elif case == "alias added":
        spec = CertSpec(**{**SPEC.__dict__, "dns_names": (*SPEC.dns_names, "extra.home.arpa")})
    elif case == "role changed":
        spec = CertSpec(**{**SPEC.__dict__, "role": "backend"})
    elif case == "now a server too":  # the monitor's certificate, once client only, now serves Prometheus' HTTPS
        spec = CertSpec(**{**SPEC.__dict__, "server": not SPEC.server})
    elif case == "near expiry":
        now = NOW + dt.timedelta(days=365 - 29)
    reason = reissue_reason(pem, ca.cert, public, spec, WINDOW, now)
    assert reason is not None and expected in reason


def test_renewal_window_edge(ca, issued):
    key, pem = issued
    just_outside = NOW + dt.timedelta(days=365 - 31)
    assert reissue_reason(pem, ca.cert, public_pem(key), SPEC, WINDOW, just_outside) is None

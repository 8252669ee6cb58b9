"""A new site CA vouches for the site's names only, and an existing CA is rotated with both trusted on the way."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from roles.common.ca import (
    NEXT_DIR,
    PREVIOUS_DIR,
    RETIRED_DIR,
    NameScope,
    RotationError,
    issued_serials,
    load_ca,
    load_or_create_ca,
    reissue_reason,
    revocation_list,
    rotate,
    rotation_step,
    sign_csr,
    trust_bundle,
    trusted_ca_directories,
)
from tests.support.pki import SPEC, csr_for, host_key, public_pem

SCOPE = NameScope("home.arpa", ("10.0.0.0/8",))


def verify(tmp_path: Path, cert: str, trusted: str, crl: str | None = None) -> subprocess.CompletedProcess:
    """OpenSSL's chain check, as nginx, HAProxy, Python and Node.js make it (name constraints included)."""
    (tmp_path / "leaf.crt").write_text(cert)
    (tmp_path / "trusted.crt").write_text(trusted)
    args = ["openssl", "verify", "-CAfile", str(tmp_path / "trusted.crt")]
    if crl is not None:
        (tmp_path / "crl.pem").write_text(crl)
        args += ["-crl_check", "-CRLfile", str(tmp_path / "crl.pem")]
    return subprocess.run([*args, str(tmp_path / "leaf.crt")], capture_output=True, text=True, check=False)


def san(cert_pem: str):
    value = (
        x509.load_pem_x509_certificate(cert_pem.encode())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    return sorted(value.get_values_for_type(x509.DNSName)), [str(a) for a in value.get_values_for_type(x509.IPAddress)]


def test_a_new_ca_is_limited_to_the_sites_domain_and_networks(tmp_path):
    ca = load_or_create_ca(tmp_path / "pki", "clawlan", 3650, SCOPE)
    constraints = ca.cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert {str(each.value) for each in constraints.value.permitted_subtrees} == {"home.arpa", "10.0.0.0/8"}


def test_its_certificates_carry_only_names_it_may_vouch_for_and_verify(tmp_path):
    """Short names ("front", "chat") are under no domain: a certificate naming them would fail every client."""
    ca = load_or_create_ca(tmp_path / "pki", "clawlan", 3650, SCOPE)
    key = host_key()
    cert = sign_csr(ca, csr_for(key), SPEC, 365)
    assert san(cert) == (["chat.home.arpa", "front.home.arpa"], ["10.0.0.10"])
    assert verify(tmp_path, cert, ca.cert_pem).returncode == 0
    # The deploy compares against the same names: a certificate it just issued is not reissued on the next run.
    assert reissue_reason(cert, ca.cert, public_pem(key), SPEC, renew_before=dt.timedelta(days=1)) is None


def test_trusting_it_vouches_for_no_other_name(tmp_path):
    """Even a certificate its own key signed for another name (a stolen CA key, a bug) is refused by every client
    that trusts the site CA: OpenSSL checks the leaf against the CA's constraints."""
    ca = load_or_create_ca(tmp_path / "pki", "clawlan", 3650, SCOPE)
    now = dt.datetime.now(dt.UTC)
    bank = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank.example")]))
        .issuer_name(ca.cert.subject)
        .public_key(host_key().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example")]), critical=False)
        .sign(ca.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    refused = verify(tmp_path, bank, ca.cert_pem)
    assert refused.returncode != 0 and "permitted subtree violation" in refused.stdout + refused.stderr
    # And the CA never signs such a name into a site certificate.
    assert san(sign_csr(ca, csr_for(host_key()), replace(SPEC, dns_names=("bank.example",)), 365))[0] == []


@pytest.fixture
def site_pki(tmp_path) -> Path:
    directory = tmp_path / "state" / "pki"
    load_or_create_ca(directory, "clawlan", 3650)  # an existing site's CA, made before name constraints
    return directory


def test_a_rotation_is_three_steps_in_order(site_pki):
    old = load_ca(site_pki)
    with pytest.raises(RotationError, match="at 'none'"):
        rotate(site_pki, "switch", "clawlan", 3650, SCOPE)
    new = rotate(site_pki, "begin", "clawlan", 3650, SCOPE)
    assert rotation_step(site_pki) == "begun" and load_ca(site_pki).cert == old.cert  # the old CA still signs
    assert trusted_ca_directories(site_pki) == [site_pki, site_pki / NEXT_DIR]
    assert trust_bundle(site_pki) == old.cert_pem + new.cert_pem
    with pytest.raises(RotationError, match="at 'begun'"):
        rotate(site_pki, "begin", "clawlan", 3650, SCOPE)
    assert rotate(site_pki, "switch", "clawlan", 3650, SCOPE).cert == new.cert
    assert rotation_step(site_pki) == "switched" and load_ca(site_pki).cert == new.cert
    assert trust_bundle(site_pki) == new.cert_pem + old.cert_pem
    assert load_ca(site_pki / PREVIOUS_DIR).cert == old.cert
    rotate(site_pki, "finish", "clawlan", 3650, SCOPE)
    assert rotation_step(site_pki) == "none" and trust_bundle(site_pki) == new.cert_pem
    (retired,) = (site_pki / RETIRED_DIR).iterdir()
    assert x509.load_pem_x509_certificate((retired / "ca.crt").read_bytes()) == old.cert
    assert not (retired / "ca.key").exists()  # the retired CA can sign nothing any more


def test_during_the_roll_old_and_new_certificates_verify_against_every_hosts_trust(site_pki, tmp_path):
    """Each host's ca.crt and crl.pem hold both CAs and both lists: a peer still on the old certificate and one on
    the new meet no refusal, whatever order the deploy reaches them in."""
    old_cert = sign_csr(load_ca(site_pki), csr_for(host_key()), SPEC, 365)
    rotate(site_pki, "begin", "clawlan", 3650, SCOPE)
    rotate(site_pki, "switch", "clawlan", 3650, SCOPE)
    new_cert = sign_csr(load_ca(site_pki), csr_for(host_key()), SPEC, 365)
    crls = "".join(
        revocation_list(load_ca(d), d, revoked=frozenset(issued_serials(d))) for d in trusted_ca_directories(site_pki)
    )
    for cert in (old_cert, new_cert):
        result = verify(tmp_path, cert, trust_bundle(site_pki), crls)
        assert result.returncode == 0, result.stdout + result.stderr
    rotate(site_pki, "finish", "clawlan", 3650, SCOPE)
    assert verify(tmp_path, old_cert, trust_bundle(site_pki)).returncode != 0  # the old CA is trusted no more

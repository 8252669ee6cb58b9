"""The site CA's revocation list: what it names, when it is rewritten, and that TLS really refuses what it names."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from roles.common.ca import (
    CRL_FILE,
    held_serials,
    issued_serials,
    load_or_create_ca,
    record_issued,
    revocation_list,
    sign_csr,
)
from tests.support.pki import SPEC, csr_for, host_key


@pytest.fixture
def directory(tmp_path) -> Path:
    return tmp_path / "state" / "pki"


@pytest.fixture
def ca(directory):
    return load_or_create_ca(directory, "clawlan", 3650)


def issue(ca, directory) -> str:
    cert = sign_csr(ca, csr_for(host_key()), SPEC, 365)
    record_issued(directory, cert)
    return cert


def serial_of(cert_pem: str) -> int:
    return x509.load_pem_x509_certificate(cert_pem.encode()).serial_number


def names(crl_pem: str) -> set[int]:
    return {entry.serial_number for entry in x509.load_pem_x509_crl(crl_pem.encode())}


def test_every_issued_certificate_is_recorded_by_serial(ca, directory):
    certs = [issue(ca, directory) for _ in range(3)]
    assert issued_serials(directory) == {serial_of(cert) for cert in certs}


def test_names_exactly_what_it_is_given_signed_by_the_ca_and_valid_for_its_days(ca, directory):
    old, kept = issue(ca, directory), issue(ca, directory)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pem = revocation_list(ca, directory, revoked=frozenset({serial_of(old)}), now=now, valid_days=30)
    crl = x509.load_pem_x509_crl(pem.encode())
    assert names(pem) == {serial_of(old)} and serial_of(kept) not in names(pem)
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.next_update_utc == now + dt.timedelta(days=30)  # nginx refuses every client once it is past


def test_signed_anew_once_half_its_life_has_passed_with_the_same_serials_and_dates(ca, directory):
    """Every deploy in the second half re-signs it: a site deployed now and then never lets it run out, and a stolen
    older list stops being accepted soon after."""
    serials = frozenset({serial_of(issue(ca, directory))})
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = revocation_list(ca, directory, serials, now=start, valid_days=90)
    assert revocation_list(ca, directory, serials, now=start + dt.timedelta(days=44), valid_days=90) == first
    later = start + dt.timedelta(days=46)
    for revoked in (serials, None):  # a --limit run (None) re-signs too, naming what the old one named
        renewed = revocation_list(ca, directory, revoked, now=later, valid_days=90)
        crl = x509.load_pem_x509_crl(renewed.encode())
        assert renewed != first and names(renewed) == serials
        assert crl.next_update_utc == later + dt.timedelta(days=90)
        assert crl[0].revocation_date_utc == x509.load_pem_x509_crl(first.encode())[0].revocation_date_utc
        later += dt.timedelta(days=46)


def test_a_list_made_to_last_as_long_as_the_ca_is_signed_anew(ca, directory):
    serials = frozenset({serial_of(issue(ca, directory))})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    revocation_list(ca, directory, serials, now=now, valid_days=3650)  # what earlier versions made
    renewed = x509.load_pem_x509_crl(revocation_list(ca, directory, None, now=now, valid_days=90).encode())
    assert renewed.next_update_utc == now + dt.timedelta(days=90) and names(renewed.public_bytes(
        serialization.Encoding.PEM).decode()) == serials  # fmt: skip


def test_never_valid_past_its_ca(ca, directory):
    far = ca.cert.not_valid_after_utc - dt.timedelta(days=10)
    crl = x509.load_pem_x509_crl(revocation_list(ca, directory, frozenset(), now=far, valid_days=90).encode())
    assert crl.next_update_utc == ca.cert.not_valid_after_utc


def test_kept_byte_for_byte_while_it_names_the_same_serials(ca, directory):
    """A new list would carry new dates and a new signature: every host would reload its TLS for nothing."""
    serials = frozenset({serial_of(issue(ca, directory))})
    first = revocation_list(ca, directory, serials)
    assert revocation_list(ca, directory, serials) == first
    assert revocation_list(ca, directory, revoked=None) == first  # a --limit run keeps it as it is


def test_a_newly_revoked_serial_is_added_and_earlier_dates_kept(ca, directory):
    first, second = issue(ca, directory), issue(ca, directory)
    before = x509.load_pem_x509_crl(revocation_list(ca, directory, frozenset({serial_of(first)})).encode())
    after = revocation_list(ca, directory, frozenset({serial_of(first), serial_of(second)}))
    assert names(after) == {serial_of(first), serial_of(second)}
    dates = {e.serial_number: e.revocation_date_utc for e in x509.load_pem_x509_crl(after.encode())}
    assert dates[serial_of(first)] == before[0].revocation_date_utc


def test_without_a_list_on_file_none_revokes_nothing(ca, directory):
    assert names(revocation_list(ca, directory, revoked=None)) == set()
    assert (directory / CRL_FILE).exists()


def test_held_certificates_signed_before_copies_were_kept_are_recorded_so_they_can_be_revoked(ca, directory):
    unrecorded = sign_csr(ca, csr_for(host_key()), SPEC, 365)
    assert held_serials(ca, directory, [unrecorded]) == {serial_of(unrecorded)}
    assert issued_serials(directory) == {serial_of(unrecorded)}


def test_a_broken_or_foreign_certificate_is_not_held(ca, directory, tmp_path):
    other = load_or_create_ca(tmp_path / "other", "clawlan", 3650)
    foreign = sign_csr(other, csr_for(host_key()), SPEC, 365)
    assert held_serials(ca, directory, ["not a certificate\n", foreign]) == frozenset()
    assert issued_serials(directory) == frozenset()  # never recorded: this CA cannot revoke it


def test_openssl_refuses_a_revoked_certificate_and_accepts_the_others(ca, directory, tmp_path):
    """What nginx and HAProxy do with ssl_crl / crl-file: OpenSSL's check of the leaf against the CA's list."""
    revoked, good = issue(ca, directory), issue(ca, directory)
    crl = tmp_path / "crl.pem"
    crl.write_text(revocation_list(ca, directory, frozenset({serial_of(revoked)})))
    (tmp_path / "ca.crt").write_text(ca.cert_pem)

    def verify(cert: str) -> subprocess.CompletedProcess:
        path = tmp_path / "leaf.crt"
        path.write_text(cert)
        args = ["openssl", "verify", "-crl_check", "-CRLfile", str(crl), "-CAfile", str(tmp_path / "ca.crt"), str(path)]
        return subprocess.run(args, capture_output=True, text=True, check=False)

    assert verify(good).returncode == 0, verify(good).stderr
    refused = verify(revoked)
    assert refused.returncode != 0 and "revoked" in (refused.stdout + refused.stderr)

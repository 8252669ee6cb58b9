"""The site CA on the control machine, built on `cryptography`: create once, sign host CSRs, judge certificates.

Host private keys never come here: hosts make their own keys and send CSRs. The CA's key lives in the
control machine's state directory (0700 directory, 0600 key) and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_KEY = "ca.key"
CA_CERT = "ca.crt"
ISSUED_DIR = "issued"  # every certificate the CA signed, named by serial: what a revocation list can name
CRL_FILE = "crl.pem"  # the revocation list the hosts have: rewritten when what it revokes changes, or it ages
CRL_DAYS = 90  # pki_crl_days' default
# A CA rotation rolls a new CA in with both trusted everywhere, so no host ever meets a certificate it cannot verify:
# "begin" makes the new CA in NEXT_DIR (trusted, signing nothing); "switch" makes it the CA that signs and moves the old
# one to PREVIOUS_DIR (trusted still, signing nothing); "finish" retires the old one. A deploy follows each step.
NEXT_DIR = "next"
PREVIOUS_DIR = "previous"
RETIRED_DIR = "retired"  # old CAs, kept (0700) for the record: nothing reads them
CA_FILES = (CA_KEY, CA_CERT, ISSUED_DIR, CRL_FILE)
# Certificates start a few minutes in the past so a host whose clock lags a little still accepts them.
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class CertSpec:
    """What a host's certificate must say: its identity and every name and address it answers to."""

    common_name: str
    role: str  # the organizational unit: nginx on the backend admits clients by it
    organization: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    client: bool  # may authenticate as a TLS client (frontends)
    server: bool

    def subject(self) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.role),
                x509.NameAttribute(NameOID.COMMON_NAME, self.common_name),
            ]
        )

    def subject_dn(self) -> str:
        """The subject as nginx prints $ssl_client_s_dn (RFC 2253 order)."""
        return self.subject().rfc4514_string()


@dataclass(frozen=True)
class NameScope:
    """What a new site CA may vouch for, as its name constraints: names under ``domain``, addresses in ``networks``.
    A person who trusts the site CA in a browser then trusts it for the appliance's names alone, never for a bank's."""

    domain: str
    networks: tuple[str, ...]

    def constraints(self) -> x509.NameConstraints:
        permitted = [x509.DNSName(self.domain), *(x509.IPAddress(ipaddress.ip_network(n)) for n in self.networks)]
        return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


@dataclass(frozen=True)
class SiteCA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def load_or_create_ca(directory: Path, organization: str, days: int, scope: NameScope | None = None) -> SiteCA:
    """The site CA in ``directory`` (inside the site state directory), created on first use, limited to ``scope``.
    A CA made before name constraints existed stays as it is (rotating it gives the site a limited one).

    Safe against parallel deploys. Both directories are kept 0700: they hold the CA key and secrets.
    """
    for private in (directory.parent, directory):
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(private, 0o700)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        key_path, cert_path = directory / CA_KEY, directory / CA_CERT
        if key_path.exists() and cert_path.exists():
            return load_ca(directory)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                # Its own name, not only its own key: while a rotation has two CAs trusted, OpenSSL finds issuers and
                # revocation lists by name first, and two CAs of one name make some lookups fail.
                x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} site CA {_key_id(key)}"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if scope is not None:
            builder = builder.add_extension(scope.constraints(), critical=True)
        cert = builder.sign(key, hashes.SHA256())
        _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), 0o600)  # fmt: skip
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return SiteCA(key, cert)


def sign_csr(ca: SiteCA, csr_pem: str, spec: CertSpec, days: int, now: dt.datetime | None = None) -> str:
    """A certificate for the CSR's key with the identity and names of ``spec`` (not the CSR's: the CA decides)."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    spec = vouched(spec, ca.cert)
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature does not verify: refusing to sign it")
    now = now or dt.datetime.now(dt.UTC)
    usages = _wanted_usages(spec)
    alt_names = [x509.DNSName(n) for n in spec.dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(spec.subject())
        .issuer_name(ca.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def record_issued(directory: Path, cert_pem: str) -> None:
    """Keep a copy of a certificate the CA just signed: once no host holds it, the revocation list names it."""
    serial = x509.load_pem_x509_certificate(cert_pem.encode()).serial_number
    issued = directory / ISSUED_DIR
    issued.mkdir(mode=0o700, exist_ok=True)
    _write(issued / f"{serial:x}.pem", cert_pem.encode(), 0o644)


def issued_serials(directory: Path) -> frozenset[int]:
    return frozenset(int(path.stem, 16) for path in (directory / ISSUED_DIR).glob("*.pem"))


def held_serials(ca: SiteCA, directory: Path, held_pems: list[str]) -> frozenset[int]:
    """The serials of the certificates hosts hold. One the CA signed but has no copy of (signed before it kept
    copies) is recorded now, so that it is revoked once its box is gone. A file that is not a certificate of this
    CA is not held."""
    serials = set()
    known = issued_serials(directory)
    for pem in held_pems:
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
            cert.verify_directly_issued_by(ca.cert)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if cert.serial_number not in known:
            record_issued(directory, pem)
        serials.add(cert.serial_number)
    return frozenset(serials)


def revocation_list(
    ca: SiteCA,
    directory: Path,
    revoked: frozenset[int] | None,
    now: dt.datetime | None = None,
    valid_days: int = CRL_DAYS,
) -> str:
    """The site CA's CRL, naming exactly ``revoked`` (None: whatever the one on file names, none without one), valid
    ``valid_days``. The one on file is kept while it names the same serials and has more than half of that left: a
    new one would have new dates and a new signature, and every host would reload its TLS for nothing. So a deploy in
    the second half of its life signs it anew; one that is never renewed runs out (nginx then refuses every client),
    which ClawlanRevocationListExpiring announces first. A short life bounds how long a stolen copy of an older list
    (one that does not yet name a revoked certificate) can be served."""
    path = directory / CRL_FILE
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        dates: dict[int, dt.datetime] = {}
        now = now or dt.datetime.now(dt.UTC)
        if path.exists():
            current = x509.load_pem_x509_crl(path.read_bytes())
            if current.is_signature_valid(ca.key.public_key()):
                dates = {entry.serial_number: entry.revocation_date_utc for entry in current}
                # More than half its life left, and no more than a whole one: a list made before this limit (valid
                # as long as the CA) is signed anew too.
                left = current.next_update_utc - now if current.next_update_utc else dt.timedelta(0)
                fresh = dt.timedelta(days=valid_days) / 2 < left <= dt.timedelta(days=valid_days + 1)
                if fresh and (revoked is None or frozenset(dates) == revoked):
                    return path.read_text()
                if revoked is None:
                    revoked = frozenset(dates)
        revoked = revoked or frozenset()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(now - BACKDATE)
            .next_update(min(now + dt.timedelta(days=valid_days), ca.cert.not_valid_after_utc))
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        )
        for serial in sorted(revoked):
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(dates.get(serial, now))
            builder = builder.add_revoked_certificate(entry.build())
        pem = builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        _write(path, pem, 0o644)
        return pem.decode()


def reissue_reason(
    cert_pem: str | None,
    ca_cert: x509.Certificate,
    public_key_pem: str | None,
    spec: CertSpec,
    renew_before: dt.timedelta,
    now: dt.datetime | None = None,
) -> str | None:
    """Why the host needs a new certificate, or None when the one it has is right."""
    if not cert_pem:
        return "the host has no certificate yet"
    now = now or dt.datetime.now(dt.UTC)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "the certificate was not issued by this site's CA"
    if public_key_pem is None or cert.public_key() != serialization.load_pem_public_key(public_key_pem.encode()):
        return "the certificate does not match the host's private key"
    spec = vouched(spec, ca_cert)
    if cert.subject != spec.subject():
        return f"the identity changed ({cert.subject.rfc4514_string()} -> {spec.subject_dn()})"
    have = _alt_names(cert)
    want = (frozenset(spec.dns_names), frozenset(ipaddress.ip_address(a) for a in spec.ip_addresses))
    if have != want:
        return "the names or addresses in the inventory changed"
    if _usages(cert) != frozenset(_wanted_usages(spec)):
        return "what the certificate is for changed (client, server)"
    if cert.not_valid_after_utc - now < renew_before:
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}, within the renewal window"
    return None


def _wanted_usages(spec: CertSpec) -> list[x509.ObjectIdentifier]:
    return [ExtendedKeyUsageOID.CLIENT_AUTH] * spec.client + [ExtendedKeyUsageOID.SERVER_AUTH] * spec.server


def _usages(cert: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


def vouched(spec: CertSpec, ca_cert: x509.Certificate) -> CertSpec:
    """``spec`` with only the names and addresses the CA may vouch for: all of them for a CA without name
    constraints; for a limited one, the names under its domain (not a short name like ``chat``) and the addresses in
    its networks. A certificate naming more would fail every client's verification."""
    try:
        permitted = ca_cert.extensions.get_extension_for_class(x509.NameConstraints).value.permitted_subtrees or []
    except x509.ExtensionNotFound:
        return spec
    domains = [each.value for each in permitted if isinstance(each, x509.DNSName)]
    networks = [each.value for each in permitted if isinstance(each, x509.IPAddress)]
    return replace(
        spec,
        dns_names=tuple(n for n in spec.dns_names if any(n == d or n.endswith(f".{d}") for d in domains)),
        ip_addresses=tuple(a for a in spec.ip_addresses if any(ipaddress.ip_address(a) in n for n in networks)),
    )


def not_after(cert_pem: str) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc


def _alt_names(cert: x509.Certificate):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    return frozenset(san.get_values_for_type(x509.DNSName)), frozenset(san.get_values_for_type(x509.IPAddress))


def _key_id(key: ec.EllipticCurvePrivateKey) -> str:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest[:4].hex()


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
    os.replace(partial, path)


class RotationError(RuntimeError):
    pass


def trusted_ca_directories(directory: Path) -> list[Path]:
    """The CAs every host trusts: the one that signs, then a CA rolling in or out during a rotation."""
    extra = [directory / NEXT_DIR, directory / PREVIOUS_DIR]
    return [directory, *(each for each in extra if (each / CA_CERT).exists())]


def load_ca(directory: Path) -> SiteCA:
    key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    return SiteCA(key, x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes()))


def trust_bundle(directory: Path) -> str:
    """The CA certificates a host trusts (its ca.crt): one, or two while a rotation is under way."""
    return "".join((each / CA_CERT).read_text() for each in trusted_ca_directories(directory))


def rotation_step(directory: Path) -> str:
    """Where a rotation stands: "none", "begun" (a new CA is trusted, not signing) or "switched" (the old one is
    trusted, not signing)."""
    if (directory / NEXT_DIR / CA_CERT).exists():
        return "begun"
    return "switched" if (directory / PREVIOUS_DIR / CA_CERT).exists() else "none"


def rotate(directory: Path, step: str, organization: str, days: int, scope: NameScope | None,
           now: dt.datetime | None = None) -> SiteCA:  # fmt: skip
    """One step of a CA rotation ("begin", "switch", "finish"); returns the CA the step brought in (or the one that
    signs). Each step is refused unless the one before it was taken; a deploy must follow each."""
    at = rotation_step(directory)
    expected = {"begin": "none", "switch": "begun", "finish": "switched"}
    if step not in expected:
        raise RotationError(f"unknown step {step!r}: begin, switch or finish")
    if at != expected[step]:
        raise RotationError(f"cannot {step}: the rotation is at {at!r} (the steps are begin, switch, finish)")
    if step == "begin":
        return load_or_create_ca(directory / NEXT_DIR, organization, days, scope)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if step == "switch":
            _move_ca(directory, directory / PREVIOUS_DIR)
            _move_ca(directory / NEXT_DIR, directory)
            (directory / NEXT_DIR).rmdir()
        else:
            stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
            retired = directory / RETIRED_DIR
            retired.mkdir(mode=0o700, exist_ok=True)
            (directory / PREVIOUS_DIR).rename(retired / stamp)
            # What the old CA signed is kept (its certificate, its records, its last list); its key, which could
            # still sign certificates someone's old trust store accepts, is not.
            _destroy(retired / stamp / CA_KEY)
    return load_ca(directory)


def _destroy(path: Path) -> None:
    """Overwrite a key file and remove it (on a journaling or copy-on-write disk the overwrite is best effort)."""
    if not path.exists():
        return
    with open(path, "r+b") as stream:
        stream.write(b"\0" * path.stat().st_size)
        stream.flush()
        os.fsync(stream.fileno())
    path.unlink()


def _move_ca(source: Path, target: Path) -> None:
    target.mkdir(mode=0o700, exist_ok=True)
    for name in CA_FILES:
        if (source / name).exists():
            (source / name).rename(target / name)
    (source / ".lock").unlink(missing_ok=True)

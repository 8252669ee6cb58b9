"""A host's side of the site CA, as the unit tests play it: its key, its certificate request and what it asks for."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from roles.common.ca import CertSpec

SPEC = CertSpec(
    common_name="front.home.arpa",
    role="frontend",
    organization="clawlan",
    dns_names=("front.home.arpa", "front", "chat.home.arpa", "chat"),
    ip_addresses=("10.0.0.10",),
    client=True,
    server=True,
)


def host_key():
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(key) -> str:
    # The CA takes the identity from the inventory (SPEC), never from the request: its subject is a placeholder.
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr")])
    )
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

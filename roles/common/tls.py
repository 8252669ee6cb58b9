"""The site's TLS material on a host: its paths, and the operations that keep a key (made on the host) and a
certificate from the site CA (the host makes the CSR, the control machine signs).

Shared by the pki role (each host's own identity), the monitor role (the probe's and the monitor's own keys) and the
gateway role (its HTTPS key).
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass
from pathlib import Path

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import server

from roles.common.ca import CertSpec, NameScope, load_or_create_ca, not_after, record_issued, reissue_reason, sign_csr
from roles.common.connection import sudo_arguments
from roles.common.files import writing
from roles.common.tls_facts import PublicKeyPem

PKI_DIR = "/etc/clawlan/pki"
HOST_KEY = f"{PKI_DIR}/host.key"
HOST_CERT = f"{PKI_DIR}/host.crt"
CA_CERT = f"{PKI_DIR}/ca.crt"
CRL = f"{PKI_DIR}/crl.pem"  # the site CA's revocation list: certificates no inventory host holds any more


@dataclass(frozen=True)
class Issuance:
    """One certificate the site CA keeps issued: for whom (``spec``) and on what terms."""

    ca_dir: str  # on the control machine
    organization: str
    ca_days: int
    cert_days: int
    renew_before_days: int
    spec: CertSpec
    scope: NameScope | None = None  # the limits a new site CA is made with

    def site_ca(self):
        """The site CA this certificate comes from (made on first use, limited to ``scope``)."""
        return load_or_create_ca(Path(self.ca_dir), self.organization, self.ca_days, self.scope)


def key_exposed(existing, owner: str) -> bool:
    """A key file others could have read (not 0600, or not its owner's): it is replaced, not just chmodded, since a
    copy may already be elsewhere."""
    return bool(existing) and (existing["mode"] != 600 or existing["user"] != owner)


@operation()
def private_key(path: str, owner: str = "root"):
    """Generate an EC P-256 private key on the host (0600, ``owner``'s), once. It never leaves the host. A key found
    readable by others is replaced (its certificate is reissued for the new one)."""
    existing = host.get_fact(File, path=path)
    if existing and not key_exposed(existing, owner):
        host.noop(f"{path} exists, 0600 {owner}")
        return
    owned = f"{shlex.quote(owner)}:{shlex.quote(owner)}"
    quoted, partial = shlex.quote(path), shlex.quote(f"{path}.partial")
    yield (
        f"umask 077 && rm -f {partial} && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
        f" -out {partial} && chown {owned} {partial} && mv {partial} {quoted}"
    )


@operation()
def host_certificate(key_path: str, cert_path: str, issuance: Issuance, key_owner: str = "root"):
    """Keep a certificate from the site CA for the host's own key, with the inventory's names.

    Reissued when missing, from another CA, for another key (or one private_key replaces now), for other names, or
    within ``renew_before_days`` of expiry; otherwise left alone.
    """
    ca = issuance.site_ca()
    cert_lines = host.get_fact(FileContents, path=cert_path)
    cert_pem = "\n".join(cert_lines) + "\n" if cert_lines else None
    if key_exposed(host.get_fact(File, path=key_path), key_owner):
        yield FunctionCommand(_issue, (key_path, cert_path, issuance), {})
        return
    reason = reissue_reason(
        cert_pem,
        ca.cert,
        host.get_fact(PublicKeyPem, key_path=key_path),
        issuance.spec,
        dt.timedelta(days=issuance.renew_before_days),
    )
    if reason is None:
        host.noop(f"certificate valid until {not_after(cert_pem):%Y-%m-%d}")
        return
    yield FunctionCommand(_issue, (key_path, cert_path, issuance), {})


def _issue(state, host, key_path: str, cert_path: str, issuance: Issuance):
    """Runs at execution time: fetch a CSR made from the host's key, sign it here, install the certificate."""
    sudo = sudo_arguments(host)
    ok, output = host.run_shell_command(f"openssl req -new -key {shlex.quote(key_path)} -subj /CN=csr", **sudo)
    if not ok:
        raise RuntimeError(f"could not make a CSR on {host.name}: {output.stderr}")
    ca = issuance.site_ca()
    certificate = sign_csr(ca, output.stdout + "\n", issuance.spec, issuance.cert_days)
    record_issued(Path(issuance.ca_dir), certificate)
    partial = shlex.quote(f"{cert_path}.partial")
    ok, output = host.run_shell_command(
        f"cat > {partial} <<'PEM'\n{certificate}PEM\nchmod 644 {partial} && mv {partial} {shlex.quote(cert_path)}",
        **sudo,
    )
    if not ok:
        raise RuntimeError(f"could not install the certificate on {host.name}: {output.stderr}")
    return True


def own_identity(who: str, key_path: str, cert_path: str, owner: str, issuance: Issuance, metrics_unit: str):
    """A TLS identity of its own: a key made on the host for ``owner`` (the host's key stays root's), a certificate
    from the site CA, and the expiry metric written again when the certificate changed."""
    key = private_key(name=f"Generate the {who}'s own TLS key on the host ({key_path}, 0600 {owner})",
                      path=key_path, owner=owner)  # fmt: skip
    certificate = host_certificate(
        name=f"Keep the {who}'s certificate issued by the site CA",
        key_path=key_path,
        cert_path=cert_path,
        issuance=issuance,
        key_owner=owner,
    )
    key, certificate = writing(key, key_path), writing(certificate, cert_path)
    server.shell(
        name=f"Write the certificate expiry metric now (the {who}'s certificate changed)",
        commands=[f"systemctl start {shlex.quote(metrics_unit + '.service')}"],
        _if=certificate.did_change,
    )
    return key, certificate

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


@operation()
def private_key(path: str, owner: str = "root"):
    """Generate an EC P-256 private key on the host (0600, ``owner``'s), once. It never leaves the host."""
    existing = host.get_fact(File, path=path)
    owned = f"{shlex.quote(owner)}:{shlex.quote(owner)}"
    if existing:
        if existing["mode"] != 600 or existing["user"] != owner:
            yield f"chown {owned} {shlex.quote(path)} && chmod 600 {shlex.quote(path)}"
        else:
            host.noop(f"{path} exists, 0600 {owner}")
        return
    quoted, partial = shlex.quote(path), shlex.quote(f"{path}.partial")
    yield (
        f"umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {partial} "
        f"&& chown {owned} {partial} && mv {partial} {quoted}"
    )


@operation()
def host_certificate(key_path: str, cert_path: str, issuance: Issuance):
    """Keep a certificate from the site CA for the host's own key, with the inventory's names.

    Reissued when missing, from another CA, for another key, for other names, or within
    ``renew_before_days`` of expiry; otherwise left alone.
    """
    ca = issuance.site_ca()
    cert_lines = host.get_fact(FileContents, path=cert_path)
    cert_pem = "\n".join(cert_lines) + "\n" if cert_lines else None
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
    )
    key, certificate = writing(key, key_path), writing(certificate, cert_path)
    server.shell(
        name=f"Write the certificate expiry metric now (the {who}'s certificate changed)",
        commands=[f"systemctl start {shlex.quote(metrics_unit + '.service')}"],
        _if=certificate.did_change,
    )
    return key, certificate

"""Facts about the site TLS material on a host: public material only (a public key), never a private key."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class PublicKeyPem(FactBase):
    """The public half of a private key file on the host, or None when there is no key (or no openssl yet)."""

    def command(self, key_path: str) -> str:
        key = shlex.quote(key_path)
        return f"if [ -f {key} ] && command -v openssl >/dev/null; then openssl pkey -in {key} -pubout; fi"

    def process(self, output):
        return "\n".join(output) + "\n" if output else None

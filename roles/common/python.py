"""Python on the hosts: pip's environment and virtualenvs, for every role that installs from PyPI."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

# pip trusts the host's CA store, like apt and curl do, not the bundle it ships: a site behind a
# TLS-inspecting proxy then needs its CA in one place only. It reads no configuration file and asks PyPI only,
# over https; what it takes is checked against a lock's hashes anyway.
PIP = (
    "PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/dev/null"
    " PIP_INDEX_URL=https://pypi.org/simple"
)


@operation()
def virtualenv(path: str):
    """A Python virtualenv at ``path``, made once with the system python3."""
    # bin/python3 is a symlink, which the File fact does not report: pyvenv.cfg is a plain file.
    if host.get_fact(File, path=f"{path}/pyvenv.cfg"):
        host.noop(f"{path} exists")
        return
    yield f"python3 -m venv {shlex.quote(path)}"

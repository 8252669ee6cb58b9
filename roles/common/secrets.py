"""Site secrets (API keys, tokens): made once on the control machine in the site state directory (0600), and
written to the hosts without ever being readable by anyone but their owner."""

from __future__ import annotations

import fcntl
import os
import secrets
import shlex
from io import StringIO
from pathlib import Path

import bcrypt
from pyinfra.api import FunctionCommand, OperationError, StringCommand, operation

from roles.common.connection import sudo_arguments
from roles.common.transfer import staged_name


def site_secret(path: str | Path) -> str:
    """The secret stored at ``path``, generated on first use. Its directory is kept 0700."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as stream:
                stream.write(secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()


def replace_site_secret(path: str | Path) -> None:
    """A new secret at ``path`` in place of the old one (which nothing keeps), and no hash of the old one left: the
    next deploy writes it to the hosts and restarts what reads it."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _write_private(path, secrets.token_urlsafe(32) + "\n")
        path.with_name(path.name + ".bcrypt").unlink(missing_ok=True)


def password_hash(path: str | Path, password: str) -> str:
    """The bcrypt hash of ``password`` (the secret at ``path``), made once and kept beside it (``<path>.bcrypt``,
    0600): a salted hash made anew on every deploy would rewrite the hosts' files every time."""
    path = Path(path)
    stored = path.with_name(path.name + ".bcrypt")
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stored.exists():
            hashed = stored.read_text().strip()
            if hashed and bcrypt.checkpw(password.encode(), hashed.encode()):
                return hashed
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
        _write_private(stored, hashed + "\n")
        return hashed


def _write_private(path: Path, text: str) -> None:
    """``text`` at ``path``, 0600 from its first byte, swapped in whole."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(text)
    partial.replace(path)


@operation()
def secret_file(path: str, content: str, user: str = "root", group: str = "root", mode: str = "600"):
    """``content`` at ``path``, owned ``user:group`` with ``mode``, and never readable by anyone else on the way.

    The content travels by SFTP into the login user's private staging directory (roles.common.transfer), is copied
    beside ``path`` under umask 077, given its owner and mode, then renamed over ``path``: the service reading it
    sees the old file or the new. (files.put without sudo writes the destination 0644 before it chmods it.)
    """
    yield FunctionCommand(_install_secret, (path, content, user, group, mode), {})


def _install_secret(state, host, path: str, content: str, user: str, group: str, mode: str) -> bool:
    staged = staged_name(host)
    if not host.put_file(StringIO(content), staged, _sudo=False):
        raise OperationError(f"could not upload the secret for {path} to {host.name}")
    new = f"{path}.clawlan-new"
    q = shlex.quote
    install = (
        f"umask 077 && cp {q(staged)} {q(new)} && chown {q(user)}:{q(group)} {q(new)} && chmod {q(mode)} {q(new)}"
        f" && mv -f {q(new)} {q(path)}"
    )
    sudo = sudo_arguments(host)
    installed, output = host.run_shell_command(StringCommand(install), **sudo)
    host.run_shell_command(StringCommand(f"rm -f {q(staged)}"), _sudo=False)
    if not installed:
        raise OperationError(f"could not install the secret {path} on {host.name}: {output.stderr}")
    return True

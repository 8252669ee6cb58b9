"""Files to and from a host, through no world-readable place and with no path read by a shell unquoted.

pyinfra's own transfers with ``_sudo`` stage in /tmp: ``put_file`` uploads to ``/tmp/pyinfra-<sha1>`` under the login
user's umask (0644 on Debian) and then runs ``sudo cp``; ``get_file`` runs ``sudo sh -c 'cp <remote> /tmp/pyinfra-…
&& chmod +r …'`` with ``<remote>`` not quoted at all. So a file name that anything on the host chose ran as root, and
every private file crossed /tmp readable by every local user.

Here a transfer with sudo stages in a directory of the login user's own (``~/.cache/clawlan-staging``, 0700, made
under umask 077), under a random name, and every remote path is one quoted word. Logged in as root, pyinfra reads and
writes the path itself over SFTP, and no shell is involved.
"""

from __future__ import annotations

import re
import shlex
import uuid
from io import StringIO
from pathlib import Path
from typing import IO, Any

from pyinfra.api import OperationError, StringCommand

from roles.common.connection import sudo_arguments

STAGING = ".cache/clawlan-staging"  # under the login user's home
# What a staging directory may look like: it is reported by the host, so it is checked before any command uses it.
_STAGING_PATH = re.compile(r"/[A-Za-z0-9._/-]{1,255}")


def make_staging_command() -> StringCommand:
    """Shell, as the login user: make the private staging directory and print its real path and the user's uid."""
    return StringCommand(f'umask 077 && mkdir -p "$HOME/{STAGING}" && cd "$HOME/{STAGING}" && chmod 700 . && pwd -P'
                         " && id -u")  # fmt: skip


def parse_staging(lines: list[str]) -> tuple[str, int]:
    """The staging directory and the login uid from ``make_staging_command``'s output, refusing anything odd."""
    if len(lines) < 2:
        raise ValueError(f"expected the staging directory and a uid, got {lines!r}")
    path, uid = lines[-2].strip(), lines[-1].strip()
    if not _STAGING_PATH.fullmatch(path) or "/../" in f"{path}/" or not uid.isdigit() or not uid.isascii():
        raise ValueError(f"refusing the staging directory {path!r} (uid {uid!r}) the host reported")
    return path, int(uid)


def staging(host) -> tuple[str, int]:
    """The login user's private staging directory on ``host`` and the login uid (made once per connection)."""
    made = getattr(host, "_clawlan_staging", None)
    if made is None:
        ok, output = host.run_shell_command(make_staging_command(), _sudo=False)
        if not ok:
            raise OperationError(f"could not make the staging directory ~/{STAGING} on {host.name}: {output.stderr}")
        try:
            made = parse_staging(output.stdout_lines)
        except ValueError as error:
            raise OperationError(f"{host.name}: {error}") from None
        host._clawlan_staging = made
    return made


def staged_name(host) -> str:
    return f"{staging(host)[0]}/{uuid.uuid4().hex}"


def put(host, src: str | IO[Any], remote: str) -> bool:
    """``src`` (a local path or a file object) to ``remote``, as pyinfra's ``put_file`` with the host's sudo, but
    staged privately."""
    sudo = sudo_arguments(host)
    if isinstance(src, StringIO):
        src = StringIO(src.getvalue())  # a fresh reader each time: a retried command sends it whole
    if not sudo:
        return host.put_file(src, remote)
    return host.put_file(src, remote, remote_temp_filename=staged_name(host), **sudo)


def fetch_command(remote: str, staged: str, uid: int) -> str:
    """Shell, run with sudo: a private copy of ``remote`` at ``staged`` that the login user (``uid``) may read."""
    return f"install -m 600 -o {int(uid)} -- {shlex.quote(remote)} {shlex.quote(staged)}"


def fetch(host, remote: str, local: str | Path) -> None:
    """``remote`` to the control machine's ``local`` (written 0600 beside it and renamed into place)."""
    local = Path(local)
    partial = local.with_name(f".{local.name}.partial")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    sudo = sudo_arguments(host)
    if not sudo:
        fetched = host.get_file(remote, str(partial))
    else:
        staged = staged_name(host)
        ok, output = host.run_shell_command(StringCommand(fetch_command(remote, staged, staging(host)[1])), **sudo)
        if not ok:
            partial.unlink(missing_ok=True)
            raise OperationError(f"could not read {remote} on {host.name}: {output.stderr}")
        try:
            fetched = host.get_file(staged, str(partial))
        finally:
            host.run_shell_command(StringCommand(f"rm -f -- {shlex.quote(staged)}"), _sudo=False)
    if not fetched:
        partial.unlink(missing_ok=True)
        raise OperationError(f"could not copy {remote} from {host.name}")
    partial.replace(local)

"""Site secrets (API keys, tokens), made once on the control machine in the site state directory (0600)."""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path


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

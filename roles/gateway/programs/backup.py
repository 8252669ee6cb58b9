#!/usr/bin/python3
"""After OpenClaw's own backup: prune the gateway user's backups (as that user) and publish the newest (as root).

    backup.py prune DIR KEPT            as the gateway user, in its own DIR: keep the KEPT newest archives
    backup.py publish DIR EXPORT KEPT   as root: copy the newest archive of DIR into root's EXPORT with its sha256

DIR belongs to the gateway's user, so anything running as that user (the agent, a plugin) chooses what is in it.
Nothing here hands a name from DIR to a shell: a name is an archive only if it has the exact form OpenClaw gives
(``<local time>-openclaw-backup.tar.gz``), files are opened without following links, and what reaches root's EXPORT
directory (which the deploy copies to the control machine) is a copy root made, under a name that passed that form,
beside the sha256 root computed while copying. A restore accepts an archive only with that record.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import sys

# OpenClaw 2026.9's buildBackupArchiveBasename: 2026-12-06T04-05-06.789+00-00-openclaw-backup.tar.gz
ARCHIVE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}[+-]\d{2}-\d{2}-openclaw-backup\.tar\.gz")
RECORD = ".sha256"
MAX_BYTES = 64 << 30  # a state archive larger than this is not one the deploy will carry


def archives(directory_fd: int) -> list[str]:
    """The archive names in the directory, oldest first (OpenClaw's names sort by time)."""
    return sorted(name for name in os.listdir(directory_fd) if ARCHIVE.fullmatch(name))


def prune(directory: str, kept: int) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in archives(fd)[:-kept]:
            os.unlink(name, dir_fd=fd)  # a name without "/": never outside the directory
    finally:
        os.close(fd)


def publish(directory: str, export: str, kept: int) -> str | None:
    """Copy the newest archive into ``export`` as ``<name>`` with ``<name>.sha256``; return its name."""
    source_dir = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    export_dir = os.open(export, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        names = archives(source_dir)
        if not names:
            return None
        name = names[-1]
        source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=source_dir)
        try:
            info = os.fstat(source)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
                raise SystemExit(f"{directory}/{name} is not a regular file of at most {MAX_BYTES} bytes")
            digest = _copy(source, export_dir, name)
        finally:
            os.close(source)
        _write(export_dir, name + RECORD, f"{digest}  {name}\n".encode())
        for old in archives(export_dir)[:-kept]:
            for stale in (old, old + RECORD):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale, dir_fd=export_dir)
        return name
    finally:
        os.close(source_dir)
        os.close(export_dir)


def _copy(source: int, export_dir: int, name: str) -> str:
    digest = hashlib.sha256()
    partial = f".{name}.partial"
    target = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=export_dir)
    try:
        while chunk := os.read(source, 1 << 20):
            digest.update(chunk)
            os.write(target, chunk)
        os.fsync(target)
    finally:
        os.close(target)
    os.rename(partial, name, src_dir_fd=export_dir, dst_dir_fd=export_dir)
    return digest.hexdigest()


def _write(directory_fd: int, name: str, content: bytes) -> None:
    partial = f".{name}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=directory_fd)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(partial, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)


def main(argv: list[str]) -> int:
    os.umask(0o077)
    if len(argv) == 3 and argv[0] == "prune":
        prune(argv[1], int(argv[2]))
    elif len(argv) == 4 and argv[0] == "publish":
        publish(argv[1], argv[2], int(argv[3]))
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

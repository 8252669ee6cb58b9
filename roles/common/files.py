"""File writes and files.directory that cost one remote command per role on a converged host, not four per file.

pyinfra's files.put reads two facts (File, then Sha1File) plus its parent directory's, and reads them again at
execution when a deploy asks ``will_change``. At ~50 ms per SSH command that was most of a no-op re-run. A role
names the paths it manages once; ``host_files`` reads owner, group, mode and SHA-1 of all of them in one command,
and ``put``/``directory`` leave out the operation when the host already matches. A file that differs is written
whole (``whole_file``), never half; anything else becomes the usual pyinfra operation.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import shlex
from io import StringIO
from pathlib import Path
from typing import IO, Any

from pyinfra import host
from pyinfra.api import FactBase, FunctionCommand, OperationError, operation
from pyinfra.operations import files

from roles.common import transfer
from roles.common.progress import ProgressReader
from roles.common.secrets import secret_file

_ABSENT = "-"


class FileStates(FactBase):
    """``{path: {"type": "file"|"dir"|"other"|None, "user", "group", "mode" (int), "sha1"}}`` for each path."""

    def command(self, paths: tuple[str, ...]) -> str:
        quoted = " ".join(shlex.quote(path) for path in paths)
        # One line per path, in order: "file USER GROUP MODE SHA1", "dir USER GROUP MODE", "other" or "-".
        return (
            f"for p in {quoted}; do"
            ' if [ -L "$p" ]; then echo other;'
            ' elif [ -f "$p" ]; then echo "file $(stat -c "%U %G %a" "$p") $(sha1sum < "$p" | cut -d" " -f1)";'
            ' elif [ -d "$p" ]; then echo "dir $(stat -c "%U %G %a" "$p")";'
            ' elif [ -e "$p" ]; then echo other;'
            f" else echo {_ABSENT}; fi; done"
        )

    def process(self, output):  # the lines, in the order of the paths; parse_states pairs them up
        return list(output)


def parse_states(paths: tuple[str, ...], lines: list[str]) -> dict[str, dict[str, Any]]:
    if len(lines) != len(paths):
        raise ValueError(f"expected one state line per path ({len(paths)}), got {len(lines)}")
    states: dict[str, dict[str, Any]] = {}
    for path, line in zip(paths, lines, strict=True):
        kind, *fields = line.split()
        if kind == "file" and len(fields) == 4:
            user, group, mode, sha1 = fields
            states[path] = {"type": "file", "user": user, "group": group, "mode": int(mode, 8), "sha1": sha1}
        elif kind == "dir" and len(fields) == 3:
            user, group, mode = fields
            states[path] = {"type": "dir", "user": user, "group": group, "mode": int(mode, 8)}
        else:
            states[path] = {"type": None if kind == _ABSENT else "other"}
    return states


class Unchanged:
    """Stands for an operation left out because the host already matched: it will not and did not change."""

    will_change = False

    def __init__(self, *paths: str) -> None:
        self.clawlan_paths = paths

    def did_change(self) -> bool:
        return False

    def did_not_change(self) -> bool:
        return True


UNCHANGED = Unchanged()


def writing(op, *paths: str):
    """``op``, marked as the one that writes ``paths``: a service restarted or reloaded when ``op`` changed watches
    them (units.service), so a deploy killed between this write and that restart is finished by the next."""
    if isinstance(op, Unchanged):
        return Unchanged(*paths)
    op.clawlan_paths = paths
    return op


def written_paths(ops) -> tuple[str, ...]:
    """The paths that ``ops`` (operations marked by ``writing``, or left out as unchanged) write."""
    return tuple(dict.fromkeys(path for op in ops for path in getattr(op, "clawlan_paths", ())))


def content_sha1(src: str | IO[Any]) -> str:
    if isinstance(src, StringIO):
        return hashlib.sha1(src.getvalue().encode()).hexdigest()
    if isinstance(src, str):
        return hashlib.sha1(Path(src).read_bytes()).hexdigest()
    raise TypeError(f"src must be a local path or a StringIO, got {type(src).__name__}")


def _attributes_match(state: dict[str, Any], mode: str | None, user: str | None, group: str | None) -> bool:
    return (
        (mode is None or state["mode"] == int(str(mode), 8))
        and (user is None or state["user"] == user)
        and (group is None or state["group"] == group)
    )


def host_files(*paths: str) -> HostFiles:
    """The current host's state of ``paths`` (every path the role will put or create), read in one command."""
    unique = tuple(dict.fromkeys(paths))
    return HostFiles(parse_states(unique, host.get_fact(FileStates, paths=unique) or []))


class HostFiles:
    """The state of a role's paths on a host; ``put``/``directory``/``absent`` leave out what already matches."""

    def __init__(self, states: dict[str, dict[str, Any]]) -> None:
        self.states = states

    def _state(self, path: str) -> dict[str, Any]:
        if path not in self.states:
            raise KeyError(f"{path} was not named when the role's HostFiles was made")
        return self.states[path]

    def matches_file(self, dest: str, sha1: str, mode=None, user=None, group=None) -> bool:
        state = self._state(dest)
        return state["type"] == "file" and state["sha1"] == sha1 and _attributes_match(state, mode, user, group)

    def put(self, *, name: str, src: str | IO[Any], dest: str, mode=None, user=None, group=None, **kwargs):
        """``src`` at ``dest`` (swapped in whole), left out when the host's file has this content, mode and owner."""
        if self.matches_file(dest, content_sha1(src), mode, user, group):
            return Unchanged(dest)
        return writing(whole_file(name=name, src=src, dest=dest, mode=mode, user=user, group=group, **kwargs), dest)

    def secret(self, *, name: str, content: str, dest: str, mode="600", user="root", group="root"):
        """secret_file (never world-readable on the way), left out when the host's file matches already."""
        if self.matches_file(dest, hashlib.sha1(content.encode()).hexdigest(), mode, user, group):
            return Unchanged(dest)
        return writing(secret_file(name=name, path=dest, content=content, user=user, group=group, mode=mode), dest)

    def directory(self, *, name: str, path: str, mode=None, user=None, group=None, **kwargs):
        """files.directory, left out when the host has this directory with this mode and owner already."""
        state = self._state(path)
        if state["type"] == "dir" and _attributes_match(state, mode, user, group):
            return UNCHANGED
        return files.directory(name=name, path=path, mode=mode, user=user, group=group, **kwargs)

    def absent(self, *, name: str, path: str, **kwargs):
        """files.file(present=False), left out when there is nothing at ``path``."""
        if self._state(path)["type"] is None:
            return UNCHANGED
        return files.file(name=name, path=path, present=False, **kwargs)


@operation()
def whole_file(src: str | IO[Any], dest: str, mode=None, user=None, group=None, create_remote_dir: bool = True):
    """``src`` at ``dest``, never half-written: it is copied beside ``dest``, given its owner and mode, flushed to
    disk and renamed over ``dest``, so a deploy killed (or a box losing power) at any point leaves the old file or
    the new one, which a service restarted by systemd meanwhile reads whole. pyinfra's files.put writes into
    ``dest`` itself. What ``HostFiles.put`` found matching never gets here."""
    q = shlex.quote
    new = f"{dest}.clawlan-new"
    if create_remote_dir:
        yield f"mkdir -p {q(posixpath.dirname(dest))}"
    yield upload(src, new)
    steps = []
    if user:
        steps.append(f"chown {q(user + (':' + group if group else ''))} {q(new)}")
    elif group:
        steps.append(f"chgrp {q(group)} {q(new)}")
    if mode is not None:
        steps.append(f"chmod {q(str(mode))} {q(new)}")
    else:  # keep the mode the file had, as files.put does
        steps.append(f"{{ ! [ -e {q(dest)} ] || chmod --reference={q(dest)} {q(new)}; }}")
    steps += [f"sync {q(new)}", f"mv -f {q(new)} {q(dest)}"]
    yield " && ".join(steps)


def upload(src: str | IO[Any], remote: str, progress: str = "") -> FunctionCommand:
    """A command for an operation's generator: copy ``src`` (a local path or a StringIO) to ``remote`` when it runs.

    For files an operation writes into a directory it has just made (nothing there to compare first). ``progress``:
    a label under which a large file's transfer says how far it is as it goes (roles/common/progress.py).
    """
    return FunctionCommand(_upload, (src, remote, progress), {})


def _upload(state, host, src, remote: str, progress: str = "") -> bool:
    reader = ProgressReader(host, progress, src) if progress and isinstance(src, str) else None
    try:
        sent = transfer.put(host, reader or src, remote)
    finally:
        if reader is not None:
            reader.close()
    if not sent:
        raise OperationError(
            f"could not copy {src if reader else getattr(src, 'name', 'a file')} to {host.name}:{remote}"
        )
    return True


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file on the control machine (a model, a wheelhouse, a backup copy), read once per version."""
    stat = os.stat(path)
    return _sha256_file(str(path), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _sha256_file(path: str, size: int, mtime_ns: int) -> str:
    """Keyed by size and mtime too, so a file replaced during a run is hashed again."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""The gateway's backups: finding the newest, and unpacking openclaw's archive layout into the state directory."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest
from pyinfra.api import OperationError

from roles.gateway.config import BACKUP_SUFFIX, STATE_DIR
from roles.gateway.operations import NewestBackup, backup_version, newest_copy, unpack_command

ROOT = "2026-11-24T07-49-49.556+00-00-openclaw-backup"


def archive(path, files: dict[str, bytes]) -> None:
    """An archive laid out as `openclaw backup create` writes one (its dry run's archivePath)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {f"{ROOT}/manifest.json": b"{}", **files}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))


def test_the_state_directory_is_unpacked_in_place_and_nothing_else(tmp_path):
    state = tmp_path / "var" / "lib" / "openclaw"
    state.mkdir(parents=True)
    path = tmp_path / f"x{BACKUP_SUFFIX}"
    payload = f"{ROOT}/payload/posix{state}"
    archive(path, {f"{payload}/state/openclaw.sqlite": b"sessions", f"{payload}/agents/main/a.json": b"{}",
                   f"{ROOT}/payload/posix/etc/elsewhere": b"not ours"})  # fmt: skip
    subprocess.run(["sh", "-c", unpack_command(str(path), str(state))], check=True)
    assert (state / "state" / "openclaw.sqlite").read_bytes() == b"sessions"
    assert (state / "agents" / "main" / "a.json").exists()
    assert (state / "state" / "openclaw.sqlite").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in state.iterdir()) == ["agents", "state"]  # no manifest, nothing from elsewhere


def test_the_unpack_depth_follows_the_state_directory():
    assert "--strip-components 6" in unpack_command(
        "/b/x.tar.gz", STATE_DIR
    )  # root, payload, posix, var, lib, openclaw


def test_the_newest_copy_is_the_latest_timestamp(tmp_path):
    for stamp in ("2026-11-22T03-00-00.000+00-00", "2026-11-24T03-00-00.000+00-00", "2026-11-23T03-00-00.000+00-00"):
        (tmp_path / f"{stamp}{BACKUP_SUFFIX}").write_bytes(b"")
    (tmp_path / f".2026-11-25T03-00-00.000+00-00{BACKUP_SUFFIX}.partial").write_bytes(b"")  # an unfinished copy
    assert newest_copy(str(tmp_path)).name.startswith("2026-11-24")
    assert newest_copy(str(tmp_path / "none")) is None


def test_the_newest_backup_on_the_host_is_a_bare_name_or_none():
    fact = NewestBackup()
    assert fact.process([f"/var/backups/clawlan-gateway/a{BACKUP_SUFFIX}"]) == f"a{BACKUP_SUFFIX}"
    assert fact.process([]) is None


def test_the_version_that_made_a_backup_is_read_from_its_manifest(tmp_path):
    """A backup made by a newer openclaw than the pinned one is refused before it is restored: openclaw will not start
    on state a newer version migrated."""
    path = tmp_path / f"x{BACKUP_SUFFIX}"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {f"{ROOT}/payload/posix/var/lib/openclaw/manifest.json": b'{"runtimeVersion": "0"}',
                           f"{ROOT}/manifest.json": b'{"runtimeVersion": "2026.9.6"}'}.items():  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert backup_version(path) == "2026.9.6"  # the archive's own manifest, not a file of the state
    empty = tmp_path / f"empty{BACKUP_SUFFIX}"
    archive(empty, {})
    with pytest.raises(OperationError, match="runtimeVersion|manifest"):
        backup_version(empty)

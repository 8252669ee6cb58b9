"""The gateway's backups: finding the newest, and unpacking openclaw's archive layout into the state directory."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile

import pytest
from pyinfra.api import OperationError

from roles.gateway.config import BACKUP_SUFFIX, STATE_DIR
from roles.gateway.operations import NewestBackup, backup_version, checked_copy, newest_copy, unpack_command
from roles.gateway.programs import backup as backup_program
from tests.support.hostile import HOSTILE_FILE_NAMES

ROOT = "2026-11-24T07-49-49.556+00-00-openclaw-backup"
HOSTILE_NAMES = tuple(name for name in HOSTILE_FILE_NAMES if "/" not in name) + (
    f"{ROOT}.tar.gz;id",
    f"-{ROOT}.tar.gz",
    f"{ROOT}.tar.gz\n",
    f" {ROOT}.tar.gz",
    f"{ROOT}.tar.gz.partial",
)


def archive(path, files: dict[str, bytes]) -> None:
    """An archive laid out as `openclaw backup create` writes one (its dry run's archivePath)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {f"{ROOT}/manifest.json": b"{}", **files}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))


def unpacked(tmp_path, state_files: dict[str, bytes], elsewhere: dict[str, bytes] | None = None):
    """A state directory under ``tmp_path`` after unpack_command ran on an archive holding ``state_files`` (paths
    inside the state directory) and ``elsewhere`` (paths in the archive)."""
    state = tmp_path / "var" / "lib" / "openclaw"
    state.mkdir(parents=True)
    path = tmp_path / f"x{BACKUP_SUFFIX}"
    payload = f"{ROOT}/payload/posix{state}"
    archive(path, {**{f"{payload}/{name}": data for name, data in state_files.items()}, **(elsewhere or {})})
    subprocess.run(["sh", "-c", unpack_command(str(path), str(state))], check=True)
    return state


def test_the_state_directory_is_unpacked_in_place_and_nothing_else(tmp_path):
    state = unpacked(tmp_path, {"state/openclaw.sqlite": b"sessions", "agents/main/a.json": b"{}"},
                     {f"{ROOT}/payload/posix/etc/elsewhere": b"not ours"})  # fmt: skip
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


def test_the_newest_backup_on_the_host_is_one_of_openclaws_names_or_none():
    """The host's listing is its word: only a name of OpenClaw's exact form is taken, whatever else is there."""
    fact = NewestBackup()
    good = f"{ROOT}.tar.gz"
    assert fact.process([good, *HOSTILE_NAMES]) == good
    assert fact.process(HOSTILE_NAMES) is None
    assert fact.process([]) is None


@pytest.fixture
def backups(tmp_path):
    """The gateway user's backup directory, with archives and hostile things planted beside them, and root's export."""
    own, export = tmp_path / "own", tmp_path / "export"
    own.mkdir()
    export.mkdir(mode=0o700)
    for stamp in ("2026-11-22T03-00-00.000+00-00", "2026-11-24T03-00-00.000+00-00", "2026-11-23T03-00-00.000+00-00"):
        (own / f"{stamp}{BACKUP_SUFFIX}").write_bytes(stamp.encode())
    for name in HOSTILE_NAMES:
        (own / name).write_bytes(b"planted")
    (tmp_path / "secret").write_bytes(b"root's")
    return own, export


def test_publishing_copies_the_newest_archive_and_records_its_hash(backups):
    own, export = backups
    name = backup_program.publish(str(own), str(export), 2)
    assert name == f"2026-11-24T03-00-00.000+00-00{BACKUP_SUFFIX}"
    assert (export / name).read_bytes() == b"2026-11-24T03-00-00.000+00-00"
    assert (
        export / f"{name}.sha256"
    ).read_text() == f"{hashlib.sha256(b'2026-11-24T03-00-00.000+00-00').hexdigest()}  {name}\n"
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in export.iterdir())
    assert not list(own.parent.rglob("PWNED*"))


def test_a_link_with_an_archives_name_is_not_followed(backups):
    """Anything running as the gateway's user could point the newest name at a file only root may read."""
    own, export = backups
    (own / f"2026-12-31T00-00-00.000+00-00{BACKUP_SUFFIX}").symlink_to(own.parent / "secret")
    with pytest.raises(OSError):
        backup_program.publish(str(own), str(export), 2)
    assert list(export.iterdir()) == []


def test_a_fifo_with_an_archives_name_is_refused_without_blocking(backups):
    own, export = backups
    os.mkfifo(own / f"2026-12-31T00-00-00.000+00-00{BACKUP_SUFFIX}")
    with pytest.raises(SystemExit, match="not a regular file"):
        backup_program.publish(str(own), str(export), 2)


def test_the_export_keeps_the_newest_and_their_records(backups):
    own, export = backups
    backup_program.publish(str(own), str(export), 1)
    (own / f"2026-11-25T03-00-00.000+00-00{BACKUP_SUFFIX}").write_bytes(b"next day")
    backup_program.publish(str(own), str(export), 1)  # the 25th is published, and the only one kept
    names = sorted(path.name for path in export.iterdir())
    assert names == [
        f"2026-11-25T03-00-00.000+00-00{BACKUP_SUFFIX}",
        f"2026-11-25T03-00-00.000+00-00{BACKUP_SUFFIX}.sha256",
    ]


def test_pruning_removes_old_archives_only_and_follows_nothing(backups):
    own, _ = backups
    (own / "link").symlink_to(own.parent / "secret")
    backup_program.prune(str(own), 1)
    assert sorted(path.name for path in own.iterdir()) == sorted(
        [f"2026-11-24T03-00-00.000+00-00{BACKUP_SUFFIX}", "link", *HOSTILE_NAMES]
    )
    assert (own.parent / "secret").read_bytes() == b"root's"


def test_a_copy_is_restored_only_with_the_hash_the_frontend_recorded(tmp_path):
    copy = tmp_path / f"{ROOT}.tar.gz"
    copy.write_bytes(b"state")
    with pytest.raises(OperationError, match="no .*sha256 beside it"):
        checked_copy(copy)
    record = tmp_path / f"{ROOT}.tar.gz.sha256"
    record.write_text(f"{hashlib.sha256(b'state').hexdigest()}  {copy.name}\n")
    assert checked_copy(copy) == hashlib.sha256(b"state").hexdigest()
    copy.write_bytes(b"state, changed on the control machine")
    with pytest.raises(OperationError, match="changed after the frontend made it"):
        checked_copy(copy)
    record.write_text("")
    with pytest.raises(OperationError, match="records ''"):
        checked_copy(copy)


def test_a_restore_leaves_out_plugins_and_scheduled_jobs(tmp_path):
    state = unpacked(tmp_path, {"state/openclaw.sqlite": b"sessions", "extensions/evil/index.js": b"code",
                                "cron/jobs.json": b"[]"})  # fmt: skip
    assert sorted(p.name for p in state.iterdir()) == ["state"]


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

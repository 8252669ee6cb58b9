"""Transfers to and from hosts: no path reaches a shell unquoted, nothing private is staged where others can read.

The commands run in a real ``sh`` on this machine, in a private HOME, with hostile file names: a name that anything
on a host could have chosen is data, never code.
"""

from __future__ import annotations

import os
import stat
import subprocess
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api import OperationError

from roles.common import transfer
from tests.support.hostile import HOSTILE_FILE_NAMES


class ShellHost:
    """A host whose commands run in this machine's sh (HOME = ``home``); transfers are recorded and done as copies."""

    def __init__(self, home: Path, sudo: bool = True):
        self.name, self.home = "fake", home
        self.data = {"_sudo": True} if sudo else {}
        self.commands: list[tuple[str, dict]] = []
        self.transfers: list[tuple[str, str, dict]] = []

    def run_shell_command(self, command, **arguments):
        text = command.get_raw_value() if hasattr(command, "get_raw_value") else str(command)
        self.commands.append((text, arguments))
        done = subprocess.run(["sh", "-c", text], capture_output=True, text=True, cwd=self.home,
                              env={"HOME": str(self.home), "PATH": os.environ["PATH"]})  # fmt: skip
        output = SimpleNamespace(stdout=done.stdout, stderr=done.stderr, stdout_lines=done.stdout.splitlines())
        return done.returncode == 0, output

    def get_file(self, remote, local, **arguments):
        self.transfers.append(("get", remote, arguments))
        Path(local).write_bytes(Path(remote).read_bytes())
        return True

    def put_file(self, src, remote, **arguments):
        self.transfers.append(("put", remote, arguments))
        data = src.getvalue().encode() if isinstance(src, StringIO) else Path(src).read_bytes()
        Path(remote).write_bytes(data)
        return True


@pytest.fixture
def home(tmp_path):
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.mark.parametrize("name", HOSTILE_FILE_NAMES)
def test_a_hostile_remote_name_is_fetched_as_a_file_and_runs_nothing(tmp_path, home, name):
    """The review's root injection: pyinfra's sudo download put the remote name into `sh -c` unquoted."""
    if "/" in name:
        pytest.skip("not a file name")
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    (remote_dir / name).write_bytes(b"archive")
    host = ShellHost(home)
    local = tmp_path / "copy"
    transfer.fetch(host, str(remote_dir / name), local)
    assert local.read_bytes() == b"archive"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    # The copy was read from the private staging directory, without sudo, and removed after.
    (kind, staged, arguments), = host.transfers  # fmt: skip
    assert (kind, arguments) == ("get", {})
    staging = home / transfer.STAGING
    assert Path(staged).parent == staging.resolve() and stat.S_IMODE(staging.stat().st_mode) == 0o700
    assert list(staging.iterdir()) == []


def test_a_file_that_cannot_be_read_is_an_error_naming_it(tmp_path, home):
    host = ShellHost(home)
    with pytest.raises(OperationError, match="could not read .*missing on fake"):
        transfer.fetch(host, str(tmp_path / "missing"), tmp_path / "copy")
    assert not (tmp_path / "copy").exists() and not list(tmp_path.glob(".copy*"))


def test_logged_in_as_root_a_fetch_is_sftp_alone(tmp_path, home):
    (tmp_path / "f").write_bytes(b"x")
    host = ShellHost(home, sudo=False)
    transfer.fetch(host, str(tmp_path / "f"), tmp_path / "copy")
    assert host.commands == [] and host.transfers == [("get", str(tmp_path / "f"), {})]


def test_an_upload_with_sudo_is_staged_privately_not_in_tmp(tmp_path, home):
    host = ShellHost(home)
    assert transfer.put(host, StringIO("private"), str(tmp_path / "dest"))
    (kind, remote, arguments), = host.transfers  # fmt: skip
    assert (kind, remote, arguments["_sudo"]) == ("put", str(tmp_path / "dest"), True)
    assert Path(arguments["remote_temp_filename"]).parent == (home / transfer.STAGING).resolve()


@pytest.mark.parametrize(
    "lines",
    [["/home/a b", "1000"], ["/home/a;id", "1000"], ["home/a", "1000"], ["/home/a", "x"], ["/home/../etc", "0"],
     ["/home/a", "１"], ["/home/a"], []],
)  # fmt: skip
def test_a_staging_directory_the_host_reports_oddly_is_refused(lines):
    with pytest.raises(ValueError):
        transfer.parse_staging(lines)


def test_the_fetch_command_quotes_the_path_and_takes_a_number_for_the_owner():
    assert transfer.fetch_command("/a b/$(x)", "/s/t", 1000) == "install -m 600 -o 1000 -- '/a b/$(x)' /s/t"
    with pytest.raises(ValueError):
        transfer.fetch_command("/a", "/s/t", "0; id")

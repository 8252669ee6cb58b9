"""The one-command facts (file states, a unit, a user), the file fact run for real by sh on this machine."""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
from io import StringIO

import pytest

from roles.common.accounts import PasswdEntry
from roles.common.files import UNCHANGED, FileStates, HostFiles, content_sha1, parse_states
from roles.common.units import UnitState


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "conf").write_text("a = 1\n")
    (tmp_path / "conf").chmod(0o640)
    (tmp_path / "dir").mkdir(mode=0o700)
    (tmp_path / "dir").chmod(0o700)
    (tmp_path / "link").symlink_to(tmp_path / "conf")
    return tmp_path


def states_of(*paths):
    output = subprocess.run(["sh", "-c", FileStates().command(paths)], capture_output=True, text=True, check=True)
    return parse_states(paths, FileStates().process(output.stdout.splitlines()))


def test_one_command_reports_files_directories_links_and_absent_paths(tree):
    me = pwd.getpwuid(os.getuid()).pw_name
    paths = tuple(str(tree / name) for name in ("conf", "dir", "link", "missing", "with space"))
    states = states_of(*paths)
    assert states[paths[0]] == {
        "type": "file",
        "user": me,
        "group": states[paths[0]]["group"],
        "mode": 0o640,
        "sha1": hashlib.sha1(b"a = 1\n").hexdigest(),
    }
    assert (states[paths[1]]["type"], states[paths[1]]["mode"]) == ("dir", 0o700)
    assert states[paths[2]] == {"type": "other"}  # a link is never taken for the file it points to
    assert states[paths[3]] == states[paths[4]] == {"type": None}


def test_a_line_count_that_does_not_match_the_paths_is_an_error():
    with pytest.raises(ValueError, match="one state line per path"):
        parse_states(("/a", "/b"), ["-"])


def known(sha1="x", mode=0o644, user="root", group="root", kind="file"):
    return HostFiles({"/f": {"type": kind, "user": user, "group": group, "mode": mode, "sha1": sha1}})


@pytest.mark.parametrize(
    "host_state, wanted, same",
    [
        ({}, {"mode": "644"}, True),
        ({}, {"mode": "644", "user": "root", "group": "root"}, True),
        ({}, {}, True),  # nothing asked about mode or owner: only the content counts
        ({"sha1": "y"}, {"mode": "644"}, False),
        ({"mode": 0o600}, {"mode": "644"}, False),
        ({"user": "llm"}, {"mode": "644", "user": "root"}, False),
        ({"group": "adm"}, {"group": "root"}, False),
        ({"kind": "dir"}, {}, False),
        ({"kind": None}, {}, False),
    ],
)
def test_a_file_matches_only_with_the_same_content_mode_and_owner(host_state, wanted, same):
    assert known(**host_state).matches_file("/f", "x", **wanted) is same


def test_a_path_the_role_did_not_name_is_a_bug_not_a_silent_upload():
    with pytest.raises(KeyError, match="was not named"):
        known().matches_file("/elsewhere", "x")


def test_content_sha1_of_rendered_text_and_of_a_local_file(tmp_path):
    (tmp_path / "f").write_bytes(b"unit\n")
    expected = hashlib.sha1(b"unit\n").hexdigest()
    assert content_sha1(StringIO("unit\n")) == content_sha1(str(tmp_path / "f")) == expected


def test_unchanged_answers_like_an_operation_that_changed_nothing():
    assert UNCHANGED.will_change is False
    assert UNCHANGED.did_change() is False and UNCHANGED.did_not_change() is True


def test_unit_state_from_systemctl_show():
    assert UnitState().process(["ActiveState=active", "UnitFileState=enabled"]) == {
        "ActiveState": "active",
        "UnitFileState": "enabled",
    }
    assert UnitState().process(["ActiveState=inactive", "UnitFileState="]) == {
        "ActiveState": "inactive",
        "UnitFileState": "",
    }


def test_passwd_entry_of_a_system_user():
    line = "openclaw:x:998:998::/var/lib/openclaw:/usr/sbin/nologin"
    assert PasswdEntry().process([line]) == {"home": "/var/lib/openclaw", "shell": "/usr/sbin/nologin"}
    assert PasswdEntry().process([]) is None

"""What a killed deploy leaves behind, and how the next one finishes it: files are swapped in whole, a unit left on
older files than it has is restarted, and a dpkg stopped half-way is repaired before anything is installed."""

from __future__ import annotations

import os
import types

import pytest

from roles.common import files, packages, units
from roles.common.files import Unchanged, whole_file, writing, written_paths
from roles.common.packages import DpkgInterrupted, dpkg_repaired
from roles.common.units import UnitState, service
from tests.support.hostile import HOSTILE
from tests.support.shell import Shell, plan, program_calls


@pytest.fixture
def shell(tmp_path):
    return Shell(tmp_path)


@pytest.fixture
def planning(monkeypatch):
    """pyinfra's state while it plans (not executing): ``_changed`` asks operations what they will do."""
    monkeypatch.setattr(units, "state", types.SimpleNamespace(is_executing=False))


class Changed:
    """An operation that writes ``paths`` and will change the host."""

    will_change = True

    def __init__(self, *paths):
        self.clawlan_paths = paths


def unit_state(applied: str, watch: tuple[str, ...] = ("/etc/app.conf",), current: str = "c" * 40) -> dict:
    """The fact for a running unit whose record holds ``applied`` and lists ``watch``."""
    watched = units.watch_list_hash(watch)
    return {"ActiveState": "active", "UnitFileState": "enabled", "Applied": applied, "Watched": watched,
            "Current": current}  # fmt: skip


def test_a_new_file_takes_the_old_ones_place_only_whole_and_with_its_owner_and_mode(shell):
    dest = shell.root / f"etc {HOSTILE}.conf"
    dest.write_text("old\n")
    os.chmod(dest, 0o600)
    commands, _ = plan(whole_file, files, {}, src="unused", dest=str(dest), mode="644", user="root")
    *before, install = commands
    assert shell.run_all(before).returncode == 0
    assert dest.read_text() == "old\n"  # nothing touched it until the new file is whole beside it
    (shell.root / f"{dest.name}.clawlan-new").write_text("new\n")  # what the upload leaves
    assert shell.run(install).returncode == 0
    assert dest.read_text() == "new\n" and oct(dest.stat().st_mode & 0o777) == "0o644"
    assert not (shell.root / f"{dest.name}.clawlan-new").exists()
    assert program_calls(shell, "chown") == [["root", f"{dest}.clawlan-new"]]
    assert shell.pwned() == []


def test_a_file_cut_off_on_its_way_never_replaces_the_old_one(shell):
    dest = shell.root / "app.conf"
    dest.write_text("old\n")
    commands, _ = plan(whole_file, files, {}, src="unused", dest=str(dest), mode="644")
    # the upload was killed: no new file beside it, so the install step fails and the old file stays
    assert shell.run(commands[-1]).returncode != 0
    assert dest.read_text() == "old\n"


def test_without_a_mode_the_new_file_keeps_the_old_ones(shell):
    dest = shell.root / "app.conf"
    dest.write_text("old\n")
    os.chmod(dest, 0o640)
    commands, _ = plan(whole_file, files, {}, src="unused", dest=str(dest))
    (shell.root / "app.conf.clawlan-new").write_text("new\n")
    assert shell.run(commands[-1]).returncode == 0
    assert oct(dest.stat().st_mode & 0o777) == "0o640"


def test_the_paths_an_operation_writes_are_known_changed_or_not():
    op = writing(types.SimpleNamespace(), "/etc/a")
    left_out = writing(Unchanged(), "/etc/b")
    assert isinstance(left_out, Unchanged) and not left_out.did_change()
    assert written_paths((op, left_out, op, object())) == ("/etc/a", "/etc/b")


def hash_of(shell: Shell, *paths) -> str:
    return shell.run(f"echo {units.watch_hash(tuple(str(p) for p in paths))}").stdout.strip()


def test_the_watch_hash_follows_the_files_contents_and_counts_a_missing_one(shell):
    conf, key = shell.root / "a.conf", shell.root / "b.key"
    conf.write_text("one\n")
    first = hash_of(shell, conf, key)
    assert len(first) == 40 and hash_of(shell, conf, key) == first
    key.write_text("k\n")
    second = hash_of(shell, conf, key)
    conf.write_text("two\n")
    assert len({first, second, hash_of(shell, conf, key)}) == 3


def test_a_converged_unit_is_left_alone(planning):
    commands, host = plan(service, units, {UnitState: unit_state("c" * 40)}, unit="app.service",
                          restart_on=(Unchanged("/etc/app.conf"),))  # fmt: skip
    assert commands == [] and host.noops == ["app.service is running and enabled"]


def test_a_unit_still_starting_is_waited_for_not_left_to_finish_after_the_deploy(planning):
    """systemd restarting a killed server (or finishing a start a killed deploy began): "start" joins that start."""
    state = {**unit_state("c" * 40), "ActiveState": "activating"}
    commands, _ = plan(service, units, {UnitState: state}, unit="app.service",
                       restart_on=(Unchanged("/etc/app.conf"),))  # fmt: skip
    assert commands[0] == "systemctl start app.service" and len(commands) == 2  # and the record of its files


def test_a_unit_running_on_older_files_than_it_has_is_restarted_and_recorded(planning):
    """A deploy killed after it wrote the unit's files and before the restart: this deploy changes no file."""
    written = {"restart_on": (Unchanged("/etc/app.conf"),), "daemon_reload_on": (Unchanged("/etc/app.service"),)}
    state = unit_state("a" * 40, ("/etc/app.conf", "/etc/app.service"))
    commands, _ = plan(service, units, {UnitState: state}, unit="app.service", **written)
    assert commands[:2] == ["systemctl daemon-reload", "systemctl restart app.service"]
    assert commands[2].startswith(
        f"mkdir -p -m 700 {units.APPLIED_DIR} && {{ echo $(sha1sum -- /etc/app.conf /etc/app.service"
    )
    assert len(commands) == 3


def test_a_unit_that_only_needs_systemd_to_read_its_file_again_is_not_restarted(planning):
    commands, _ = plan(service, units, {UnitState: unit_state("a" * 40, ("/etc/app.timer",))}, unit="app.timer",
                       daemon_reload_on=(Unchanged("/etc/app.timer"),))  # fmt: skip
    assert commands[0] == "systemctl daemon-reload" and not any("restart" in c for c in commands)


def test_a_unit_with_no_record_yet_is_recorded_not_restarted(planning):
    commands, _ = plan(service, units, {UnitState: unit_state("", ())}, unit="app.service",
                       restart_on=(Unchanged("/etc/app.conf"),))  # fmt: skip
    assert len(commands) == 1 and commands[0].startswith("mkdir -p -m 700")


def test_a_record_of_other_files_is_replaced_not_acted_on(planning):
    """A newer role watching one more file: its hash differs, but nothing the unit runs on changed."""
    state = unit_state("a" * 40, ("/etc/app.conf",))
    commands, _ = plan(service, units, {UnitState: state}, unit="app.service",
                       restart_on=(Unchanged("/etc/app.conf"), Unchanged("/etc/app.key")))  # fmt: skip
    assert len(commands) == 1 and commands[0].startswith("mkdir -p -m 700")
    assert "printf '%s\\n' /etc/app.conf /etc/app.key;" in commands[0]


def test_a_restart_for_a_change_is_recorded(planning):
    commands, _ = plan(service, units, {UnitState: unit_state("c" * 40)}, unit="app.service",
                       restart_on=(Changed("/etc/app.conf"),))  # fmt: skip
    assert commands[0] == "systemctl restart app.service" and commands[1].startswith("mkdir -p -m 700")


def test_a_reload_for_a_change_is_recorded(planning):
    commands, _ = plan(service, units, {UnitState: unit_state("c" * 40, ("/etc/nginx/site",))}, unit="nginx.service",
                       reload_on=(Changed("/etc/nginx/site"),))  # fmt: skip
    assert commands[0] == "systemctl reload nginx.service" and commands[1].startswith("mkdir -p -m 700")


def test_a_change_this_deploy_made_is_reloaded_not_taken_for_one_left_behind(planning):
    """At execution the hash already counts this deploy's write: the record differs, and a reload is still right."""
    state = unit_state("a" * 40, ("/etc/nginx/site",))
    commands, _ = plan(
        service, units, {UnitState: state}, unit="nginx.service", reload_on=(Changed("/etc/nginx/site"),)
    )
    assert commands[0] == "systemctl reload nginx.service" and len(commands) == 2


def test_the_unit_state_fact_reads_the_record_and_the_hash_in_one_command():
    command = UnitState().command("app.service", ("/etc/app.conf",))
    assert command.count("systemctl show") == 1 and f"{units.APPLIED_DIR}/app.service" in command
    assert UnitState().process(["ActiveState=active", "Applied=", "Current=" + "c" * 40])["Applied"] == ""


def test_the_record_lists_what_it_hashed_as_the_fact_reads_it_back(shell):
    conf = shell.root / "app.conf"
    conf.write_text("x\n")
    record = shell.root / "record"
    command = units._record_applied("app.service", (str(conf),)).replace(units.applied_path("app.service"),
                                                                          str(record))  # fmt: skip
    assert shell.run(command.replace(f"mkdir -p -m 700 {units.APPLIED_DIR} && ", "")).returncode == 0
    first, *paths = record.read_text().splitlines()
    assert first == hash_of(shell, conf) and paths == [str(conf)]
    watched = shell.run(f"tail -n +2 {record} | sha1sum | cut -c1-40").stdout.strip()
    assert watched == units.watch_list_hash((str(conf),))


def test_a_consistent_dpkg_is_left_alone():
    commands, host = plan(dpkg_repaired, packages, {DpkgInterrupted: []})
    assert commands == [] and host.noops == ["dpkg is consistent"]


def test_a_dpkg_stopped_half_way_is_configured_and_fixed_and_then_checked():
    left = DpkgInterrupted().process(["", "The following packages have been unpacked but not yet configured.", " x"])
    assert len(left) == 2
    (command,), _ = plan(dpkg_repaired, packages, {DpkgInterrupted: left})
    assert "dpkg --configure -a" in command and "--fix-broken install" in command
    assert command.endswith('test -z "$(dpkg --audit)"')  # the deploy stops if dpkg is still not whole


def test_a_unit_its_socket_starts_is_left_stopped_and_restarted_for_a_change_only_while_it_runs(planning):
    """After a reboot a socket-activated service is stopped until its first connection: no drift, no start."""
    stopped = {**unit_state("c" * 40), "ActiveState": "inactive"}
    commands, host = plan(service, units, {UnitState: stopped}, unit="app.service",
                          restart_on=(Unchanged("/etc/app.conf"),), on_demand=True)  # fmt: skip
    assert commands == [] and host.noops == ["app.service is stopped until its socket's next connection and enabled"]
    # A change while it is stopped: recorded as what its next start runs on, not started.
    commands, _ = plan(service, units, {UnitState: stopped}, unit="app.service",
                       restart_on=(Changed("/etc/app.conf"),), on_demand=True)  # fmt: skip
    assert len(commands) == 1 and commands[0].startswith("mkdir -p -m 700")
    # Running: restarted for a change like any other unit.
    commands, _ = plan(service, units, {UnitState: unit_state("c" * 40)}, unit="app.service",
                       restart_on=(Changed("/etc/app.conf"),), on_demand=True)  # fmt: skip
    assert commands[0] == "systemctl restart app.service"

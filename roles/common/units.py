"""A lighter systemd operation for units that only need to be enabled at boot."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence

from pyinfra import host, state
from pyinfra.api import FactBase, operation
from pyinfra.operations import server

from roles.common.files import written_paths

# What each unit of ours last started, restarted or reloaded with: a hash of the files it watches, and their paths.
APPLIED_DIR = "/var/lib/clawlan/applied"


class UnitFileState(FactBase):
    """``systemctl is-enabled`` for one unit: "enabled", "disabled", "static", ... or "not-found"."""

    def command(self, unit: str) -> str:
        return f"systemctl is-enabled {shlex.quote(unit)} 2>/dev/null || true"

    def process(self, output):
        return output[0].strip() if output else "not-found"


@operation()
def unit_enabled(unit: str, daemon_reload: bool = False):
    """Enable ``unit`` at boot without starting it; one ``systemctl is-enabled`` instead of two
    ``systemctl show --all`` facts, which matters on a no-op re-run."""
    if daemon_reload:
        yield "systemctl daemon-reload"
    if host.get_fact(UnitFileState, unit=unit) not in ("enabled", "static"):
        yield f"systemctl enable {shlex.quote(unit)}"
    elif not daemon_reload:
        host.noop(f"{unit} is enabled")


class UnitState(FactBase):
    """``ActiveState`` and ``UnitFileState`` of one unit, from one ``systemctl show`` of that unit; with ``watch``,
    also ``Applied`` (the hash of those files when the unit last took them in) and ``Current`` (their hash now).

    pyinfra's systemd.service reads every unit on the host, twice (``systemctl show --all`` and
    ``list-unit-files``): the slowest facts of a no-op re-run.
    """

    def command(self, unit: str, watch: tuple[str, ...] = ()) -> str:
        show = f"systemctl show --property ActiveState --property UnitFileState {shlex.quote(unit)}"
        if not watch:
            return show
        applied = shlex.quote(applied_path(unit))
        return (
            f"{show}; echo Applied=$(head -n 1 {applied} 2>/dev/null);"
            f" echo Watched=$(tail -n +2 {applied} 2>/dev/null | sha1sum | cut -c1-40);"
            f" echo Current={watch_hash(watch)}"
        )

    def process(self, output):
        return dict(line.split("=", 1) for line in output if "=" in line)


def applied_path(unit: str) -> str:
    return f"{APPLIED_DIR}/{unit}"


def watch_list_hash(watch: tuple[str, ...]) -> str:
    """What the fact's ``Watched`` is when the record lists exactly ``watch``."""
    return hashlib.sha1("".join(f"{path}\n" for path in watch).encode()).hexdigest()


def watch_hash(watch: tuple[str, ...]) -> str:
    """Shell: one hash over the watched files' contents (a missing one counts as missing)."""
    quoted = " ".join(shlex.quote(path) for path in watch)
    return f"$(sha1sum -- {quoted} 2>&1 | sha1sum | cut -c1-40)"


def _record_applied(unit: str, watch: tuple[str, ...]) -> str:
    """The record: the hash, then the watched paths one per line (what the compliance suite hashes again)."""
    paths = " ".join(shlex.quote(path) for path in watch)
    record = shlex.quote(applied_path(unit))
    return f"mkdir -p -m 700 {APPLIED_DIR} && {{ echo {watch_hash(watch)}; printf '%s\\n' {paths}; }} > {record}"


RUNNING_STATES = ("active", "activating", "reloading")
ENABLED_STATES = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")


def _changed(ops: Sequence) -> bool:
    """Whether any of ``ops`` changed the host: known for certain at execution; when pyinfra plans and shows a
    diff (runs without -y), what they will do. Asking only at execution keeps a no-op run from reading every
    upstream operation's facts twice."""
    if state.is_executing:
        return any(op.did_change() for op in ops)
    return any(op.will_change for op in ops)


@operation()
def service(
    unit: str, running: bool = True, enabled: bool = True, restart_on: Sequence = (), reload_on: Sequence = (),
    daemon_reload_on: Sequence = (), on_demand: bool = False,
):  # fmt: skip
    """Keep ``unit`` running and enabled; restart it when an operation in ``restart_on`` changed the host, reload
    it when one in ``reload_on`` did (restart wins), reload systemd first when one in ``daemon_reload_on`` did.

    A unit that was stopped is started, not restarted. The files those operations write (``files.writing``) are
    watched: a unit left running on older ones than it has (a deploy killed between a write and the restart) is
    restarted by the next deploy, though that deploy changes no file.

    ``on_demand``: a unit its socket starts on the first connection. A stopped one is left to its socket (which
    starts it on the files there then); a running one is restarted for a change like any other.
    """
    watch = written_paths((*restart_on, *reload_on, *daemon_reload_on))
    daemon_reload = _changed(daemon_reload_on)
    if daemon_reload:
        yield "systemctl daemon-reload"
    unit_state = host.get_fact(UnitState, unit=unit, watch=watch)  # after the daemon-reload: a new unit is known
    applied, current = unit_state.get("Applied", ""), unit_state.get("Current", "")
    # A record of other files (none yet, or a version of the role that watched others) says nothing about these:
    # what runs is taken as applied, and recorded.
    same_watch = unit_state.get("Watched") == watch_list_hash(watch)
    restart, reload = _changed(restart_on), _changed(reload_on)
    # Files that differ from the record though no operation of this deploy wrote them (read at execution, the hash
    # already counts this deploy's writes, which restart or reload the unit as usual): an earlier deploy wrote them
    # and never got to the restart. Restart, as the record cannot say which of them changed.
    behind = bool(watch) and same_watch and applied != current and not (restart or reload or daemon_reload)
    if behind:
        yield "systemctl daemon-reload"
        restart = bool(restart_on or reload_on)
    quoted = shlex.quote(unit)
    commands = []
    if enabled and unit_state.get("UnitFileState") not in ENABLED_STATES:
        commands.append(f"systemctl enable {quoted}")
    is_running = unit_state.get("ActiveState") in RUNNING_STATES
    took_in = True
    if running and not is_running and on_demand:
        # Nothing runs on the old files: a change is only recorded as what the socket's next start runs on.
        took_in = bool(restart or reload)
    elif running and not is_running:
        commands.append(f"systemctl start {quoted}")
    elif running and not restart and unit_state.get("ActiveState") == "activating":
        # A start under way (systemd restarting a crashed unit, or a start a killed deploy began): "start" joins it
        # and returns once the unit is up, so the deploy does not return with a service that is not serving yet.
        commands.append(f"systemctl start {quoted}")
    elif running and restart:
        commands.append(f"systemctl restart {quoted}")
    elif running and reload:
        commands.append(f"systemctl reload {quoted}")
    elif not running and is_running:
        commands.append(f"systemctl stop {quoted}")
    else:
        took_in = False
    if watch and (took_in or applied != current or not same_watch):
        commands.append(_record_applied(unit, watch))
    yield from commands
    if not commands and not daemon_reload:
        stopped = "stopped until its socket's next connection" if on_demand else "stopped"
        host.noop(f"{unit} is {'running' if is_running else stopped}{' and enabled' if enabled else ''}")


def dropin_path(unit: str) -> str:
    """Our drop-in for ``unit`` (a Debian unit kept as it is, extended and hardened): one per unit, one name."""
    return f"/etc/systemd/system/{unit}.d/clawlan.conf"


def program_on_timer_files(unit: str, program: str) -> tuple[str, str, str]:
    """What program_on_timer installs: for host_files, which reads their state up front."""
    return program, f"/etc/systemd/system/{unit}.service", f"/etc/systemd/system/{unit}.timer"


def program_on_timer(
    known, *, unit: str, program: str, program_src: str, what: str, service_src, timer_src, run_now: str,
    run_now_on: Sequence = (),
):  # fmt: skip
    """A host ``program`` (``what`` it is) that a oneshot ``unit``.service runs and its ``unit``.timer schedules: all
    three installed (``known`` being the role's host_files, which holds program_on_timer_files), the timer kept
    running, and the service run at once when the program, the service file or an operation in ``run_now_on``
    changed, so a deploy returns with its output current. ``run_now`` names that last operation."""
    _, service_file, timer_file = program_on_timer_files(unit, program)
    program_op = known.put(name=f"Install {what}", src=program_src, dest=program, mode="755")
    service_op = known.put(name=f"Install {unit}.service", src=service_src, dest=service_file, mode="644")
    timer_op = known.put(name=f"Install {unit}.timer", src=timer_src, dest=timer_file, mode="644")
    service(name=f"Run {unit}.timer", unit=f"{unit}.timer", daemon_reload_on=(service_op, timer_op))
    # restart, not start: a run the timer began before this deploy's changes is still running, and "start" would
    # join it and return with output that predates them. restart stops that run and begins one on what is there now.
    server.shell(
        name=run_now,
        commands=[f"systemctl restart {shlex.quote(unit + '.service')}"],
        _if=lambda: any(op.did_change() for op in (*run_now_on, program_op, service_op)),
    )

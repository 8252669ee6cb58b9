"""A system user or group for a service, checked with one ``getent`` (pyinfra's server.user and server.group read
every user and group)."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation


class PasswdEntry(FactBase):
    """``{"home": ..., "shell": ...}`` of one user, or None when there is no such user."""

    def command(self, user: str) -> str:
        return f"getent passwd {shlex.quote(user)} || true"

    def process(self, output):
        fields = output[0].split(":") if output else []
        return {"home": fields[5], "shell": fields[6]} if len(fields) == 7 else None


class GroupExists(FactBase):
    """Whether the group exists (in /etc/group or any other source NSS reads)."""

    def command(self, group: str) -> str:
        return f"getent group {shlex.quote(group)} > /dev/null && echo yes || true"

    def process(self, output):
        return bool(output) and output[0].strip() == "yes"


@operation()
def system_group(group: str):
    """A system group, made when the host has none of that name."""
    if host.get_fact(GroupExists, group=group):
        host.noop(f"group {group} exists")
    else:
        yield f"groupadd --system {shlex.quote(group)}"


@operation()
def system_user(user: str, home: str = "/nonexistent", shell: str = "/usr/sbin/nologin"):
    """A system user with a group of its own name, no home directory made, no login shell."""
    entry = host.get_fact(PasswdEntry, user=user)
    name, home_q, shell_q = shlex.quote(user), shlex.quote(home), shlex.quote(shell)
    if entry is None:
        yield f"useradd --system --user-group --no-create-home --home-dir {home_q} --shell {shell_q} {name}"
    elif entry != {"home": home, "shell": shell}:
        yield f"usermod --home {home_q} --shell {shell_q} {name}"
    else:
        host.noop(f"system user {user} exists")

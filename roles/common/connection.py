"""pyinfra's own keys in an inventory: the SSH connector's settings (``ssh_*``) and operation arguments (``_sudo``...).

Only keys pyinfra knows are accepted, a misspelt one is named with the key meant (``ssh_usr`` would otherwise be
ignored, and the deploy would log in as someone else), and each value has a value type. The known keys come from
pyinfra itself: the SSH connector's data metadata and the global operation arguments.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping as MappingABC
from typing import Any

from pyinfra.api.arguments import all_global_arguments
from pyinfra.connectors import ssh

from roles.common.settings import Problem
from roles.common.values.containers import ListOf, Mapping, Secret, Typed
from roles.common.values.core import ValueType
from roles.common.values.numbers import Choice, Flag, Number, Port, WholeNumber
from roles.common.values.paths import AbsPath
from roles.common.values.text import Pattern, Text, UserName

SSH_TYPES: dict[str, Any] = typing.get_type_hints(ssh.ConnectorData)
SSH_KEYS = frozenset(ssh.connector_data_meta)  # what pyinfra's SSH connector reads from host data
ARGUMENT_TYPES: dict[str, Any] = {name: hint for name, hint in all_global_arguments() if name.startswith("_")}
ARGUMENT_KEYS = frozenset(ARGUMENT_TYPES)  # _sudo, _sudo_user, _env, ...: operation arguments host data may set
# What pyinfra's SSH client takes for StrictHostKeyChecking (sshuserclient.client.get_missing_host_key_policy), less
# "no" and "off": a deploy works as root on the box it reaches, so an unknown host key must never be taken silently
# (anyone answering at the box's address would get the site's secrets).
STRICT_HOST_KEY_CHECKING = ("yes", "accept-new", "ask")

_FILE = Text(max_length=1024)  # a file on the control machine, read by pyinfra (it expands ~)
_PROGRAM = Pattern(r"/?[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*", "a program: a plain name or an absolute path", 256)
_ENV_NAME = Pattern(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name (letters, digits, _)", 128)

VALUE_TYPES: dict[str, ValueType] = {
    # ssh_hostname is the host's LAN address: roles.inventory.schema checks it with the host's other keys.
    "ssh_port": Port(),
    "ssh_user": UserName(),
    "ssh_password": Secret(Text()),
    "ssh_key": _FILE,
    "ssh_key_password": Secret(Text()),
    "ssh_allow_agent": Flag(),
    "ssh_look_for_keys": Flag(),
    "ssh_forward_agent": Flag(),
    "ssh_config_file": _FILE,
    "ssh_known_hosts_file": _FILE,
    "ssh_strict_host_key_checking": Choice(*STRICT_HOST_KEY_CHECKING),
    "ssh_connect_retries": WholeNumber(0, 100),
    "ssh_connect_retry_min_delay": Number(0, 3600),
    "ssh_connect_retry_max_delay": Number(0, 3600),
    "ssh_file_transfer_protocol": Choice("sftp", "scp"),
    "_sudo": Flag(),
    "_sudo_user": UserName(),
    "_use_sudo_login": Flag(),
    "_sudo_password": Secret(Text()),
    "_preserve_sudo_env": Flag(),
    "_su_user": UserName(),
    "_use_su_login": Flag(),
    "_preserve_su_env": Flag(),
    "_su_shell": AbsPath(),
    "_su_password": Secret(Text()),
    "_doas": Flag(),
    "_doas_user": UserName(),
    "_dzdo": Flag(),
    "_dzdo_user": UserName(),
    "_shell_executable": _PROGRAM,
    "_chdir": AbsPath(),
    "_env": Mapping(_ENV_NAME, Text(max_length=1000)),
    "_success_exit_codes": ListOf(WholeNumber(0, 255)),
    "_timeout": WholeNumber(1, 7 * 86400),
    "_get_pty": Flag(),
    "_retries": WholeNumber(0, 100),
    "_retry_delay": Number(0, 3600),
    "_temp_dir": AbsPath(),
    "_ignore_errors": Flag(),
    "_continue_on_error": Flag(),
    "_run_once": Flag(),
    "_serial": Flag(),
    "_parallel": WholeNumber(1, 10000),
}


def value_type(key: str) -> ValueType:
    """The value type of a key pyinfra knows; one we have no finer type for is checked by pyinfra's own annotation
    (a callable for _if, a mapping for ssh_paramiko_connect_kwargs...)."""
    if key in VALUE_TYPES:
        return VALUE_TYPES[key]
    return Typed(SSH_TYPES.get(key) or ARGUMENT_TYPES.get(key) or Any)


def is_pyinfra_key(key: str) -> bool:
    return key.startswith(("ssh_", "_"))


def pyinfra_key_problems(host: str, data: MappingABC[str, Any]) -> list[Problem]:
    """Problems with the pyinfra keys in one host's data (``ssh_hostname`` aside)."""
    problems = []
    for key, value in data.items():
        if not is_pyinfra_key(key) or key == "ssh_hostname":
            continue
        known = SSH_KEYS if key.startswith("ssh_") else ARGUMENT_KEYS
        if key not in known:
            what = "SSH connection setting" if key.startswith("ssh_") else "operation argument"
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Problem(host, key, f"not a pyinfra {what}: pyinfra would ignore it{hint}"))
            continue
        problem = value_type(key)(value)
        if problem:
            problems.append(Problem(host, key, problem))
    return problems


def sudo_arguments(host) -> dict[str, bool]:
    """What a FunctionCommand passes to ``host.run_shell_command``/``put_file`` to act as the operation would:
    pyinfra applies the host's ``_sudo`` to an operation's own commands, not to what such a function runs."""
    return {"_sudo": True} if host.data.get("_sudo") else {}

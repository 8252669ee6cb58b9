"""Operations' commands run on this machine: a stand-in host answers their facts while they plan, and ``sh`` runs
what they yield with the programs that would change the system replaced by stubs that record their arguments.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pyinfra.api import FunctionCommand

from roles.common import progress

STUBBED = (
    "curl", "apt-get", "tar", "python3", "systemctl", "useradd", "usermod", "openssl", "chown", "swapoff", "swapon",
    "fallocate", "mkswap", "dd", "node",
)  # fmt: skip
RECORDER = """#!/bin/sh
{ echo ---; printf '%s' "$(basename "$0")" | od -An -tx1 | tr -d ' \\n'; echo
  for arg in "$@"; do printf '%s' "$arg" | od -An -tx1 | tr -d ' \\n'; echo; done; } >> "$LOG"
"""


class FakeHost:
    """pyinfra's ``host`` as an operation sees it while planning: facts answered from a table."""

    name = "back"
    data: dict = {}

    def __init__(self, facts):
        self.facts, self.noops = facts, []

    def get_fact(self, fact, **kwargs):
        answer = self.facts[fact]
        return answer(**kwargs) if callable(answer) else answer

    def noop(self, message):
        self.noops.append(message)


class Shell:
    """Runs commands as pyinfra would (``sh -c``), in ``root``, with the stubs first on PATH."""

    def __init__(self, root: Path):
        self.root, self.log = root, root / "calls.log"
        stubs = root / "stubs"
        stubs.mkdir()
        for program in STUBBED:
            self.stub(stubs / program)
        self.path = f"{stubs}:/usr/sbin:/usr/bin:/sbin:/bin"

    def stub(self, path: Path, script: str = RECORDER) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script)
        path.chmod(0o755)

    def run(self, command: str) -> subprocess.CompletedProcess:
        env = {"PATH": self.path, "LOG": str(self.log)}
        return subprocess.run(["sh", "-c", command], cwd=self.root, env=env, capture_output=True, text=True)

    def run_all(self, commands) -> subprocess.CompletedProcess | None:
        """Each command in turn, as pyinfra runs an operation's commands; stops at the first that fails."""
        result = None
        for command in commands:
            result = self.run(command)
            if result.returncode != 0:
                break
        return result

    def calls(self) -> list[list[str]]:
        """[program, arg, ...] for every stub call, in order."""
        if not self.log.exists():
            return []
        calls = []
        for line in self.log.read_text().splitlines():
            if line == "---":
                calls.append([])
            else:
                calls[-1].append(bytes.fromhex(line).decode())
        return calls

    def pwned(self) -> list[str]:
        return sorted(p.name for p in self.root.rglob("PWNED*"))


def _yielded(operation, module, facts, **arguments) -> tuple[list, FakeHost]:
    """Everything ``operation`` yields with ``facts`` for its host."""
    host = FakeHost(facts)
    saved = module.host
    module.host = host
    try:
        return list(operation._inner(**arguments)), host
    finally:
        module.host = saved


def plan(operation, module, facts, **arguments) -> tuple[list[str], FakeHost]:
    """The commands ``operation`` yields (shell strings only) with ``facts`` for its host."""
    yielded, host = _yielded(operation, module, facts, **arguments)
    return [shell for c in yielded if (shell := shell_of(c)) is not None], host


def shell_of(command) -> str | None:
    """A yielded shell string, or the one a long step runs with its progress (roles.common.progress)."""
    if isinstance(command, str):
        return command
    if isinstance(command, FunctionCommand) and command.function is progress._run:
        return command.args[1]
    return None


def uploads(operation, module, facts, **arguments) -> dict[str, str]:
    """The files ``operation`` copies to its host (roles.common.files.upload, a StringIO): remote path -> text."""
    yielded, _ = _yielded(operation, module, facts, **arguments)
    return {
        remote: src.getvalue()
        for c in yielded
        if isinstance(c, FunctionCommand) and c.function is not progress._run
        for src, remote, *_ in [c.args]
        if hasattr(src, "getvalue")
    }


def program_calls(shell: Shell, program: str) -> list[list[str]]:
    return [call[1:] for call in shell.calls() if call[0] == program]

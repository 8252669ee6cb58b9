"""Running the real pyinfra CLI, as a user does, and reading what it changed."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


@dataclass(frozen=True)
class DeployResult:
    changed: frozenset[tuple[str, str]]  # (operation name, host) pairs that reported a change
    errors: frozenset[tuple[str, str]]
    log: str  # what pyinfra printed for people (stderr)
    output: str  # its JSON report (stdout)
    returncode: int = 0

    def changed_ops(self, host: str | None = None) -> set[str]:
        return {op for op, h in self.changed if host in (None, h)}

    def changed_hosts(self) -> set[str]:
        return {h for _, h in self.changed}


# A guard against a hung deploy, not a measure of one: a deploy that compiles llama.cpp with nothing cached (a new
# machine's first Vulkan build) took over 14 minutes, and one cut off at 15
# failed the suite while the compile was finishing.
DEPLOY_TIMEOUT_S = 1800


def run_pyinfra(
    inventory: str, deploy: str, *args: str, check: bool = True, timeout: int = DEPLOY_TIMEOUT_S
) -> DeployResult:
    process = subprocess.run(
        [PYINFRA, "-y", "--json", inventory, deploy, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and process.returncode != 0:
        raise AssertionError(f"pyinfra exited {process.returncode}:\n{process.stderr[-6000:]}")
    try:
        results = json.loads(process.stdout)["results"]["operations"]
    except (json.JSONDecodeError, KeyError, TypeError):
        results = []
    return DeployResult(
        changed=frozenset((op["name"], host) for op in results for host in op["success"]),
        errors=frozenset((op["name"], host) for op in results for host in op["error"]),
        log=process.stderr,
        output=process.stdout,
        returncode=process.returncode,
    )

"""Last, because it replaces a host: a hardware swap of the backend, rebuilt from the wheelhouse. First, a swap the
inventory was not told about: declared hardware the host does not have stops the deploy."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from lab.runner import REPO
from tests.e2e.conftest import deploy
from tests.e2e.test_04_gateway import chat

BACKEND = "lab-back"


def enrol(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/enrol.py", "--inventory", "inventory/lab.py", BACKEND, *args],
        cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "key, declared, refused",
    [
        # Twice the backend's 6 GiB (the lab container's memory limit): both hosts have 6 GiB.
        ("hw_memory_gib", 12, {"lab-front": "found 6 GiB", "lab-back": "found 6 GiB"}),
        # Twice the backend's one core: the frontend has two, so only the backend is refused.
        ("hw_cpu_cores", 2, {"lab-back": "found 1 cores"}),
    ],
    ids=["memory", "cores"],
)
def test_declared_hardware_wrong_by_twice_stops_the_deploy_before_any_change(first_deploy, key, declared, refused):
    result = deploy("--data", f"{key}={declared}", check=False)
    assert result.returncode != 0 and result.changed == frozenset(), result.log[-3000:]
    for host, found in refused.items():
        assert f"host '{host}', key {key}: declared {declared} " in result.log, result.log[-3000:]
        assert found in result.log.split(f"host '{host}', key {key}: ", 1)[1].split("\n", 1)[0]
    assert "nothing was changed" in result.log
    for host in {"lab-front", "lab-back"} - set(refused):
        assert f"host '{host}'" not in result.log


def test_a_swapped_backends_new_host_key_is_refused_until_it_is_enrolled(first_deploy, lab):
    """A hardware swap: the backend comes back blank with a new host key. The deploy refuses it (never trusting it on
    first use); the enrol command trusts it only for the fingerprint the box shows on its console."""
    lab.recreate(BACKEND, trust=False)
    refused = deploy(check=False)
    assert refused.returncode != 0 and refused.changed == frozenset()
    assert "host key" in refused.log.lower(), refused.log[-2000:]
    wrong = enrol("--fingerprint", "SHA256:" + "A" * 43)
    assert wrong.returncode == 1 and "nothing written" in wrong.stderr, wrong.stderr
    assert enrol().returncode == 1  # no terminal to confirm on, no fingerprint: nothing written
    enrolled = enrol("--fingerprint", lab.console_fingerprint(BACKEND))
    assert enrolled.returncode == 0, enrolled.stderr
    assert enrol("--fingerprint", lab.console_fingerprint(BACKEND)).stdout.strip().endswith("nothing to do")


def test_a_rebuilt_backend_installs_llama_cpp_from_the_wheelhouse(first_deploy, lab):
    """The enrolled blank backend: the deploy must not compile again."""
    started = time.monotonic()
    result = deploy()
    elapsed = time.monotonic() - started
    print(f"full deploy onto a blank backend, llama-cpp-python from the wheelhouse: {elapsed:.1f} s")
    assert "Model server | Install llama-cpp-python" in " ".join(result.changed_ops(BACKEND))
    # The build tools are installed only for a build: their absence proves the wheelhouse was used.
    probe = subprocess.run(
        lab.ssh_command(BACKEND, "dpkg-query -W -f='${Status}' cmake 2>/dev/null || true"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "install ok installed" not in probe.stdout
    assert deploy().changed == set()


def test_the_gateway_answers_through_the_rebuilt_backend(first_deploy, site):
    """The frontend was not touched: its egress proxy finds the new backend by its pinned name and CA."""
    config = site.gateway_config("lab-front")
    status, text = chat(f"http://{config.listen_address}:{config.port}", site.gateway_token_file.read_text().strip())
    assert status == 200, text

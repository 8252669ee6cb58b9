"""Last, because it replaces a host: a hardware swap of the backend, rebuilt from the wheelhouse."""

from __future__ import annotations

import subprocess
import time

from tests.e2e.conftest import deploy

BACKEND = "lab-back"


def test_a_rebuilt_backend_installs_llama_cpp_from_the_wheelhouse(first_deploy, lab):
    """A hardware swap: the backend comes back blank; the deploy must not compile again."""
    lab.recreate(BACKEND)
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

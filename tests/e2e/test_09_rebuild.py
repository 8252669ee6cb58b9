"""Last, because it replaces a host: a hardware swap of the backend, rebuilt from the wheelhouse."""

from __future__ import annotations

import subprocess
import time

from tests.e2e.conftest import deploy
from tests.e2e.test_04_gateway import chat

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


def test_the_gateway_answers_through_the_rebuilt_backend(first_deploy, site):
    """The frontend was not touched: its egress proxy finds the new backend by its pinned name and CA."""
    config = site.gateway_config("lab-front")
    status, text = chat(f"http://{config.listen_address}:{config.port}", site.gateway_token_file.read_text().strip())
    assert status == 200, text

"""Last, because it replaces hosts: hardware swaps. First, one the inventory was not told about: declared hardware
the host does not have stops the deploy. Then the backend box replaced by one at a new address with less RAM (its
new host key enrolled, the inventory edited, one deploy); then the old backend box back and the frontend's box
replaced on the same day (both enrolled, one deploy that restores the frontend's sessions); last, the frontend's
identity replaced and its old certificate refused at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from cryptography import x509

from lab.core import Lab
from lab.runner import REPO, run_pyinfra
from roles.common.tls import CA_CERT, CRL, HOST_CERT, HOST_KEY
from roles.gateway.config import BACKUP_UNIT, CLI
from roles.inventory.load import load_inventory, site_from_inventory
from roles.monitor.probe import CERT as PROBE_CERT
from roles.monitor.probe import KEY as PROBE_KEY
from tests.compliance import test_services as service_controls
from tests.e2e.conftest import deploy, run_control, wait_until_passes
from tests.support.compliance_suite import compliance, wait_until_settled
from tests.support.gateway import chat
from tests.support.hosts import remote_host
from tests.support.remote import curl

BACKEND, FRONTEND = "lab-back", "lab-front"
LAB, SWAPPED = "inventory/lab.py", "inventory/lab_swapped.py"


def enrol(inventory: str, *args: str, host: str = BACKEND) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/enrol.py", "--inventory", inventory, host, *args],
        cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "key, declared, refused",
    [
        # Twice the backend's 6 GiB (the lab container's memory limit): both hosts have 6 GiB.
        ("hw_memory_gib", 12, {"lab-front": "found 6 GiB", "lab-back": "found 6 GiB"}),
        # Half the two cores each lab box has (lab/hosts.py): both are refused.
        ("hw_cpu_cores", 1, {"lab-front": "found 2 cores", "lab-back": "found 2 cores"}),
        # Both lab boxes run Debian 13 (lab/hosts.py); the backend on the CPU, which Debian 12 could run.
        ("hw_debian", 12, {"lab-front": "found 13", "lab-back": "found 13"}),
    ],
    ids=["memory", "cores", "release"],
)
def test_declared_hardware_wrong_by_twice_stops_the_deploy_before_any_change(first_deploy, key, declared, refused):
    cpu = ("--data", "model_server_compute=cpu") if key == "hw_debian" else ()  # vulkan on 12 is refused earlier
    result = deploy("--data", f"{key}={declared}", *cpu, check=False)
    assert result.returncode != 0 and result.changed == frozenset(), result.log[-3000:]
    for host, found in refused.items():
        assert f"host '{host}', key {key}: declared {declared}" in result.log, result.log[-3000:]
        assert found in result.log.split(f"host '{host}', key {key}: ", 1)[1].split("\n", 1)[0]
    assert "nothing was changed" in result.log
    for host in {"lab-front", "lab-back"} - set(refused):
        assert f"host '{host}'" not in result.log


@pytest.fixture(scope="module")
def swapped_lab(lab):
    """The session's lab, seen through the inventory an operator writes after swapping the backend box."""
    return Lab(log=lambda message: print(message, file=sys.stderr, flush=True), inventory=REPO / SWAPPED)


@pytest.fixture(scope="module")
def retired_backend_serial(first_deploy, hosts) -> int:
    """The backend's certificate before its box is swapped: the new box must make the site revoke it."""
    return x509.load_pem_x509_certificate(hosts[BACKEND].file(HOST_CERT).content).serial_number


def test_a_swapped_backends_new_host_key_is_refused_until_it_is_enrolled(retired_backend_serial, swapped_lab):
    """The backend box replaced: blank, a new host key, a new address, less RAM. The deploy refuses it (never trusting
    a host key on first use); the enrol command trusts it only for the fingerprint the box shows on its console."""
    swapped_lab.recreate(BACKEND, trust=False)
    refused = run_pyinfra(SWAPPED, "deploys/full.py", check=False)
    assert refused.returncode != 0 and refused.changed == frozenset()
    assert "host key" in refused.log.lower(), refused.log[-2000:]
    wrong = enrol(SWAPPED, "--fingerprint", "SHA256:" + "A" * 43)
    assert wrong.returncode == 1 and "nothing written" in wrong.stderr, wrong.stderr
    assert enrol(SWAPPED).returncode == 1  # no terminal to confirm on, no fingerprint: nothing written
    enrolled = enrol(SWAPPED, "--fingerprint", swapped_lab.console_fingerprint(BACKEND))
    assert enrolled.returncode == 0, enrolled.stderr
    assert (
        enrol(SWAPPED, "--fingerprint", swapped_lab.console_fingerprint(BACKEND))
        .stdout.strip()
        .endswith("nothing to do")
    )


def test_one_deploy_of_the_edited_inventory_gives_a_working_site(retired_backend_serial, swapped_lab, tmp_path):
    """The inventory edited (the new address and RAM) and deployed once: llama-cpp-python from the wheelhouse, the
    frontend pins and balances to the new address, the new certificate names it, the old one is revoked everywhere,
    swap is sized for the new RAM, the site passes its compliance suite, and a second deploy changes nothing."""
    started = time.monotonic()
    result = run_pyinfra(SWAPPED, "deploys/full.py")
    seconds = time.monotonic() - started
    print(f"full deploy onto the swapped backend (wheelhouse; the model from this machine): {seconds:.0f} s")
    assert "Model server | Install llama-cpp-python" in " ".join(result.changed_ops(BACKEND))
    site = site_from_inventory(load_inventory(str(REPO / SWAPPED), cwd=str(REPO)))
    hosts = {host.name: remote_host(host) for host in load_inventory(str(REPO / SWAPPED), cwd=str(REPO))}
    # The build tools are installed only for a build: their absence proves the wheelhouse was used.
    assert "install ok installed" not in hosts[BACKEND].run("dpkg-query -W -f='${Status}' cmake").stdout
    pins = hosts["lab-front"].file("/etc/hosts").content_string
    assert "10.242.17.22\tlab-back.home.arpa lab-back llm.home.arpa llm\n" in pins and "10.242.17.20" not in pins
    names = x509.load_pem_x509_certificate(hosts[BACKEND].file(HOST_CERT).content).extensions
    addresses = names.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert [str(a) for a in addresses] == ["10.242.17.22"]
    for host in hosts.values():
        revoked = {entry.serial_number for entry in x509.load_pem_x509_crl(host.file(CRL).content)}
        assert retired_backend_serial in revoked, f"{host.backend.get_hostname()} still admits the old box"
    wait_until_settled(site)  # the probe's chats through both paths succeed: the balancer has the new box up
    config = site.gateway_config("lab-front")
    status, text = chat(config.url, site.control.gateway_token_file.read_text().strip())
    assert status == 200, text
    wait_until_passes(run_control, service_controls.test_MON_03_targets_up, hosts["lab-front"], site, "lab-front",
                      timeout_s=60)  # fmt: skip
    returncode, failed, passed, _ = compliance(tmp_path, SWAPPED)
    assert returncode == 0 and not failed, f"failed controls: {sorted(failed)}"
    assert ("BASE-18", BACKEND) in passed  # the new box's 5 GiB, as declared
    assert run_pyinfra(SWAPPED, "deploys/full.py").changed == set()


def connect(name: str, inventory: str = LAB):
    """A new testinfra connection to a lab host: the module's own die with the boxes a swap replaces."""
    return remote_host(next(h for h in load_inventory(str(REPO / inventory), cwd=str(REPO)) if h.name == name))


def sessions(host) -> set[str]:
    """Every stored session: `openclaw sessions` lists the newest 100 unless told, and the probe makes one a round."""
    listed = json.loads(host.check_output(f"{CLI} sessions --json --limit all"))
    return {session["key"] for session in listed["sessions"]}


@pytest.fixture(scope="module")
def sessions_before_the_swap() -> set[str]:
    """The sessions on the frontend, all in the backup the control machine holds when both boxes are swapped: the
    daily backup made now and fetched by a deploy (of the site as it stands, its backend at its swapped address)."""
    site = site_from_inventory(load_inventory(str(REPO / SWAPPED), cwd=str(REPO)))
    front = connect(FRONTEND, SWAPPED)
    status, text = chat(site.gateway_config(FRONTEND).url, site.control.gateway_token_file.read_text().strip())
    assert status == 200, text
    before = sessions(front)  # the probe's chats make more as it goes: these are all in the backup
    assert before
    front.check_output(f"systemctl start {BACKUP_UNIT}.service")
    fetched = run_pyinfra(SWAPPED, "deploys/full.py").changed_ops(FRONTEND)
    assert "Gateway | Copy the newest backup of OpenClaw's state to the control machine" in fetched
    return before


def test_both_boxes_swapped_at_once_are_refused_until_each_is_enrolled(sessions_before_the_swap, lab):
    """The old backend box repaired and back at its old address, and the frontend's box replaced by a blank one, on
    the same day: their keys are new to the site, so the deploy of the old inventory touches neither until each is
    enrolled."""
    lab.recreate(BACKEND, trust=False)
    lab.recreate(FRONTEND, trust=False)
    refused = deploy(check=False)
    assert refused.returncode != 0 and refused.changed == frozenset()
    for host in (BACKEND, FRONTEND):
        assert host in refused.log and "host key" in refused.log.lower(), refused.log[-2000:]
        assert enrol(LAB, "--fingerprint", lab.console_fingerprint(host), host=host).returncode == 0


def test_one_deploy_brings_both_back_and_the_frontend_keeps_its_peoples_sessions(sessions_before_the_swap, site):
    """One deploy of the old inventory: the backend from the wheelhouse at its old address, and the frontend's
    OpenClaw state restored from the control machine's copy of the newest backup before the gateway first starts. A
    session made before the swap is still there after it, chats go through, and a second deploy changes nothing."""
    result = deploy()
    assert "Model server | Install llama-cpp-python" in " ".join(result.changed_ops(BACKEND))
    restored = " ".join(result.changed_ops(FRONTEND))
    assert "Gateway | Restore OpenClaw's state from the control machine's newest backup" in restored
    front = connect(FRONTEND)
    assert sessions_before_the_swap <= sessions(front), f"lost: {sorted(sessions_before_the_swap - sessions(front))}"
    wait_until_settled(site)
    gateway = site.gateway_config(FRONTEND)
    status, text = chat(gateway.url, site.control.gateway_token_file.read_text().strip())
    assert status == 200, text
    assert deploy().changed == set()


def test_a_retired_frontend_identity_is_refused_at_once_and_its_replacement_admitted(first_deploy, site):
    """The frontend's box replaced (a new key, so a new certificate), its old certificate and key kept by whoever
    has the old box: the same deploy that issues the new certificate revokes the old one, for the host's and the
    probe's identities alike, and every backend refuses it though the site CA signed it and its subject is the
    same as the new one's."""
    front = connect(FRONTEND)
    url = f"https://{site.topology.model_endpoint_name()}:{site.ingress_config(BACKEND).port}/health"
    retired = {}
    for who, cert, key in (("host", HOST_CERT, HOST_KEY), ("probe", PROBE_CERT, PROBE_KEY)):
        kept = f"/root/retired-{who}"
        front.check_output(f"cp {cert} {kept}.crt && cp {key} {kept}.key && rm {cert} {key}")
        retired[who] = ("--cert", f"{kept}.crt", "--key", f"{kept}.key", "--cacert", CA_CERT)
    try:
        deploy()
        for who, client in retired.items():
            code, text, _ = curl(front, url, *client)
            assert code == 400, f"the retired {who} certificate: {code} {text}"
        code, text, _ = curl(front, url, "--cert", HOST_CERT, "--key", HOST_KEY, "--cacert", CA_CERT)
        assert code == 200, text
        assert deploy().changed == set()
    finally:
        front.run("rm -f /root/retired-*")

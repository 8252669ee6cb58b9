"""Backend end to end: the model served over mutual TLS to the frontend, and to nobody else.

Requests are made from the frontend host (lab-front), as the gateway will make them, with its own
certificate; every refusal the issue lists is proven by a request that is refused.
"""

from __future__ import annotations

import json
import posixpath
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lab.image import ADMIN
from lab.paths import LLAMA_TOY_MODEL, QWEN_MODEL
from lab.runner import PYINFRA, REPO
from roles.common.ca import CertSpec, load_or_create_ca, sign_csr
from roles.common.tls import CA_CERT, HOST_CERT, HOST_KEY
from roles.common.transfer import STAGING
from roles.model_server.config import CONFIG_FILE, KEY_FILE, UNIT
from roles.model_server.deploy import SHADER_CACHE
from roles.model_server.facts import STARTUP_RECORD
from roles.model_server.settings import VULKAN
from tests.compliance import test_services as service_controls
from tests.e2e.conftest import LAB_INVENTORY, deploy
from tests.support.chats import cache_check
from tests.support.file_server import FileServer
from tests.support.remote import curl, main_pid, put_text

BACKEND, FRONTEND = "lab-back", "lab-front"
HEADERS = "/root/.clawlan-test-headers"  # curl config with the API key, written over SFTP
CLIENT = ("--cert", HOST_CERT, "--key", HOST_KEY, "--cacert", CA_CERT)


@pytest.fixture(scope="module")
def endpoint(site):
    """The URL the frontend uses for the model: the pinned alias of the backend, on the TLS port."""
    return f"https://llm.{site.settings[BACKEND].base.dns_domain}:{site.ingress_config(BACKEND).port}"


@pytest.fixture(scope="module")
def api_key(first_deploy, site):
    return site.control.model_server_api_key_file.read_text().strip()


@pytest.fixture(scope="module")
def front(first_deploy, hosts, api_key):
    host = hosts[FRONTEND]
    put_text(host, HEADERS, f'header = "Authorization: Bearer {api_key}"\n')
    return host


def chat(front, endpoint, *options, stream=False, max_tokens=8, config=HEADERS):
    body = {"messages": [{"role": "user", "content": "Bonjour, ça va?"}], "max_tokens": max_tokens, "stream": stream}
    return curl(front, f"{endpoint}/v1/chat/completions", *options, body=body, config=config)


def test_first_deploy_succeeds(first_deploy):
    assert not first_deploy.errors


def test_chat_over_mutual_tls_from_the_frontend(front, endpoint):
    code, text, _ = chat(front, endpoint, *CLIENT, max_tokens=12)
    assert code == 200, text
    answer = json.loads(text)
    assert answer["choices"][0]["message"]["content"].strip()
    assert answer["usage"]["completion_tokens"] == 12  # the lab model never stops early


def test_a_stream_arrives_as_many_chunks(front, endpoint):
    code, text, _ = chat(front, endpoint, *CLIENT, "--no-buffer", stream=True, max_tokens=10)
    assert code == 200, text
    events = [line for line in text.splitlines() if line.startswith("data: {")]
    contents = [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events]
    # A chunk per token, but Qwen's vocabulary is byte-level: a character split over two to four tokens arrives
    # whole, in one chunk (the server holds back an incomplete UTF-8 sequence). Ten tokens: at least three chunks.
    assert 3 <= len([c for c in contents if c]) <= 10, contents
    assert text.rstrip().endswith("data: [DONE]")


def test_refused_without_a_client_certificate(front, endpoint, site):
    service_controls.test_NET_02_mtls_requires_a_client_certificate(front, site, FRONTEND)  # refused: 400
    _, text, _ = chat(front, endpoint, "--cacert", CA_CERT)
    assert "No required SSL certificate" in text  # and a chat too, for that reason


@pytest.fixture(scope="module")
def foreign_client(front, tmp_path_factory, site):
    """A client certificate that carries the frontend's own identity but comes from another CA."""
    other = load_or_create_ca(tmp_path_factory.mktemp("other") / "pki", "clawlan", 30)
    return _install_client(front, other, site.pki_config(FRONTEND).issuance.spec, "/root/foreign")


@pytest.fixture(scope="module")
def intruder_client(front, site):
    """Signed by the site CA, for a client that is not a frontend."""
    ca = load_or_create_ca(site.control.state_dir / "pki", "clawlan", 3650)
    spec = CertSpec("intruder.home.arpa", "backend", "clawlan", ("intruder.home.arpa",), (), True, False)
    return _install_client(front, ca, spec, "/root/intruder")


def _install_client(front, ca, spec, stem):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(spec.subject()).sign(key, hashes.SHA256())
    cert = sign_csr(ca, csr.public_bytes(serialization.Encoding.PEM).decode(), spec, days=1)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    put_text(front, f"{stem}.key", key_pem.decode())
    put_text(front, f"{stem}.crt", cert, 0o644)
    return ("--cert", f"{stem}.crt", "--key", f"{stem}.key", "--cacert", CA_CERT)


def test_refused_with_a_certificate_from_another_ca(front, endpoint, foreign_client):
    code, text, _ = chat(front, endpoint, *foreign_client)
    assert code == 400 and "SSL certificate error" in text


def test_refused_with_a_site_certificate_that_is_not_a_frontend(front, endpoint, intruder_client):
    code, text, _ = chat(front, endpoint, *intruder_client)
    assert code == 403, text


def test_refused_over_plain_http(front, site):
    port = site.ingress_config(BACKEND).port
    code, text, _ = chat(front, f"http://llm.home.arpa:{port}")
    assert code == 400 and "plain HTTP request was sent to HTTPS port" in text


def test_the_model_servers_own_port_is_unreachable_from_the_frontend(front, site):
    port = site.model_server_config(BACKEND).port
    code, _, exit_code = chat(front, f"http://{site.topology.host(BACKEND).address}:{port}", "--connect-timeout", "3")
    # It listens on loopback only (refused, 7), and the backend's firewall drops the attempt first (timeout, 28).
    assert code is None and exit_code in (7, 28), exit_code


@pytest.mark.parametrize("key", [None, "not-the-key"], ids=["missing", "wrong"])
def test_refused_without_the_api_key(front, endpoint, key):
    config = None
    if key:
        put_text(front, "/root/.wrong-key", f'header = "Authorization: Bearer {key}"\n')
        config = "/root/.wrong-key"
    code, _, _ = chat(front, endpoint, *CLIENT, config=config)
    assert code == 401


def test_nothing_else_listens_on_the_backends_lan_address(hosts, site):
    # sshd, the TLS port and the node exporter (the lab's monitor host is the frontend).
    service_controls.test_NET_01_lan_listeners(hosts[BACKEND], site, BACKEND)


def test_model_server_runs_as_its_own_user_with_the_key_in_a_root_only_file(hosts, site):
    backend = hosts[BACKEND]
    service_controls.test_LLM_08_model_server_user(backend)
    service_controls.test_LLM_03_api_key_file_mode(backend, site, BACKEND)
    service_controls.test_LLM_09_api_key_nowhere_else(backend, site)


def test_the_api_key_never_appears_in_pyinfra_output(first_deploy, api_key):
    assert api_key not in first_deploy.log
    assert api_key not in first_deploy.output


def test_a_drifted_api_key_is_put_back_without_a_readable_copy_on_the_way(first_deploy, hosts, api_key, site):
    """The key goes into the login user's 0700 staging directory, never /tmp, and is copied into place under umask
    077: at no moment is there a copy others could read (pyinfra's own upload would leave one in /tmp)."""
    backend = hosts[BACKEND]
    backend.check_output(f"echo drifted > {KEY_FILE}")
    result = deploy("--limit", BACKEND)
    assert (f"Model server | Write the API key to {KEY_FILE} (root and the llm group only)", BACKEND) in result.changed
    assert backend.file(KEY_FILE).content_string == f"{api_key}\n"
    service_controls.test_LLM_03_api_key_file_mode(backend, site, BACKEND)
    staging = backend.file(f"/home/{ADMIN}/{STAGING}")
    assert (staging.mode, staging.listdir()) == (0o700, [])
    assert backend.run("ls -a /tmp /var/tmp | grep -e pyinfra- -e clawlan-new").stdout == ""
    assert deploy().changed == set()


def test_model_server_hardening_score(hosts):
    """systemd-analyze security: the issue's target is an exposure of 4.0 or less."""
    service_controls.test_LLM_06_model_server_hardening(hosts[BACKEND])


def test_changing_a_server_setting_restarts_only_the_model_server(first_deploy, hosts, front, endpoint):
    backend = hosts[BACKEND]
    before = main_pid(backend, UNIT), main_pid(backend, "nginx.service")
    result = deploy("--data", "model_server_prompt_cache_mib=128")
    assert result.changed == {
        ("Model server | Write the model server's settings to /etc/clawlan/model-server.conf", BACKEND),
        (
            "Model server | Run clawlan-model-server.service (restarted only when its build, model, "
            "settings or unit changed)",
            BACKEND,
        ),
    }
    after = main_pid(backend, UNIT), main_pid(backend, "nginx.service")
    assert after[0] != before[0] and after[1] == before[1]
    assert " --cache-ram 128 " in backend.file(CONFIG_FILE).content_string
    assert chat(front, endpoint, *CLIENT)[0] == 200  # ready as soon as the restart returned

    deploy()
    assert " --cache-ram 256 " in backend.file(CONFIG_FILE).content_string


def test_cache_reuse_would_change_a_hybrid_models_answers_so_it_stays_off(hosts, site):
    """model_server_cache_reuse_tokens (--cache-reuse) shifts cached chunks into place: on qwen3next the attention
    layers' cache moves, but the recurrent state is restored from a checkpoint that still holds the dropped turn."""
    port = site.model_server_config(BACKEND).port
    deploy("--data", "model_server_cache_reuse_tokens=256")
    try:
        verdict = cache_check(hosts[BACKEND], port, KEY_FILE, "dropped-turn")
    finally:
        deploy()
    assert [chat["label"] for chat in verdict["differing"]] == ["first exchange dropped"], verdict
    assert " --cache-reuse 0 " in hosts[BACKEND].file(CONFIG_FILE).content_string


def test_a_corrupt_model_fails_clearly_and_the_old_one_keeps_serving(hosts, front, endpoint, site, tmp_path):
    backend = hosts[BACKEND]
    pid = main_pid(backend, UNIT)
    corrupt = tmp_path / "clawlan-tiny-v2.gguf"
    data = bytearray(LLAMA_TOY_MODEL.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    claimed = site.model_server_config(BACKEND).model_sha256  # what the file should have been
    result = deploy(
        "--data", f"model_server_model_source={corrupt}", "--data", f"model_server_model_sha256={claimed}", check=False
    )
    assert f"{corrupt} has sha256" in result.log and f"the inventory pins {claimed}" in result.log
    assert main_pid(backend, UNIT) == pid
    assert not backend.file("/var/lib/clawlan/models/clawlan-tiny-v2.gguf").exists
    assert chat(front, endpoint, *CLIENT)[0] == 200


def test_an_interrupted_download_resumes(hosts, lab, site, front, endpoint):
    backend = hosts[BACKEND]
    config = site.model_server_config(BACKEND)
    path = "/var/lib/clawlan/models/clawlan-tiny-downloaded.gguf"
    gateway = str(next(lab.subnet.hosts()))  # this machine, on the lab network
    with FileServer(gateway, {"/clawlan-tiny-downloaded.gguf": QWEN_MODEL}, bytes_per_second=48 * 1024) as server:
        args = ["--data", f"model_server_model_source={server.url}/clawlan-tiny-downloaded.gguf"]
        run = subprocess.Popen(
            [PYINFRA, "-y", LAB_INVENTORY, "deploys/full.py", *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while backend.run(f"test $(stat -c %s {path}.partial 2>/dev/null || echo 0) -gt 100000").rc != 0:
                assert time.monotonic() < deadline and run.poll() is None, "the download never started"
                time.sleep(0.2)
            backend.run("pkill -f 'curl --fail --location'")  # the transfer dies midway
            assert run.wait(timeout=120) != 0
        finally:
            run.kill()
        partial_size = int(backend.check_output(f"stat -c %s {path}.partial"))
        assert 100000 < partial_size < QWEN_MODEL.stat().st_size
        assert not backend.file(path).exists

        server.bytes_per_second = 64 << 20  # the rest of the 45 MB at LAN speed
        deploy(*args)
        assert server.ranges[-1] == f"bytes={partial_size}-"  # resumed where it stopped
    assert backend.check_output(f"sha256sum {path}").split()[0] == config.model_sha256
    assert f"--model {path} " in backend.file(CONFIG_FILE).content_string
    assert chat(front, endpoint, *CLIENT)[0] == 200

    deploy()
    assert f"--model {config.model_path} " in backend.file(CONFIG_FILE).content_string
    backend.run(f"rm -f {path} {path}.sha256")


HIDE_DEVICE = f"/etc/systemd/system/{UNIT}.d/zz-test-hide-the-device.conf"


def shader_cache_files(backend) -> dict[str, str]:
    """Mesa's shader cache files of the model server: path -> inode."""
    listing = backend.check_output(f"find /var/cache/{SHADER_CACHE} -type f -printf '%p %i\\n'")
    return dict(line.rsplit(" ", 1) for line in listing.splitlines())


def test_a_server_that_lost_its_device_fails_the_deploy_naming_why_and_the_shader_cache_is_kept(
    hosts, site, front, endpoint
):
    """llama.cpp skips a CPU-type Vulkan device unless GGML_VK_VISIBLE_DEVICES names it: the server then answers from
    the CPU, and only its start-up log tells. The deploy reads it and stops, naming the cause (LLM-11 states it for a
    running site). Mesa's compiled shaders outlive the restarts, in the unit's CacheDirectory."""
    assert site.model_server_config(BACKEND).compute == VULKAN  # the lab's backend: lavapipe, Mesa's software GPU
    backend = hosts[BACKEND]
    cached = shader_cache_files(backend)
    assert cached, f"nothing in /var/cache/{SHADER_CACHE}: Mesa compiled its shaders somewhere else"
    backend.check_output(f"mkdir -p {posixpath.dirname(HIDE_DEVICE)}")
    put_text(backend, HIDE_DEVICE, "[Service]\nUnsetEnvironment=GGML_VK_VISIBLE_DEVICES\n", mode=0o644)
    backend.check_output(f"systemctl daemon-reload && systemctl restart {UNIT}")
    try:
        code, text, _ = chat(front, endpoint, *CLIENT)
        assert code == 200, text  # the silent fallback: chats are still answered, from the CPU
        with pytest.raises(AssertionError, match="found no Vulkan device to use, so it runs on the CPU"):
            service_controls.test_LLM_11_served_from_the_gpu(backend, site, BACKEND)
        result = deploy(check=False)
        assert result.returncode != 0, result.log[-3000:]
        assert "lab-back: llama-server found no Vulkan device to use, so it runs on the CPU" in result.log
        assert "GGML_VK_VISIBLE_DEVICES=0" in result.log  # where to look
    finally:
        backend.check_output(f"rm -f {HIDE_DEVICE} && rmdir --ignore-fail-on-non-empty {posixpath.dirname(HIDE_DEVICE)}"
                             f" && systemctl daemon-reload && systemctl restart {UNIT}")  # fmt: skip
    assert deploy().changed == set()
    service_controls.test_LLM_11_served_from_the_gpu(backend, site, BACKEND)
    code, text, _ = chat(front, endpoint, *CLIENT)
    assert code == 200, text
    after = shader_cache_files(backend)
    assert {path: after.get(path) for path in cached} == cached, "the shader cache was emptied by a restart"


def test_the_proof_of_the_gpu_outlives_the_journal(hosts, site):
    """The server logs every chat beside its start-up lines, and journald rotates them away in time. The unit keeps
    its start's lines in a record of its own: with the journal emptied, a deploy changes nothing and LLM-11 passes;
    without the record it could not tell where the model went (which is why the record is there)."""
    backend = hosts[BACKEND]
    backend.check_output("journalctl --rotate --quiet && journalctl --vacuum-time=1s --quiet")
    logged = backend.run(f"journalctl --boot --quiet --output cat _SYSTEMD_UNIT={UNIT} | grep -F ' layers to GPU'")
    assert logged.stdout == "", "the journal still holds the start-up lines"
    assert deploy().changed == set()
    service_controls.test_LLM_11_served_from_the_gpu(backend, site, BACKEND)
    backend.check_output(f"mv {STARTUP_RECORD} {STARTUP_RECORD}.aside")
    try:
        result = deploy(check=False)
        assert result.returncode != 0 and "is no longer in the journal" in result.log, result.log[-3000:]
    finally:
        backend.check_output(f"mv {STARTUP_RECORD}.aside {STARTUP_RECORD}")
    assert deploy().changed == set()

"""The engine end to end: llama-server's parallel slots, its metrics for the monitor's identity only, the queue
alert, tools through the gateway, and the switch to llama-cpp-python's server and back.

Chats start on the frontend (lab-front), as the probe's and the latency suite's do: the backend path with the
probe's certificate, the gateway path on the frontend's LAN address.
"""

from __future__ import annotations

import json
import threading

import pytest

from roles.common.tls import CA_CERT, HOST_CERT, HOST_KEY
from roles.gateway.config import ENV_FILE as GATEWAY_ENV_FILE
from roles.model_server.config import UNIT as MODEL_UNIT
from roles.monitor.common import MONITOR_CERT, MONITOR_KEY
from tests.compliance import test_services as service_controls
from tests.e2e.conftest import deploy
from tests.support.chats import path_targets, run_chats
from tests.support.prometheus import alert_states, prometheus_url, query
from tests.support.remote import curl, put_text
from tests.support.waiting import wait_for

FRONTEND, BACKEND = "lab-front", "lab-back"
TOOLS_CHAT = "/root/.clawlan-tools-chat.json"
RUN_MODEL_SERVER = (
    "Model server | Run clawlan-model-server.service (restarted only when its build, model, settings or unit changed)"
)


@pytest.fixture(scope="module")
def front(first_deploy, hosts):
    return hosts[FRONTEND]


@pytest.fixture(scope="module")
def metrics_url(site):
    return f"https://{site.topology.model_endpoint_name()}:{site.ingress_config(BACKEND).port}/metrics"


def two_chats_at_once(front, site, max_tokens: int) -> list[dict]:
    target = path_targets(site, FRONTEND, max_tokens=max_tokens)["backend"]
    records = run_chats(front, target, count=2, concurrency=2)
    assert all("error" not in r for r in records), records
    return records


def interleaved(records: list[dict]) -> bool:
    """Both chats started together (within a few ms): the later first token came before the earlier chat was half
    done. One slot makes the second chat's first token wait for the whole first chat."""
    return max(r["ttft_s"] for r in records) < 0.5 * min(r["duration_s"] for r in records)


def test_the_backend_runs_llama_server_with_its_slots(hosts, site):
    # Its key file, the key nowhere else and its hardening: test_02_backend, on the same (default) engine.
    service_controls.test_LLM_10_parallel_slots(hosts[BACKEND], site, BACKEND)


def test_two_chats_stream_at_the_same_time(front, site):
    records = two_chats_at_once(front, site, max_tokens=400)
    assert interleaved(records), f"one chat waited for the other: {records}"


def test_metrics_answer_the_monitors_certificate(front, metrics_url):
    client = ("--cert", MONITOR_CERT, "--key", MONITOR_KEY, "--cacert", CA_CERT)
    code, text, _ = curl(front, metrics_url, *client)
    assert code == 200, text
    assert "llamacpp:requests_deferred" in text  # nginx added the key the monitor does not hold


@pytest.mark.parametrize(
    "client, refused",
    [
        (("--cert", HOST_CERT, "--key", HOST_KEY, "--cacert", CA_CERT), 403),  # the frontend's identity
        (("--cacert", CA_CERT), 400),  # no certificate
    ],
    ids=["frontend-certificate", "no-certificate"],
)
def test_metrics_are_refused_to_every_other_client(front, metrics_url, client, refused):
    code, text, _ = curl(front, metrics_url, *client)
    assert code == refused, text


def test_the_monitor_identity_opens_no_chat(front, site):
    url = f"https://{site.topology.model_endpoint_name()}:{site.ingress_config(BACKEND).port}/v1/models"
    code, _, _ = curl(front, url, "--cert", MONITOR_CERT, "--key", MONITOR_KEY, "--cacert", CA_CERT)
    assert code == 403


def test_prometheus_scrapes_the_model_server(first_deploy, site):
    up = wait_for(lambda: query(prometheus_url(site), 'up{job="model_server"}'), 60, "the model server scraped")
    assert up == {(("instance", BACKEND), ("job", "model_server")): 1.0}


def test_the_queue_alert_fires_while_chats_wait_and_resolves_after(front, site):
    """More chats than slots, kept up until the alert fires: people queueing is seen and reported."""
    prometheus = prometheus_url(site)
    slots = site.model_server_config(BACKEND).parallel_slots
    # Answers long enough that a scrape always finds chats waiting, short enough that a chat behind two rounds of
    # them is answered within its timeout on the lab's software GPU (~40 tokens/s per slot with every slot busy).
    target = {**path_targets(site, FRONTEND, max_tokens=400)["backend"], "timeout_s": 120}
    stop = threading.Event()
    failures: list[dict] = []

    def load():
        # 3 x slots chats in flight, refilled as each ends: twice the slots keep waiting until the batch's tail.
        while not stop.is_set():
            records = run_chats(front, target, count=6 * slots, concurrency=3 * slots)
            failures.extend(r for r in records if "error" in r)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_for(lambda: query(prometheus, "llamacpp:requests_deferred > 0"), 60, "chats deferred")
        wait_for(
            lambda: alert_states(prometheus, "ClawlanModelServerQueueing").get(BACKEND) == "firing",
            90,
            "ClawlanModelServerQueueing firing",
        )
    finally:
        stop.set()
        loader.join(timeout=300)
    assert not failures, failures[:3]  # queued chats wait; none is dropped
    wait_for(lambda: BACKEND not in alert_states(prometheus, "ClawlanModelServerQueueing"), 90, "the alert resolved")


def test_a_chat_with_tools_through_the_gateway_is_accepted(front, site):
    """Tools are on with llama-server: OpenClaw sends its tool definitions with the chat, llama-server's Jinja path
    takes them. The lab model cannot be expected to call one; the request path must work."""
    gateway = site.gateway_config(FRONTEND)
    assert gateway.model_tools
    assert "supportsTools" not in json.dumps(gateway.openclaw_config())
    body = {
        "model": "openclaw",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "What time is it?"}],
        "tools": [{"type": "function", "function": {"name": "clock", "description": "The time now",
                                                      "parameters": {"type": "object", "properties": {}}}}],
    }  # fmt: skip
    put_text(front, TOOLS_CHAT, json.dumps(body))
    code, text = gateway_chat(front, gateway)
    assert code == 200, text
    assert json.loads(text)["choices"][0]["message"]


def gateway_chat(front, gateway) -> tuple[int, str]:
    """POST TOOLS_CHAT to the gateway with its token read on the host (never on a command line)."""
    url = f"{gateway.url}/v1/chat/completions"
    header = f"sed -n 's/^OPENCLAW_GATEWAY_TOKEN=/Authorization: Bearer /p' {GATEWAY_ENV_FILE}"
    result = front.run(
        f"{header} | curl -s -m 120 -w '\\n%{{http_code}}' -H @- -H 'Content-Type: application/json'"
        f" --cacert {CA_CERT} --data @{TOOLS_CHAT} {url}"
    )
    text, _, code = result.stdout.rpartition("\n")
    return int(code), text


def test_switching_the_engine_is_one_inventory_change_each_way(front, hosts, site):
    backend = hosts[BACKEND]
    gateway = site.gateway_config(FRONTEND)
    # llama-cpp-python serves on the CPU: the lab's backend leaves its Vulkan build for the CPU build.
    cpu = ("--data", "model_server_compute=cpu")
    result = deploy("--data", "model_server_engine=llama-cpp-python", *cpu)
    assert (RUN_MODEL_SERVER, BACKEND) in result.changed
    running = backend.check_output(f"systemctl show --property ExecStart --value {MODEL_UNIT}")
    assert "llama_cpp.server" in running
    put_text(front, TOOLS_CHAT, json.dumps({"model": "openclaw", "max_tokens": 8,
                                            "messages": [{"role": "user", "content": "Bonjour"}]}))  # fmt: skip
    code, text = gateway_chat(front, gateway)
    assert code == 200, text
    # One slot: the second chat waits for the first to end (the test above would fail on this engine).
    assert not interleaved(two_chats_at_once(front, site, max_tokens=400))

    result = deploy(*cpu)  # llama-server, on the CPU
    assert (RUN_MODEL_SERVER, BACKEND) in result.changed
    assert not any("Install llama-cpp-python" in name for name, _ in result.changed)  # one build holds both
    service_controls.test_LLM_10_parallel_slots(backend, site, BACKEND)
    code, text = gateway_chat(front, gateway)
    assert code == 200, text
    assert interleaved(two_chats_at_once(front, site, max_tokens=400))

    result = deploy()  # the inventory's: llama-server on the Vulkan device
    assert (RUN_MODEL_SERVER, BACKEND) in result.changed
    code, text = gateway_chat(front, gateway)
    assert code == 200, text
    assert deploy().changed == set()

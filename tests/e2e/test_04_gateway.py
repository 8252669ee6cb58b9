"""The gateway end to end: the lab machine plays the user's laptop on the LAN.

A chat goes laptop -> gateway (frontend LAN address, token) -> egress proxy (frontend loopback) ->
mutual TLS -> backend nginx -> model server, and the backend's access log proves it arrived.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.runner import REPO
from roles.common.locks import NODE, OPENCLAW, PACKAGE_LOCK, REPOSITORY_LOCKS, REQUIREMENTS, read_lock
from roles.gateway.config import (
    AUDIT_MAX_AGE_S,
    AUDIT_PROGRAM,
    AUDIT_REPORT,
    AUDIT_UNIT,
    BACKUP_DIR,
    CONFIG_FILE,
    NODE_ROOT,
    OPENCLAW_ROOT,
    STATE_DIR,
    UNIT,
)
from roles.model_server.config import UNIT as MODEL_UNIT
from roles.model_server.config import WARM_MARKER
from roles.monitor.probe import UNIT as PROBE_UNIT
from tests.compliance import test_services as service_controls
from tests.compliance.conftest import GATEWAY_AUDIT
from tests.e2e.conftest import LAB_INVENTORY, deploy
from tests.support.chats import evaluated, path_targets, run_session
from tests.support.gateway import chat, request
from tests.support.remote import chats_logged, last_chat_logged, main_pid, pool_states, put_text
from tests.support.waiting import seconds_until
from tools.locks import pinned_version

FRONTEND, BACKEND = "lab-front", "lab-back"
RUN_GATEWAY = (
    f"Gateway | Run {UNIT} (restarted only when its versions, configuration, secrets, certificate or unit changed)"
)
RUN_AUDIT = "Gateway | Run the security audit now (the gateway or the audit changed)"
SHOW_AUDIT = f"python3 {AUDIT_PROGRAM} show {AUDIT_REPORT} --max-age {AUDIT_MAX_AGE_S}"  # the report, if current


@pytest.fixture(scope="module")
def gateway_url(first_deploy, site):
    return site.gateway_config(FRONTEND).url


@pytest.fixture(scope="module")
def token(first_deploy, site):
    return site.control.gateway_token_file.read_text().strip()


def backend_chats(hosts) -> int:
    return chats_logged(hosts[BACKEND])


@pytest.fixture
def probe_paused(hosts):
    """The frontend's probe stopped, and the backend idle: the probe chats with the backend on its own clock (on
    both paths), so only with it paused is every chat the backend logs the test's own."""
    front = hosts[FRONTEND]
    front.run_expect([0], f"systemctl stop {PROBE_UNIT}")
    try:
        # A probe chat OpenClaw was still running when the probe stopped may yet reach the backend.
        count, quiet_since, deadline = backend_chats(hosts), time.monotonic(), time.monotonic() + 60
        while time.monotonic() - quiet_since < 3:
            assert time.monotonic() < deadline, "the backend kept serving chats with the probe stopped"
            time.sleep(0.5)
            if (now := backend_chats(hosts)) != count:
                count, quiet_since = now, time.monotonic()
        yield
    finally:
        front.run_expect([0], f"systemctl start {PROBE_UNIT}")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer_on_the_lan_address(gateway_url, site, path):
    if path == "/readyz":
        service_controls.test_GW_07_gateway_ready(site, FRONTEND)
        return
    status, text = request(gateway_url + path)
    assert status == 200, text


def test_the_web_ui_is_served_on_the_lan_address(gateway_url):
    status, text = request(gateway_url + "/")
    assert status == 200
    assert "<html" in text.lower() and "openclaw" in text.lower()


def test_a_chat_through_the_gateway_is_answered_by_the_backends_model(gateway_url, token, hosts, site):
    before = backend_chats(hosts)
    status, text = chat(gateway_url, token)
    assert status == 200, text
    answer = json.loads(text)["choices"][0]["message"]["content"]
    assert answer.strip()
    assert backend_chats(hosts) > before  # the answer came through the backend's mutual-TLS port
    last = last_chat_logged(hosts[BACKEND])
    assert f'"{site.pki_config(FRONTEND).issuance.spec.subject_dn()}"' in last and " 200 " in last


@pytest.mark.parametrize("credential", [None, "not-the-token"], ids=["no token", "wrong token"])
def test_a_chat_without_the_token_is_refused(gateway_url, hosts, credential, probe_paused):
    before = backend_chats(hosts)
    status, _ = chat(gateway_url, credential)
    assert status == 401
    assert backend_chats(hosts) == before


def test_state_config_and_secrets_are_private(hosts):
    service_controls.test_GW_02_gateway_config_mode(hosts[FRONTEND])  # state dir 0700, config 0600, the gateway's
    service_controls.test_GW_03_gateway_env_mode(hosts[FRONTEND])  # EnvironmentFile 0600 root


def test_the_gateway_runs_as_its_own_user(hosts):
    service_controls.test_GW_10_gateway_user(hosts[FRONTEND])
    service_controls.test_GW_01_gateway_running(hosts[FRONTEND])  # running, and enabled at boot


def test_the_token_is_in_no_unit_config_or_output(hosts, site, token, first_deploy):
    service_controls.test_GW_11_token_nowhere_else(hosts[FRONTEND], site)
    assert token not in first_deploy.log and token not in first_deploy.output


def test_openclaw_accepts_its_configuration(hosts):
    """The audit validates the configuration first (the current report's, or the audit's run now)."""
    audit = service_controls.audit_record(hosts[FRONTEND].run(GATEWAY_AUDIT))
    service_controls.test_GW_04_gateway_config_valid(audit)


def test_the_deploy_leaves_a_current_security_audit_that_finds_nothing_critical(hosts):
    """The report the compliance suite reads instead of running the audit itself (GW-04, GW-05)."""
    front = hosts[FRONTEND]
    shown = front.run(SHOW_AUDIT)  # the report as the deploy left it, never an audit run now
    assert shown.rc == 0, shown.stderr
    audit = service_controls.audit_record(shown)
    print("openclaw security audit:", audit[1]["summary"])
    service_controls.test_GW_05_gateway_security_audit(audit)
    service_controls.test_GW_12_audit_report_mode(front)
    service_controls.test_GW_13_audit_hardening(front)


def test_a_readable_configuration_stales_the_report_and_the_new_audit_finds_it(hosts):
    front = hosts[FRONTEND]
    front.check_output(f"chmod 644 {CONFIG_FILE}")
    try:
        stale = front.run(SHOW_AUDIT)
        assert stale.rc == 1 and f"{CONFIG_FILE} changed since the audit ran" in stale.stderr
        front.check_output(f"systemctl restart {AUDIT_UNIT}.service")
        report = json.loads(front.check_output(SHOW_AUDIT))["report"]
        assert "fs.config.perms_world_readable" in [f["checkId"] for f in report["findings"]]
    finally:
        front.check_output(f"chmod 600 {CONFIG_FILE}")
    front.check_output(f"systemctl restart {AUDIT_UNIT}.service")
    service_controls.test_GW_05_gateway_security_audit(service_controls.audit_record(front.run(SHOW_AUDIT)))


def test_gateway_hardening_score(hosts):
    service_controls.test_GW_06_gateway_hardening(hosts[FRONTEND])


def test_on_the_lan_the_frontend_exposes_only_the_gateway_ssh_and_monitoring(hosts, site):
    # The frontend is the lab's monitor host: node exporter, probe and Prometheus on its LAN address.
    service_controls.test_NET_01_lan_listeners(hosts[FRONTEND], site, FRONTEND)


def test_changing_a_gateway_setting_restarts_only_the_gateway(hosts, gateway_url, token):
    front, back = hosts[FRONTEND], hosts[BACKEND]
    others = main_pid(front, "nginx.service"), main_pid(back, MODEL_UNIT), main_pid(back, "nginx.service")
    gateway_pid = main_pid(front, UNIT)

    result = deploy("--data", "gateway_auth_max_attempts=20")
    assert result.changed == {
        ("Gateway | Stage the gateway configuration", FRONTEND),
        ("Gateway | Validate the staged configuration with `openclaw config validate`", FRONTEND),
        (f"Gateway | Write the gateway configuration {CONFIG_FILE} (0600)", FRONTEND),
        (RUN_GATEWAY, FRONTEND),
        (RUN_AUDIT, FRONTEND),
    }
    assert main_pid(front, UNIT) != gateway_pid
    assert (main_pid(front, "nginx.service"), main_pid(back, MODEL_UNIT), main_pid(back, "nginx.service")) == others
    config = json.loads(front.file(CONFIG_FILE).content_string)
    assert config["gateway"]["auth"]["rateLimit"]["maxAttempts"] == 20
    assert chat(gateway_url, token)[0] == 200  # ready as soon as the deploy returned

    assert deploy().changed_hosts() == {FRONTEND}
    assert deploy().changed == set()


def test_a_restarted_model_server_serves_the_next_chat(hosts, gateway_url, token):
    hosts[BACKEND].check_output(f"systemctl restart {MODEL_UNIT}")
    status, text = chat(gateway_url, token, "are you back?")
    assert status == 200, text


def test_a_restarted_model_server_is_admitted_only_once_the_gateways_prompt_is_warm(hosts, site):
    """The ingress keeps the gateway's prompt prefix as its chats pass; a (re)started model server evaluates it
    before the balancer admits it (ExecStartPost, then the warm marker the ingress's health check needs). The first
    person's chat after the restart, a new session, evaluates at most twice what a new session evaluates on a warm
    server (its own lines), not the whole prompt again."""
    front, back = hosts[FRONTEND], hosts[BACKEND]
    target = path_targets(site, FRONTEND)["gateway"]
    (on_a_warm_server,) = run_session(front, target, "clawlan-e2e-warm-before", 1)
    back.check_output(f"systemctl restart {MODEL_UNIT}")  # returns once the unit is started: warm
    assert back.file(WARM_MARKER).exists
    (first,) = run_session(front, target, "clawlan-e2e-first-after-restart", 1)
    print(f"warm-up: a new session evaluates {evaluated(on_a_warm_server)} tokens on a warm server,"
          f" {evaluated(first)} first after a restart, of {first['prompt_tokens']}")  # fmt: skip
    assert evaluated(first) <= 2 * evaluated(on_a_warm_server), (on_a_warm_server, first)
    assert "warmed the gateway's prompt prefix" in back.check_output(
        f"journalctl -u {MODEL_UNIT} -o cat --since=-5min | grep -F warmed | tail -n 1"
    )
    # The other slots follow in the background: several people at once then find a warm slot each (BENCHMARKS.md,
    # People at once). Each copies slot 0's prefix from the server's host-memory cache instead of evaluating it
    # again: a few tokens each, not the prompt. Read from this start's own journal lines.
    slots = site.model_server_config(BACKEND).parallel_slots
    start = back.check_output(f"systemctl show -p InvocationID --value {MODEL_UNIT}").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", start), f"not an invocation ID: {start!r}"  # it goes into a command below

    def evaluated_per_slot() -> dict[int, int]:
        journal = back.check_output(
            f"journalctl -o cat _SYSTEMD_INVOCATION_ID={start} | grep -F 'warmed the gateway' || true"
        )
        found = re.findall(r"prompt prefix(?: in slot (\d+))? \(.*?\): (\d+) tokens evaluated", journal)
        return {int(slot or 0): int(tokens) for slot, tokens in found}

    took = seconds_until(lambda: set(evaluated_per_slot()) == set(range(slots)), 120, f"slots 0-{slots - 1} warmed")
    per_slot = evaluated_per_slot()
    print(f"warm-up: slots 1-{slots - 1} warmed {took:.1f} s after the first chat; tokens evaluated: {per_slot}")
    assert all(per_slot[slot] * 10 < per_slot[0] for slot in range(1, slots)), per_slot

    # Without the marker (a server still warming, stopped or restarting) the balancer keeps the backend out.
    egress = site.egress_config(FRONTEND)
    back.check_output(f"mv {WARM_MARKER} {WARM_MARKER}.aside")
    try:
        seconds_until(lambda: pool_states(front, egress).get(BACKEND) != "UP", 10, "the cold backend taken out")
    finally:
        back.check_output(f"mv {WARM_MARKER}.aside {WARM_MARKER}")
    seconds_until(lambda: pool_states(front, egress).get(BACKEND) == "UP", 10, "the warm backend back in")


def test_a_version_without_a_lock_is_refused_before_any_host_is_touched(hosts, gateway_url, token):
    front = hosts[FRONTEND]
    pid = main_pid(front, UNIT)
    result = deploy("--data", "gateway_openclaw_version=2099.1.1", check=False)
    assert result.returncode != 0 and "no lock for openclaw 2099.1.1" in result.log
    assert result.changed == set()
    assert main_pid(front, UNIT) == pid


def tampered_locks(tmp_path, package: str) -> tuple[Path, str]:
    """A copy of the repository's locks with one hash of ``package``'s pinned lock changed, and the version."""
    locks = tmp_path / "locks"
    shutil.copytree(REPOSITORY_LOCKS, locks)
    version = pinned_version(package)
    if package == OPENCLAW:
        path = locks / package / version / PACKAGE_LOCK
        lock = json.loads(path.read_text())
        entry = lock["packages"]["node_modules/openclaw"]
        entry["integrity"] = "sha512-" + base64.b64encode(hashlib.sha512(b"not openclaw").digest()).decode()
        path.write_text(json.dumps(lock, indent=2))
    else:
        path = locks / package / version / REQUIREMENTS
        path.write_text(re.sub(r"--hash=sha256:[0-9a-f]{64}", "--hash=sha256:" + "0" * 64, path.read_text()))
    return locks, version


@pytest.mark.parametrize(
    "package, operation, refusal",
    [
        (NODE, "Gateway | Install the pinned Node.js from its lock", "DO NOT MATCH THE HASHES"),
        (OPENCLAW, "Gateway | Install the pinned openclaw from its lock", "EINTEGRITY"),
    ],
)
def test_a_tampered_lock_fails_the_install_and_leaves_the_gateway_serving(
    hosts, gateway_url, token, tmp_path, package, operation, refusal
):
    """What a poisoned mirror or a changed package would do: the download does not match the lock's hash."""
    front = hosts[FRONTEND]
    pid = main_pid(front, UNIT)
    before = front.check_output(f"ls {NODE_ROOT} {OPENCLAW_ROOT}")
    locks, version = tampered_locks(tmp_path, package)
    result = deploy("--data", f"site_locks_dir={locks}", check=False)

    assert result.returncode != 0 and (operation, FRONTEND) in result.errors
    assert refusal in result.log  # pip's or npm's own words: which package, which hash
    assert main_pid(front, UNIT) == pid
    assert front.check_output(f"ls {NODE_ROOT} {OPENCLAW_ROOT}") == before  # the half-made install is gone
    assert chat(gateway_url, token)[0] == 200
    assert deploy().changed == set()


def test_a_downgrade_is_refused_and_the_gateway_keeps_serving(hosts, gateway_url, token):
    front = hosts[FRONTEND]
    pid = main_pid(front, UNIT)
    result = deploy("--data", "gateway_openclaw_version=2026.9.5", check=False)
    # Refused while planning, before any operation ran.
    assert result.returncode != 0 and "older than the installed" in result.log
    assert result.changed == set()
    assert main_pid(front, UNIT) == pid
    assert not [name for name in front.check_output(f"ls {OPENCLAW_ROOT}").split() if name.startswith("2026.9.5")]
    assert chat(gateway_url, token)[0] == 200


def test_upgrading_the_pinned_versions_is_one_inventory_change(hosts, gateway_url, token, site):
    """A site deployed with older pins, then the inventory's: the second deploy is the upgrade a user makes."""
    front = hosts[FRONTEND]
    # The older site: nothing of today's versions, state or backups on the host, nor a backup on the control machine
    # (a replacement frontend would get today's state back from it, and openclaw 2026.9.5 refuses that state).
    front.check_output(f"systemctl stop {UNIT} && rm -rf {NODE_ROOT} {OPENCLAW_ROOT} {STATE_DIR} {BACKUP_DIR}")
    shutil.rmtree(Path(site.gateway_config(FRONTEND).backup_copies_dir).expanduser(), ignore_errors=True)
    older = {"gateway_node_version": "24.16.0", "gateway_openclaw_version": "2026.9.5"}
    deploy(*(arg for key, value in older.items() for arg in ("--data", f"{key}={value}")))
    node_lock, openclaw_lock = (
        read_lock(REPOSITORY_LOCKS, NODE, "24.16.0"),
        read_lock(REPOSITORY_LOCKS, OPENCLAW, "2026.9.5"),
    )
    assert front.check_output(f"ls {NODE_ROOT}").split() == [f"24.16.0-{node_lock.digest}"]
    assert front.check_output(f"ls {OPENCLAW_ROOT}").split() == [f"2026.9.5-{openclaw_lock.digest}"]
    assert chat(gateway_url, token)[0] == 200
    pid = main_pid(front, UNIT)

    result = deploy()
    assert (RUN_GATEWAY, FRONTEND) in result.changed
    assert main_pid(front, UNIT) != pid
    # Running the new versions (its binary and its unit tell: openclaw renames its process), the old ones gone.
    service_controls.test_GW_08_pinned_versions(front, site, FRONTEND)
    service_controls.test_GW_14_only_the_pinned_versions(front, site, FRONTEND)
    assert chat(gateway_url, token)[0] == 200
    assert deploy().changed == set()


HOSTILE_CALLS = [  # what an injected instruction asks of the agent: a command, and a private file outside its workspace
    {"name": "exec", "arguments": {"command": "touch /var/lib/openclaw/PWNED-by-the-model"}},
    {"name": "read", "arguments": {"path": CONFIG_FILE}},
]


def test_an_agent_told_to_run_a_command_or_read_a_private_file_does_neither(
    hosts, gateway_url, token, site, probe_paused
):
    """The model is not trusted: its output may be a web page's or a file's instructions. In place of the backend's
    model, a model that answers every chat with tool calls (tests/support/hostile_model.py) sits behind the real
    nginx and balancer: the agent must offer it no tool (gateway_agent_tools 'chat'), run none of its calls, and hand
    nothing of the file back to it. With OpenClaw's default tools the command ran (seen on the lab)."""
    front, back = hosts[FRONTEND], hosts[BACKEND]
    port, log = site.model_server_config(BACKEND).port, "/root/hostile-model.jsonl"
    put_text(back, "/root/hostile_model.py", (REPO / "tests/support/hostile_model.py").read_text(), 0o644)
    put_text(back, "/root/hostile-calls.json", json.dumps(HOSTILE_CALLS), 0o644)
    back.run_expect([0], f"rm -f {log} && systemctl stop {MODEL_UNIT} && systemd-run --unit clawlan-hostile-model"
                         f" python3 /root/hostile_model.py {port} {log} /root/hostile-calls.json")  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # the balancer's checks find the "model" answering
        while (answer := chat(gateway_url, token, "run the command and show me the file"))[0] != 200:
            assert time.monotonic() < deadline, f"no chat went through to the hostile model: {answer}"
            time.sleep(1)
        requests = [json.loads(line) for line in back.file(log).content_string.splitlines()]
    finally:
        back.run(f"systemctl stop clawlan-hostile-model; systemctl reset-failed clawlan-hostile-model;"
                 f" systemctl start {MODEL_UNIT}")  # fmt: skip
    assert requests and all(request["tools"] == [] for request in requests), [r["tools"] for r in requests]
    assert not front.file("/var/lib/openclaw/PWNED-by-the-model").exists
    assert '"customBindHost"' in front.file(CONFIG_FILE).content_string  # what a read of the file would hand back
    handed_back = [m for r in requests for m in r["messages"] if m.get("role") == "tool"]
    assert not any("customBindHost" in json.dumps(m) for m in handed_back), handed_back
    deadline = time.monotonic() + 60
    while chat(gateway_url, token, "are you back?")[0] != 200:
        assert time.monotonic() < deadline, "the model server did not serve again"
        time.sleep(1)


def test_a_rotated_token_replaces_the_old_one_with_the_next_deploy(hosts, gateway_url, token, site):
    """`make rotate-token`: a new token on the control machine at once; the next deploy makes it the only one that
    works (the gateway and the probe restart for it), and the one after changes nothing. Last in this module: the
    module's token is the old one."""
    rotated = subprocess.run([sys.executable, "tools/rotate_secret.py", "--inventory", LAB_INVENTORY, "gateway-token"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    new = site.control.gateway_token_file.read_text().strip()
    assert new != token and token not in rotated.stdout + rotated.stderr and new not in rotated.stdout
    assert chat(gateway_url, token)[0] == 200  # until the deploy
    result = deploy()
    assert {(RUN_GATEWAY, FRONTEND), (f"Latency probe | Run {PROBE_UNIT} (restarted only when its program,"
            " configuration, unit, secrets or key changed)", FRONTEND)} <= result.changed  # fmt: skip
    assert all(secret not in result.output + result.log for secret in (token, new))
    assert chat(gateway_url, token)[0] == 401
    assert chat(gateway_url, new)[0] == 200
    assert deploy().changed == set()

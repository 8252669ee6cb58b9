"""LLM, GW, NET, MON: the services on the boxes, what they expose and how they are watched."""

from __future__ import annotations

import contextlib
import http.client
import json
import posixpath
import shlex
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from roles.common.ca import vouched
from roles.common.network import port_open
from roles.common.tls import CA_CERT
from roles.common.units import UnitState
from roles.gateway.config import (
    AUDIT_REPORT,
    AUDIT_UNIT,
    BACKUP_SUFFIX,
    BACKUP_UNIT,
    EFFECTIVE_TOOLS,
    EXPORT_DIR,
    NODE_ROOT,
    OPENCLAW_ROOT,
)
from roles.gateway.config import CONFIG_FILE as GATEWAY_CONFIG
from roles.gateway.config import ENV_FILE as GATEWAY_ENV
from roles.gateway.config import STATE_DIR as GATEWAY_STATE
from roles.gateway.config import UNIT as GATEWAY_UNIT
from roles.gateway.config import USER as GATEWAY_USER
from roles.model_server.config import CONFIG_FILE as MODEL_CONFIG
from roles.model_server.config import SERVER_DIR, VENV, WARM_MARKER
from roles.model_server.config import UNIT as MODEL_UNIT
from roles.model_server.config import USER as MODEL_USER
from roles.model_server.facts import GttTotals, StartupLog
from roles.model_server.gpu import gtt_mismatch
from roles.model_server.offload import offload_problem, read_startup_log
from roles.model_server.settings import LLAMA_SERVER, RADV, VULKAN
from roles.monitor.alertmanager import CONFIG as ALERTMANAGER_CONFIG
from roles.monitor.alertmanager import UNIT as ALERTMANAGER_UNIT
from roles.monitor.alerts import WATCHDOG, alert_groups
from roles.monitor.node_exporter import UNIT as NODE_EXPORTER_UNIT
from roles.monitor.probe import UNIT as PROBE_UNIT
from roles.monitor.prometheus import UNIT as PROMETHEUS_UNIT
from roles.mtls.config import BALANCER_UNIT, INGRESS_UNIT
from roles.pki.config import METRICS_UNIT as CERTIFICATE_METRICS_UNIT
from roles.site.exposure import lan_listeners
from tests.compliance.conftest import control
from tests.support.prometheus import alertmanager_alerts, alertmanager_url, api, open_url, prometheus_url
from tests.support.remote import HARDENING_LIMIT, hardening_exposure, listening_addresses, pool_states, unit_property
from tests.support.tls import site_ca_cert, site_tls


def check_unit_running_and_enabled(host, unit):
    state = UnitState().process(host.check_output(UnitState().command(unit)).splitlines())
    assert state == {"ActiveState": "active", "UnitFileState": "enabled"}, f"{unit}: {state}"


def file_mode(host, path) -> tuple[str, str, int]:
    item = host.file(path)
    assert item.exists, f"{path} is missing"
    return item.user, item.group, item.mode


def unit_user(host, unit) -> str:
    return host.check_output(f"systemctl show --property User --value {unit}")


SEPARATOR = "--clawlan-compliance--"


def places_holding(host, secret: str, unit: str, files: tuple[str, ...]) -> list[str]:
    """Which of ``files`` and ``unit``'s main process command line contain ``secret``, read in one command.

    The secret never goes to the host (no grep on a command line there): the texts come here and are searched
    here, and nothing of them (nor the secret) goes into a failure message."""
    assert secret, "the secret is empty on the control machine"
    reads = " && ".join(f"cat {path} && echo {SEPARATOR}" for path in files)
    pid = f"$(systemctl show --property MainPID --value {unit})"
    # A unit that is not running has no command line (its own control says it is down).
    result = host.run(f'{reads} && pid={pid} && {{ [ "$pid" = 0 ] || tr "\\0" " " < /proc/$pid/cmdline; }}')
    status = result.rc
    assert status == 0, f"could not read {', '.join(files)} and the command line of {unit} (exit {status})"
    texts = result.stdout.split(SEPARATOR, len(files))
    return [place for place, text in zip((*files, f"{unit}'s command line"), texts, strict=True) if secret in text]


# --- LLM: the model server on the backend ---------------------------------------------------------------------


@control("LLM-01", "The model server runs and starts at boot", impact=1.0, roles=("backend",))
def test_LLM_01_model_server_running(host):
    """Without it the appliance answers nothing."""
    check_unit_running_and_enabled(host, MODEL_UNIT)


@control("LLM-02", "The model server listens on loopback only", impact=0.9, roles=("backend",))
def test_LLM_02_model_server_on_loopback(host, site, host_name):
    """Only nginx, which checks the frontend's certificate, may reach it: on the LAN it would bypass mutual TLS."""
    port = site.model_server_config(host_name).port
    listening = set(listening_addresses(host))
    assert {a for a in listening if a.rsplit(":", 1)[1] == str(port)} == {f"127.0.0.1:{port}"}


@control("LLM-03", "The model server's API key file is readable by root and the service only", impact=0.9,
         roles=("backend",))  # fmt: skip
def test_LLM_03_api_key_file_mode(host, site, host_name):
    """The key is the second factor behind mutual TLS; a readable copy is a leaked key. llama-server reads its key
    file itself (0640 root:llm), llama-cpp-python gets it from systemd, which reads the EnvironmentFile as root
    (0600 root)."""
    config = site.model_server_config(host_name)
    assert file_mode(host, config.key_file) == config.key_file_owner, config.key_file


def key_header(config) -> str:
    """A command printing the model server's key as an Authorization header, from the engine's key file (either
    form), for ``curl -H @-``: the key goes through a pipe, never onto a command line."""
    return f"sed -e 's/^API_KEY=//' -e 's/^/Authorization: Bearer /' {config.key_file}"


@control("LLM-04", "The model server refuses requests without the API key", impact=0.8, roles=("backend",))
def test_LLM_04_api_key_required(host, site, host_name):
    """The key must be checked even on loopback: any local process could otherwise use the model."""
    config = site.model_server_config(host_name)
    url = f"http://127.0.0.1:{config.port}/v1/models"
    without = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {url}")
    with_key = host.check_output(f"{key_header(config)} | curl -s -o /dev/null -w '%{{http_code}}' -H @- {url}")
    assert (without, with_key) == ("401", "200")


@control("LLM-05", "The pinned model file is in place", impact=1.0, roles=("backend",))
def test_LLM_05_model_file(host, site, host_name):
    """The unit names this file; it must be there and readable (its checksum was checked when it arrived)."""
    model = host.file(site.model_server_config(host_name).model_path)
    assert model.exists and model.size > 0, f"{model.path} missing or empty"


@control("LLM-07", "The model server runs the pinned llama-cpp-python", impact=0.6, roles=("backend",))
def test_LLM_07_pinned_llama_cpp_python(host, site, host_name):
    """The version is what the site tested; another one (a hand-made upgrade) changes behaviour unseen."""
    wanted = site.model_server_config(host_name).version
    found = host.check_output(f"ls -d {VENV}/lib/python3*/site-packages/llama_cpp_python-*.dist-info || true")
    versions = {path.rsplit("llama_cpp_python-", 1)[1].removesuffix(".dist-info") for path in found.split()}
    assert versions == {wanted}, f"installed: {sorted(versions) or 'none'}, pinned: {wanted}"


def only_with_llama_server(site, host_name):
    if site.model_server_config(host_name).engine != LLAMA_SERVER:
        pytest.skip("n/a: llama-cpp-python's server has no /health, /metrics or slots")


@control("LLM-10", "The model server serves parallel slots from the pinned build", impact=0.6, roles=("backend",))
def test_LLM_10_parallel_slots(host, site, host_name):
    """One slot makes every person wait for everyone before them; the build is the one the venv's llama-cpp-python
    came from (the same source, flags and build key)."""
    only_with_llama_server(site, host_name)
    config = site.model_server_config(host_name)
    running = host.check_output(f"readlink /proc/$(systemctl show --property MainPID --value {MODEL_UNIT})/exe")
    assert running == f"{SERVER_DIR}/llama-server", f"{MODEL_UNIT} runs {running}"
    health = host.check_output(f"curl -s http://127.0.0.1:{config.port}/health")
    assert json.loads(health) == {"status": "ok"}, health
    slots = json.loads(host.check_output(f"{key_header(config)} | curl -s -H @- http://127.0.0.1:{config.port}/props"))
    assert (slots["total_slots"], slots["default_generation_settings"]["n_ctx"]) == (
        config.parallel_slots,
        config.context_tokens,
    ), "slots or context per slot differ from the inventory"


@control("LLM-11", "Every layer of the model runs on the GPU the inventory names", impact=0.8, roles=("backend",))
def test_LLM_11_served_from_the_gpu(host, site, host_name):
    """A Vulkan build that finds no device, or another device than meant, serves chats all the same from the CPU, many
    times slower: its own start-up log is the proof of where the model went (the deploy reads it the same way)."""
    config = site.model_server_config(host_name)
    if config.compute != VULKAN:
        pytest.skip(f"n/a: model_server_compute is {config.compute}")
    startup = read_startup_log(host.check_output(StartupLog().command(MODEL_UNIT)).splitlines())
    problem = offload_problem(startup, config.vulkan_driver)
    assert problem is None, problem


@control("LLM-12", "The GPU's live GTT is the size the inventory sets", impact=0.6, roles=("backend",))
def test_LLM_12_gtt_in_effect(host, site, host_name):
    """On unified memory the model and its KV cache live in the GTT, whose default is about half of RAM: too small a
    GTT and the model does not load or slots fail to allocate. The deploy writes the limit, which takes effect only
    after a reboot: this fails until every amdgpu card's mem_info_gtt_total is the configured size (within
    roles/model_server/config.py's GTT_TOLERANCE_GIB, 0.5 GiB)."""
    config = site.model_server_config(host_name)
    if config.compute != VULKAN:
        pytest.skip(f"n/a: model_server_compute is {config.compute}")
    if config.vulkan_driver != RADV:
        pytest.skip(f"n/a: {config.vulkan_driver}'s device memory is RAM, there is no GTT")
    totals = GttTotals().process(host.check_output(GttTotals().command()).splitlines())
    problem = gtt_mismatch(totals, config.gtt_gib)
    assert problem is None, f"{problem}: a limit the deploy just wrote takes effect after a reboot"


@control("LLM-13", "The model server warmed the gateway's prompt before the balancers admitted it", impact=0.5,
         roles=("backend",))  # fmt: skip
def test_LLM_13_started_warm(host, site, host_name):
    """After a start the server evaluates the prompt prefix the gateway last sent (kept by the ingress), then makes
    the marker the ingress's health check needs: without it the balancers keep the backend out; with a failed warm-up
    the first person after every restart waits for the whole prompt (~4 s for the default profile's on the reference
    box, ~25 s for OpenClaw's own). The marker holds the warm-up's outcome."""
    only_with_llama_server(site, host_name)
    marker = host.file(WARM_MARKER)
    assert marker.exists, f"no {WARM_MARKER}: the ingress answers the balancers' health checks 503"
    outcome = marker.content_string.strip()
    assert outcome.startswith(("warmed the gateway's prompt prefix", "no prompt prefix captured yet")), (
        f"{WARM_MARKER}: {outcome or 'empty'}"
    )


@control("LLM-06", "The model server's unit is hardened", impact=0.5, roles=("backend",))
def test_LLM_06_model_server_hardening(host):
    """A compromised model server should reach nothing but its model and its socket."""
    assert hardening_exposure(host, MODEL_UNIT)[0] <= HARDENING_LIMIT


@control("LLM-08", "The model server runs as its own user", impact=0.7, roles=("backend",))
def test_LLM_08_model_server_user(host):
    """Whatever a crafted request makes llama.cpp do, it does as this user: not root, not another service's."""
    user = unit_user(host, MODEL_UNIT)
    assert user == MODEL_USER, f"{MODEL_UNIT} runs as {user or 'root'}, not {MODEL_USER}"


@control("LLM-09", "The API key is in no command line, unit or settings file", impact=0.8, roles=("backend",))
def test_LLM_09_api_key_nowhere_else(host, site):
    """Command lines are readable by every user on the box, units and settings files by anyone who reads /etc: the key
    belongs in its root-only file (LLM-03) and nowhere else."""
    key = site.control.model_server_api_key_file.read_text().strip()
    leaked = places_holding(host, key, MODEL_UNIT, (MODEL_CONFIG, f"/etc/systemd/system/{MODEL_UNIT}"))
    assert not leaked, f"the API key is in {leaked}"


# --- GW: the gateway on the frontends ---------------------------------------------------------------------------


@control("GW-01", "The gateway runs and starts at boot", impact=1.0, roles=("frontend",))
def test_GW_01_gateway_running(host):
    """It is the appliance's web UI and API."""
    check_unit_running_and_enabled(host, GATEWAY_UNIT)


@control("GW-02", "The gateway's configuration and state are private to it", impact=0.9, roles=("frontend",))
def test_GW_02_gateway_config_mode(host):
    """openclaw's own audit calls a readable config critical: it holds the agent's settings and sessions."""
    assert file_mode(host, GATEWAY_CONFIG) == (GATEWAY_USER, GATEWAY_USER, 0o600)
    assert file_mode(host, GATEWAY_STATE) == (GATEWAY_USER, GATEWAY_USER, 0o700)


@control("GW-03", "The gateway's token file is 0600 root", impact=0.9, roles=("frontend",))
def test_GW_03_gateway_env_mode(host):
    """The token opens the gateway to anyone holding it, the model key the backend."""
    assert file_mode(host, GATEWAY_ENV) == ("root", "root", 0o600)


@pytest.fixture
def gateway_audit(_gateway_audits_started, host_name) -> tuple[int, dict]:
    """openclaw's security audit of this frontend, as the host keeps it: the audit's exit status and report."""
    return audit_record(_gateway_audits_started[host_name].result(timeout=120))


def audit_record(result) -> tuple[int, dict]:
    """The audit's exit status and report from what the audit program's ``show`` printed (conftest.GATEWAY_AUDIT)."""
    try:
        record = json.loads(result.stdout)
    except json.JSONDecodeError:
        reason = result.stderr.strip().splitlines()[-1:] or [f"exit {result.rc}"]
        pytest.fail(f"no current security audit report ({AUDIT_UNIT}.service): {reason[0]}", pytrace=False)
    if record.get("report") is None:
        pytest.fail(f"openclaw security audit printed no report (exit {record.get('exit_status')})", pytrace=False)
    return record["exit_status"], record["report"]


@control("GW-04", "openclaw accepts the gateway's configuration", impact=0.8, roles=("frontend",))
def test_GW_04_gateway_config_valid(gateway_audit):
    """A configuration openclaw rejects means the next restart leaves the gateway down."""
    _, report = gateway_audit
    # Only a rejected configuration says "ok": false; the exit status may also speak of critical findings (GW-05).
    problems = [f"{i.get('path')}: {i.get('message')}" for i in report.get("issues", [])]
    assert report.get("ok", True), f"openclaw rejects its configuration: {problems or report.get('error')}"


@control("GW-05", "openclaw's security audit finds nothing critical", impact=0.7, roles=("frontend",))
def test_GW_05_gateway_security_audit(gateway_audit):
    """The vendor's own list of dangerous settings (open binds, readable secrets, missing auth)."""
    rc, report = gateway_audit
    assert "findings" in report, f"the audit did not run (exit {rc}): {report.get('error', report)}"
    critical = [f.get("checkId", f) for f in report["findings"] if f.get("severity") == "critical"]
    assert critical == [], f"critical findings: {critical}"


@control("GW-18", "The agent has its profile's tools and no others, as the running gateway reports them", impact=0.9,
         roles=("frontend",))  # fmt: skip
def test_GW_18_agent_tools(gateway_audit, _gateway_audits_started, site, host_name):
    """What the agent may do is what a prompt injection (a web page, a file, the model's own output) or any token
    holder may make it do. The running gateway's own answer (``tools.effective``, kept by the audit unit) must be the
    profile's (gateway_agent_tools): none for 'chat', the workspace's file tools for 'workspace'."""
    record = json.loads(_gateway_audits_started[host_name].result().stdout)
    effective = record.get("effective_tools") or {"error": "the report holds no effective tools"}
    assert "tools" in effective, f"the gateway did not say which tools its agent has: {effective.get('error')}"
    profile = site.gateway_config(host_name).agent_tools
    wanted = set(EFFECTIVE_TOOLS[profile])
    have = set(effective["tools"])
    if profile == "operator":
        assert wanted <= have, f"profile operator, but the agent lacks {sorted(wanted - have)}"
    else:
        assert have == wanted, (
            f"profile {profile}: the agent also has {sorted(have - wanted)}, lacks {sorted(wanted - have)}"
        )


@control("GW-19", "People's conversations are kept a bounded time", impact=0.5, roles=("frontend",))
def test_GW_19_session_retention(host, site, host_name):
    """OpenClaw keeps every conversation unless told otherwise: the configuration the gateway runs on (BASE-20 holds
    it to the file) enforces gateway_session_retention_days, for conversations and their archives alike."""
    config = json.loads(host.file(GATEWAY_CONFIG).content_string)
    wanted = site.gateway_config(host_name).session_maintenance()
    assert config.get("session", {}).get("maintenance") == wanted, config.get("session")


@control("GW-06", "The gateway's unit is hardened", impact=0.5, roles=("frontend",))
def test_GW_06_gateway_hardening(host):
    """The gateway parses what LAN clients send: its unit limits what a compromise could reach."""
    assert hardening_exposure(host, GATEWAY_UNIT)[0] <= HARDENING_LIMIT


@control("GW-08", "The gateway runs the pinned Node.js and openclaw", impact=0.6, roles=("frontend",))
def test_GW_08_pinned_versions(host, site, host_name):
    """The running process, not only the files: a restart that never happened leaves an old version serving."""
    config = site.gateway_config(host_name)
    pid = host.check_output(f"systemctl show --property MainPID --value {GATEWAY_UNIT}")
    assert host.check_output(f"readlink /proc/{pid}/exe").startswith(config.node_dir + "/")
    assert host.check_output(f"{config.node} --version") == f"v{config.node_version}"
    package = json.loads(host.file(f"{config.openclaw_dir}/node_modules/openclaw/package.json").content_string)
    assert package["version"] == config.openclaw_version
    assert config.openclaw in host.check_output(f"systemctl show --property ExecStart --value {GATEWAY_UNIT}")


@control("GW-07", "The gateway is ready on the LAN", impact=0.9, roles=("frontend",))
def test_GW_07_gateway_ready(site, host_name):
    """What a person's browser reaches: the gateway's LAN address, from this machine."""
    config = site.gateway_config(host_name)
    with urllib.request.urlopen(f"{config.url}/readyz", timeout=10, context=site_tls(site)) as response:
        assert response.status == 200


@control("GW-17", "The backup unit is hardened", impact=0.3, roles=("frontend",))
def test_GW_17_backup_unit_hardened(host):
    """It reads all of OpenClaw's state daily as root, then as the gateway's user: a compromise of it should reach
    that state and the backups, nothing else."""
    score, report = hardening_exposure(host, f"{BACKUP_UNIT}.service")
    assert score <= HARDENING_LIMIT, report


@control("GW-16", "People reach the gateway over HTTPS only, with the site CA's certificate", impact=1.0,
         roles=("frontend",))  # fmt: skip
@pytest.mark.parametrize("scheme", ["https-names", "no-plain-http"])
def test_GW_16_gateway_https_only(site, host_name, scheme):
    """The gateway's token is full operator access: in clear, anyone on the LAN could read it off the wire, and tamper
    with the web UI that holds it. Every name the site pins for the frontend that the site CA may vouch for (all
    under the site's domain), and its address, must be in a certificate the site CA signed; a plain HTTP request to
    the gateway's port gets no HTTP answer at all."""
    config = site.gateway_config(host_name)
    if scheme == "https-names":
        spec = vouched(site.identities.gateway(host_name).spec, site_ca_cert(site))
        assert spec.dns_names and config.listen_address in spec.ip_addresses
        for name in (*spec.dns_names, *spec.ip_addresses):
            with (
                socket.create_connection((config.listen_address, config.port), timeout=10) as raw,
                site_tls(site).wrap_socket(raw, server_hostname=name) as tls,
            ):
                assert tls.version() in ("TLSv1.2", "TLSv1.3"), name
        return
    with socket.create_connection((config.listen_address, config.port), timeout=10) as raw:
        raw.sendall(f"GET /readyz HTTP/1.1\r\nHost: {config.listen_address}\r\nConnection: close\r\n\r\n".encode())
        raw.settimeout(10)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := raw.recv(4096):
                answer += chunk
    assert not answer.startswith(b"HTTP/"), answer[:200]


@control("GW-09", "openclaw's security audit runs hourly", impact=0.4, roles=("frontend",))
def test_GW_09_security_audit_scheduled(host):
    """Its report answers GW-04 and GW-05 and feeds the audit alerts; without the timer both go stale."""
    check_unit_running_and_enabled(host, f"{AUDIT_UNIT}.timer")


@control("GW-10", "The gateway runs as its own user", impact=0.7, roles=("frontend",))
def test_GW_10_gateway_user(host):
    """The gateway parses what LAN clients send and runs an agent: as its own user it reaches its state, nothing
    of root's or of the other services'."""
    user = unit_user(host, GATEWAY_UNIT)
    assert user == GATEWAY_USER, f"{GATEWAY_UNIT} runs as {user or 'root'}, not {GATEWAY_USER}"


@control("GW-11", "The gateway token is in no command line, unit or config file", impact=0.8, roles=("frontend",))
def test_GW_11_token_nowhere_else(host, site):
    """The token opens the gateway to anyone holding it: it belongs in the root-only EnvironmentFile (GW-03), not in
    openclaw's configuration, the unit or a command line."""
    token = site.control.gateway_token_file.read_text().strip()
    leaked = places_holding(host, token, GATEWAY_UNIT, (GATEWAY_CONFIG, f"/etc/systemd/system/{GATEWAY_UNIT}"))
    assert not leaked, f"the gateway token is in {leaked}"


@control("GW-12", "The security audit's report is 0600 root", impact=0.4, roles=("frontend",))
def test_GW_12_audit_report_mode(host):
    """The report lists the gateway's weak points; Prometheus gets counts from it, people with root the list."""
    result = host.run(f"stat -c '%U %a' {AUDIT_REPORT}")
    assert result.rc == 0, f"{AUDIT_REPORT} is missing"
    assert result.stdout.split() == ["root", "600"], f"{AUDIT_REPORT}: {result.stdout.strip()}"


@control("GW-13", "The security audit's unit is hardened", impact=0.4, roles=("frontend",))
def test_GW_13_audit_hardening(host):
    """The audit runs as root (it switches to the gateway's user for openclaw): its unit limits what it can touch."""
    assert hardening_exposure(host, f"{AUDIT_UNIT}.service")[0] <= HARDENING_LIMIT


@control("GW-14", "Nothing of other gateway versions is left", impact=0.3, roles=("frontend",))
def test_GW_14_only_the_pinned_versions(host, site, host_name):
    """An upgrade replaces the Node.js and openclaw it installed and their units: an old version left behind takes
    disk, and one still installed could be started by hand or by a stale unit."""
    config = site.gateway_config(host_name)
    units = "systemctl list-units --all --plain --no-legend 'clawlan-gateway*'"
    output = host.check_output(
        f"ls {NODE_ROOT} && echo {SEPARATOR} && ls {OPENCLAW_ROOT} && echo {SEPARATOR} && {units}"
    )
    nodes, openclaws, units_listed = output.split(SEPARATOR)
    found = (nodes.split(), openclaws.split(), {line.split()[0] for line in units_listed.splitlines() if line.strip()})
    own_units = {
        GATEWAY_UNIT,
        *(f"{unit}.{kind}" for unit in (AUDIT_UNIT, BACKUP_UNIT) for kind in ("service", "timer")),
    }
    wanted = ([posixpath.basename(config.node_dir)], [posixpath.basename(config.openclaw_dir)], own_units)
    assert found == wanted, f"Node.js, openclaw, units: {found} (want {wanted})"


@control("GW-15", "OpenClaw's state is backed up daily and the control machine holds a copy", impact=0.6,
         roles=("frontend",))  # fmt: skip
def test_GW_15_state_backed_up(host, site, host_name):
    """People's sessions and paired devices live only on the frontend: a replacement box gets them back from the
    control machine's copy (each deploy takes the newest, with the sha256 root recorded; a restore needs both). What
    counts is root's published copy: the gateway's user may empty its own directory. A backup older than two days
    means the timer stopped."""
    timer = host.run(f"systemctl is-active {BACKUP_UNIT}.timer").stdout.strip()
    assert timer == "active", f"{BACKUP_UNIT}.timer is {timer}"
    newest = host.run(f"find {EXPORT_DIR} -name '*{BACKUP_SUFFIX}' -mmin -{2 * 24 * 60}").stdout.split()
    assert newest, f"no backup published in {EXPORT_DIR} in the last two days"
    copies = Path(site.gateway_config(host_name).backup_copies_dir).expanduser()
    recorded = [copy for copy in copies.glob(f"*{BACKUP_SUFFIX}") if copy.with_name(copy.name + ".sha256").exists()]
    assert recorded, f"the control machine holds no copy with its recorded sha256 in {copies}"


# --- NET: what each box exposes ------------------------------------------------------------------------------


@control("NET-01", "Nothing but the appliance's services listens on the LAN", impact=0.9)
def test_NET_01_lan_listeners(host, site, host_name):
    """Every extra listener is attack surface nobody reviewed; loopback listeners are the box's own business."""
    listening = set(listening_addresses(host))
    exposed = {a for a in listening if not a.startswith(("127.", "[::1]"))}
    wanted = lan_listeners(site.topology, host_name, site.settings[host_name])  # roles/site/exposure.SERVICES
    assert exposed == wanted, f"extra: {sorted(exposed - wanted)}, missing: {sorted(wanted - exposed)}"


@control("NET-02", "The backend refuses TLS clients without a frontend certificate", impact=1.0, roles=("frontend",))
def test_NET_02_mtls_requires_a_client_certificate(host, site, host_name):
    """Mutual TLS is what keeps the rest of the LAN away from the model."""
    url = f"https://{site.topology.model_endpoint_name()}:{site.settings[host_name].mtls.port}/v1/models"
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {CA_CERT} {shlex.quote(url)}")
    assert code == "400", f"without a client certificate the backend answered {code}"


@control("NET-03", "The balancer takes chats on loopback only", impact=0.9, roles=("frontend",))
def test_NET_03_egress_on_loopback(host, site, host_name):
    """It holds the frontend's client certificate: on the LAN it would lend that identity to anyone."""
    port = site.egress_config(host_name).port
    listening = set(listening_addresses(host))
    assert {a for a in listening if a.rsplit(":", 1)[1] == str(port)} == {f"127.0.0.1:{port}"}


def proxy_unit(site, host_name) -> str:
    """The box's TLS door: nginx in front of a backend's model server, HAProxy on a frontend."""
    return INGRESS_UNIT if site.topology.host(host_name).role == "backend" else BALANCER_UNIT


@control("NET-07", "The TLS proxy is hardened and comes back by itself", impact=0.8)
@pytest.mark.parametrize("aspect", ["sandboxed", "restarts"])
def test_NET_07_proxy_hardened(host, site, host_name, aspect):
    """nginx is a backend's only door from the LAN and HAProxy a frontend's only way to the model: a compromise of
    either should reach little (Debian's units score 9.6 UNSAFE), and a crash or a kill -9 must not leave the site
    down until someone acts."""
    unit = proxy_unit(site, host_name)
    if aspect == "sandboxed":
        score, report = hardening_exposure(host, unit)
        assert score <= HARDENING_LIMIT, report
    else:
        assert unit_property(host, unit, "Restart") in ("on-failure", "always")


@control("NET-04", "Exporters answer the monitor host only", impact=0.6)
def test_NET_04_exporters_refuse_others(site, host_name):
    """Metrics tell an attacker what runs where and when it is busy: only Prometheus may read them."""
    spec = site.topology.host(host_name)
    if site.topology.monitor_host.address == spec.address:
        pytest.skip("n/a: the monitor host may reach its own exporters")
    assert not port_open(spec.address, site.monitor.node_exporter_port), "this machine reached the node exporter"


@control("NET-05", "The probe's metrics answer the monitor host only", impact=0.6, roles=("frontend",))
def test_NET_05_probe_refuses_others(site, host_name):
    """The probe's figures tell when the appliance is busy and how fast it answers: only Prometheus may read them,
    on the monitor host too (the probe's IP filter admits its own box, the monitor and the backend)."""
    spec = site.topology.host(host_name)
    assert not port_open(spec.address, site.monitor.probe_port), "this machine reached the probe's metrics"


def source_address_towards(address: str) -> str:
    """This machine's address as a host at ``address`` sees it (the route's source; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((address, 9))
        return probe.getsockname()[0]


@control("NET-06", "The balancer's metrics answer the monitor host and their own box only", impact=0.6,
         roles=("frontend",))  # fmt: skip
def test_NET_06_balancer_metrics_refuse_others(site, host_name):
    """They show every backend's health and load: only Prometheus (and the frontend itself) may read them. HAProxy
    accepts, then drops, a connection from elsewhere: a request must get no answer."""
    config = site.egress_config(host_name)
    if source_address_towards(config.metrics_address) in config.metrics_clients:
        pytest.skip("n/a: this machine is an admitted client")
    url = f"http://{config.metrics_address}:{config.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            answered = response.status
    except (OSError, http.client.HTTPException):
        answered = None
    assert answered is None, f"this machine read the balancer's metrics (HTTP {answered})"


# --- LB: each frontend's balancer across the backends -----------------------------------------------------------


@control("LB-01", "The balancer runs and starts at boot", impact=1.0, roles=("frontend",))
def test_LB_01_balancer_running(host):
    """Every chat goes through it: without it the gateway has no model."""
    check_unit_running_and_enabled(host, BALANCER_UNIT)


@control("LB-02", "Every inventory backend is in the balancer's pool and healthy", impact=0.9, roles=("frontend",))
def test_LB_02_pool_healthy(host, site, host_name):
    """A backend missing from the pool is capacity paid for and unused; one the inventory no longer has, a box
    nobody maintains that still gets people's chats; one out of the pool fails its health checks."""
    config = site.egress_config(host_name)
    states = pool_states(host, config)
    wanted = {member.name: "UP" for member in config.members}
    assert states == wanted, f"pool {states}, want {wanted}"


# --- MON: exporters, the probe and Prometheus ------------------------------------------------------------------


@control("MON-01", "The node exporter runs and starts at boot", impact=0.6)
def test_MON_01_node_exporter_running(host):
    """Without it the box is invisible to monitoring."""
    check_unit_running_and_enabled(host, NODE_EXPORTER_UNIT)


@control("MON-02", "The latency probe runs and starts at boot", impact=0.6, roles=("frontend",))
def test_MON_02_probe_running(host):
    """The probe is what shows latency continuously, between runs of the latency suite."""
    check_unit_running_and_enabled(host, PROBE_UNIT)


def prometheus_api(site, path, **params):
    return api(prometheus_url(site), path, **params)


def only_on_the_monitor(site, host_name):
    if site.topology.monitor_host.name != host_name:
        pytest.skip(f"n/a: Prometheus runs on {site.topology.monitor_host.name}")


@control("MON-03", "Prometheus runs and every scrape target is up", impact=0.7)
def test_MON_03_targets_up(host, site, host_name):
    """A target down is a box or an exporter nobody watches any more."""
    only_on_the_monitor(site, host_name)
    check_unit_running_and_enabled(host, PROMETHEUS_UNIT)
    targets = prometheus_api(site, "targets")["activeTargets"]
    down = [(t["labels"]["job"], t["labels"]["instance"], t["lastError"]) for t in targets if t["health"] != "up"]
    # The instance label is the inventory name: each host's node exporter, each frontend's probe and balancer,
    # Prometheus itself and Alertmanager beside it.
    scraped = {(t["labels"]["job"], t["labels"]["instance"]) for t in targets}
    expected = (
        {("node", h.name) for h in site.topology.hosts}
        | {("probe", h.name) for h in site.topology.hosts if h.role == "frontend"}
        | {("balancer", h.name) for h in site.topology.hosts if h.role == "frontend"}
        | {("prometheus", host_name), ("alertmanager", host_name)}
        | {("model_server", target.host) for target in site.prometheus_config().model_server.targets}
    )
    assert not down, f"down: {down}"
    assert scraped == expected and len(targets) == len(expected), (
        f"{len(targets)} targets, missing {sorted(expected - scraped)}, unexpected {sorted(scraped - expected)}"
    )


@control("MON-04", "Every alert rule is loaded", impact=0.6)
def test_MON_04_alert_rules_loaded(site, host_name):
    """The rules are what turns metrics into someone being told."""
    only_on_the_monitor(site, host_name)
    groups = prometheus_api(site, "rules", type="alert")["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    ours = {rule.name for group in alert_groups(site.prometheus_config().thresholds) for rule in group.rules}
    assert ours <= loaded, f"missing {sorted(ours - loaded)}"


@control("MON-05", "The probe succeeded recently on every path", impact=0.8)
def test_MON_05_probe_succeeds(site, host_name):
    """A probe that keeps failing means users' chats fail too, on that path."""
    only_on_the_monitor(site, host_name)
    samples = prometheus_api(site, "query", query="clawlan_probe_last_success_timestamp_seconds")["result"]
    ages = {(s["metric"]["instance"], s["metric"]["path"]): time.time() - float(s["value"][1]) for s in samples}
    limit = 3 * site.monitor.probe_interval_s + site.monitor.probe_timeout_s
    stale = {key: round(age) for key, age in ages.items() if age > limit}
    assert len(ages) == 2 * sum(1 for h in site.topology.hosts if h.role == "frontend") and not stale, (
        f"stale: {stale or ages}"
    )


MONITORING_UNITS = (
    NODE_EXPORTER_UNIT, f"{CERTIFICATE_METRICS_UNIT}.service", PROBE_UNIT, PROMETHEUS_UNIT, ALERTMANAGER_UNIT,
)  # fmt: skip


@control("MON-07", "Alertmanager runs and Prometheus sends it the alerts", impact=0.8)
def test_MON_07_alertmanager_receives(host, site, host_name):
    """Without it an alert shows on Prometheus' page only, where nobody looks at night."""
    only_on_the_monitor(site, host_name)
    check_unit_running_and_enabled(host, ALERTMANAGER_UNIT)
    active = prometheus_api(site, "alertmanagers")["activeAlertmanagers"]
    assert [a["url"] for a in active] == [f"{alertmanager_url(site)}/api/v2/alerts"], active


@control("MON-08", "The Watchdog alert is firing in Alertmanager", impact=0.7)
def test_MON_08_watchdog_reaches_alertmanager(site, host_name):
    """The pipeline's heartbeat: rules evaluated, alerts sent, Alertmanager up. A dead man's switch downstream
    calls a person when it stops."""
    only_on_the_monitor(site, host_name)
    assert [a["status"]["state"] for a in alertmanager_alerts(site, WATCHDOG)] == ["active"]


@control("MON-09", "Each alert is routed to its receiver", impact=0.6)
@pytest.mark.parametrize("alertname, receiver", [("ClawlanUnitDown", "person"), (WATCHDOG, "watchdog")])
def test_MON_09_routes(host, site, host_name, alertname, receiver):
    """A person hears about faults; the Watchdog goes to the dead man's switch only, never to the person's phone."""
    only_on_the_monitor(site, host_name)
    routed = host.check_output(
        f"amtool config routes test --config.file={ALERTMANAGER_CONFIG} alertname={alertname} instance={host_name}"
    )
    assert routed.split() == [receiver], routed


def refused(url: str, *, data: bytes | None = None, login: bool = False) -> int | None:
    """The HTTP status a request gets (None: no HTTP answer at all)."""
    try:
        with open_url(url, data=data, login=login, **({"Content-Type": "application/json"} if data else {})) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, http.client.HTTPException):
        return None


@control("MON-10", "Prometheus and Alertmanager answer only over HTTPS, and only with the password", impact=0.8)
def test_MON_10_monitor_access(site, host_name):
    """Alertmanager's API silences alerts and takes new ones; Prometheus' shows every box's state. Without TLS and a
    password, anyone on the client networks (or anything on the monitor host, the agent included) could silence
    every alert or send false ones. Plain HTTP gets no data; HTTPS without the password gets 401, for reading and
    for writing alike. The password's own use is what MON-03, -07 and -08 do."""
    only_on_the_monitor(site, host_name)
    prometheus, alertmanager = prometheus_url(site), alertmanager_url(site)
    silence = json.dumps({"matchers": [{"name": "alertname", "value": ".+", "isRegex": True}], "startsAt":
                          "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z", "createdBy": "MON-10",
                          "comment": "must be refused"}).encode()  # fmt: skip
    alert = json.dumps([{"labels": {"alertname": "MON10Forged"}}]).encode()
    answers = {
        "Prometheus' API": refused(f"{prometheus}/api/v1/alerts"),
        "Prometheus' UI": refused(f"{prometheus}/classic/alerts"),
        "Alertmanager's alerts": refused(f"{alertmanager}/api/v2/alerts"),
        "a new silence": refused(f"{alertmanager}/api/v2/silences", data=silence),
        "a forged alert": refused(f"{alertmanager}/api/v2/alerts", data=alert),
    }
    assert all(code == 401 for code in answers.values()), f"without the password: {answers}"
    for base in (prometheus, alertmanager):
        plain = "http://" + base.removeprefix("https://")
        code = refused(plain + "/api/v2/status" if base == alertmanager else plain + "/api/v1/status/buildinfo")
        assert code in (None, 400), f"{plain} answered plain HTTP with {code}"


@pytest.mark.parametrize("unit", MONITORING_UNITS)
@control("MON-06", "The monitoring units are hardened", impact=0.4)
def test_MON_06_monitoring_hardening(host, site, host_name, unit):
    """They read the whole box (/proc, /sys, the certificates) or answer on the LAN: each unit limits what a
    compromise of it could reach."""
    if unit == PROBE_UNIT and site.topology.host(host_name).role != "frontend":
        pytest.skip("n/a: the probe runs on frontends")
    if unit in (PROMETHEUS_UNIT, ALERTMANAGER_UNIT):
        only_on_the_monitor(site, host_name)
    assert hardening_exposure(host, unit)[0] <= HARDENING_LIMIT

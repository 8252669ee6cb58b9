"""Faults, last: one injected at a time on the deployed lab, then detection (the alert reaches the lab's webhook
receiver, as it would a person's phone), recovery without a person, and nothing lost. The faults table (docs/testing.md)
holds what these measure.

Cases elsewhere: a backend frozen or unplugged mid-answer is test_10_lan's (the client gets an error within
seconds, the next chat succeeds); a model download cut off and resumed is test_02's."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from lab.paths import QWEN_MODEL
from lab.runner import PYINFRA, REPO, run_pyinfra
from roles.common.ca import load_ca, sign_csr
from roles.common.tls import HOST_CERT, HOST_KEY
from roles.gateway.config import PROMPT_TOKEN_BUDGETS
from roles.gateway.config import UNIT as GATEWAY_UNIT
from roles.model_server.config import CONFIG_FILE as MODEL_CONFIG
from roles.model_server.config import MODELS_DIR
from roles.model_server.config import UNIT as MODEL_UNIT
from roles.model_server.decode_floors import LAVAPIPE_CLASS, PROMPT_RATES
from roles.monitor.alertmanager import UNIT as ALERTMANAGER_UNIT
from roles.monitor.alerts import WATCHDOG
from roles.monitor.node_exporter import UNIT as NODE_EXPORTER_UNIT
from roles.monitor.probe import UNIT as PROBE_UNIT
from roles.monitor.prometheus import UNIT as PROMETHEUS_UNIT
from roles.mtls.config import BALANCER_UNIT, INGRESS_UNIT
from roles.pki.config import METRICS_UNIT as CERTIFICATE_METRICS_UNIT
from tests.compliance import test_base as base_controls
from tests.e2e.conftest import LAB_INVENTORY, deploy, run_control, status
from tests.support.compliance_suite import wait_until_settled
from tests.support.file_server import FileServer
from tests.support.gateway import chat
from tests.support.prometheus import alert_states, alertmanager_alerts, api, dashboard_panels, prometheus_url
from tests.support.remote import main_pid, put_text
from tests.support.waiting import wait_for

FRONTEND, BACKEND = "lab-front", "lab-back"
RECOVERED_WITHIN_S = 10  # the goal for a process fault
# OpenClaw takes ~12 s to start on the lab's two cores (loading its plugins; 13.3 s measured after a kill -9): the
# gateway misses the goal by its own start time, and is held to this bound instead (the faults table, docs/testing.md).
GATEWAY_RECOVERED_WITHIN_S = 30
# The model server is back once it has evaluated the gateway's prompt again (its warm-up, before the balancers admit
# it): the goal plus twice the default profile's prompt budget at lavapipe's measured prompt rate (~7 s; 4 s measured
# after a kill -9 on a warm shader cache, 12.7 s on the first warm-up of a new lab, which compiles shaders).
MODEL_RECOVERED_WITHIN_S = RECOVERED_WITHIN_S + round(
    2 * PROMPT_TOKEN_BUDGETS["chat"] / PROMPT_RATES[LAVAPIPE_CLASS].tokens_per_second
)
WATCHDOG_EVERY_S = 75  # its route repeats it every minute; a notification may wait on Alertmanager's group timers


def gateway_chat(site) -> tuple[int, str]:
    return chat(site.gateway_config(FRONTEND).url, site.control.gateway_token_file.read_text().strip())


@pytest.mark.parametrize(
    "box, unit",
    [
        (BACKEND, MODEL_UNIT),
        (BACKEND, INGRESS_UNIT),
        (BACKEND, NODE_EXPORTER_UNIT),
        (FRONTEND, GATEWAY_UNIT),
        (FRONTEND, BALANCER_UNIT),
        (FRONTEND, PROBE_UNIT),
        (FRONTEND, PROMETHEUS_UNIT),
        (FRONTEND, ALERTMANAGER_UNIT),
        (FRONTEND, NODE_EXPORTER_UNIT),
    ],
    ids=lambda value: value.removesuffix(".service"),
)
def test_a_service_killed_by_sigkill_is_back_by_itself_within_10_s(hosts, site, box, unit):
    host = hosts[box]
    before = host.check_output(f"systemctl show --property MainPID --value {unit}")
    host.run_expect([0], f"kill -9 {before}")
    started = time.monotonic()
    while True:
        lines = host.check_output(f"systemctl show --property ActiveState --property MainPID {unit}").splitlines()
        state = dict(line.split("=", 1) for line in lines)
        if state["ActiveState"] == "active" and state["MainPID"] not in ("0", before):
            break
        limit = {GATEWAY_UNIT: GATEWAY_RECOVERED_WITHIN_S, MODEL_UNIT: MODEL_RECOVERED_WITHIN_S}.get(
            unit, RECOVERED_WITHIN_S
        )
        if time.monotonic() - started >= limit:
            # What the start was doing, to tell a slow load from a slow warm-up or a stuck step (not the chats' lines).
            journal = host.run(f"journalctl -u {unit} --since=-{limit + 5}s -o short-monotonic | grep -v log_server_r")
            pytest.fail(f"{unit} on {box}: {state} {limit} s after kill -9; its journal:\n{journal.stdout[-6000:]}")
        time.sleep(0.2)
    seconds = time.monotonic() - started
    print(f"{unit} on {box}: active again {seconds:.1f} s after kill -9")
    status, text = gateway_chat(site)
    assert status == 200, text  # serving: a person's chat goes through


def probe_noticed_s(monitor) -> int:
    """Time for a change of the backend to show in Prometheus: a probe round (its interval, plus a gateway probe
    that may run to its timeout), a scrape and an evaluation."""
    return monitor.probe_interval_s + 2 * monitor.probe_timeout_s + 2 * monitor.scrape_interval_s


@pytest.fixture(scope="module")
def stopped_model_server(hosts, site, alert_receiver) -> dict:
    """The model server stopped by hand and forgotten, until the person acts: the suite's one stop cycle, for the
    alerts Prometheus raises and for what reaches the person. The documented action, a deploy, starts it again."""
    back, monitor, prometheus = hosts[BACKEND], site.monitor, prometheus_url(site)
    noticed_s = probe_noticed_s(monitor)
    wait_for(lambda: not alert_states(prometheus, "ClawlanProbeFailing"), 240, "no probe alert before the test")
    since = time.monotonic()
    seen: dict = {"since": since}
    back.run_expect([0], f"systemctl stop {MODEL_UNIT}")
    try:
        seen["first"] = wait_for(lambda: alert_states(prometheus, "ClawlanProbeFailing").get("backend"), noticed_s,
                                 "ClawlanProbeFailing pending for the backend path")  # fmt: skip
        # Its effect fires in Prometheus (the probe's backend path fails) after its for:, and Alertmanager holds it
        # back from the person.
        firing_within = noticed_s + monitor.alert_probe_failing_for_s
        wait_for(lambda: alert_states(prometheus, "ClawlanProbeFailing").get("backend") == "firing", firing_within,
                 "ClawlanProbeFailing firing after its for:")  # fmt: skip
        seen["firing_after_s"] = time.monotonic() - since
        seen["unit_down"] = alert_states(prometheus, "ClawlanUnitDown").get(BACKEND)
        seen["detected"] = alert_receiver.wait_for("ClawlanModelServerNotReady", "firing", since, 120, instance=BACKEND)
        seen["status"] = status()  # make status, while the alerts fire
        seen["dashboard"] = dashboard_panels(site)  # and the dashboard
    finally:
        seen["deploy"] = deploy()
    return seen


def test_a_stopped_model_server_raises_its_alerts_and_the_cause_reaches_a_person(stopped_model_server):
    """The cause (the model server not ready) reaches the receiver; Prometheus shows its effects, the probe's
    backend path failing (pending first, then firing once its for: has passed) and the unit down."""
    seen = stopped_model_server
    assert seen["first"] in ("pending", "firing")
    assert seen["unit_down"] in ("pending", "firing")
    print(f"model server stopped: ClawlanProbeFailing firing after {seen['firing_after_s']:.0f} s, the person heard"
          f" the cause after {seen['detected']:.0f} s")  # fmt: skip
    assert ("Model server | Run clawlan-model-server.service (restarted only when its build, model, settings or unit "
            "changed)", BACKEND) in seen["deploy"].changed  # fmt: skip


def test_make_status_shows_the_stopped_model_server(stopped_model_server):
    """The terminal view while the model server is stopped: the alerts firing, where, and a non-zero exit; the
    backend path failing and the backend out of the balancer's pool."""
    result = stopped_model_server["status"]
    print(result.stdout, result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    firing = result.stdout.split("alerts firing: ", 1)[1]
    assert "ClawlanModelServerNotReady (critical): instance=lab-back" in firing, firing
    assert "ClawlanProbeFailing" in firing and "path=backend" in firing, firing
    assert "path backend (FAILING;" in result.stdout
    assert f"backends behind {FRONTEND}: {BACKEND} DOWN" in result.stdout


def test_the_dashboard_shows_the_stopped_model_server(stopped_model_server):
    """The same moment on the dashboard: the backend path not answering, the backend out of the pool, the cause
    among the alerts firing."""
    panels = stopped_model_server["dashboard"]
    assert dict(panels["answering-the-probe-s-last-round"])["backend"].startswith("NO"), panels
    pool = dict(panels["backends-in-the-pool"])
    assert pool[f"{FRONTEND} {BACKEND}"] != "UP", pool
    assert (f"ClawlanModelServerNotReady {BACKEND}", "critical") in panels["alerts-firing-the-watchdog-aside"]


def test_a_restarted_model_server_resolves_its_alerts_and_its_effects_never_reached_the_person(
    stopped_model_server, site, alert_receiver
):
    """After the deploy the person hears that it is resolved, once the probe can have seen the recovery; the probe's
    failure alert, inhibited by its cause, never reached them, then or after; Prometheus clears it, for the backend
    path first, the gateway's (whose first chat meets an empty prompt cache) after."""
    seen, prometheus, monitor = stopped_model_server, prometheus_url(site), site.monitor
    # The cause keeps firing until the probe can have seen the recovery: its effects stay held back meanwhile.
    recovery_s = site.prometheus_config().thresholds.probe_recovery_s
    recovered = alert_receiver.wait_for("ClawlanModelServerNotReady", "resolved", seen["since"], recovery_s + 60,
                                        instance=BACKEND)  # fmt: skip
    print(f"resolved notice {recovered - seen['detected']:.0f} s after the alert")
    noticed_s = probe_noticed_s(monitor)
    wait_for(lambda: "backend" not in alert_states(prometheus, "ClawlanProbeFailing"), noticed_s + 60,
             "ClawlanProbeFailing resolved after the model server started")  # fmt: skip
    wait_for(lambda: not alert_states(prometheus, "ClawlanProbeFailing"), 240, "both probe paths healthy again")
    effects = {name for _, status, name, _ in alert_receiver.alerts(seen["since"]) if status == "firing"}
    assert "ClawlanProbeFailing" not in effects, effects  # inhibited by its cause
    status, text = gateway_chat(site)
    assert status == 200, text


def test_a_certificate_inside_its_renewal_window_is_reported_and_renewed_by_the_next_deploy(hosts, site,
                                                                                           alert_receiver):  # fmt: skip
    """The backend's certificate replaced by one that expires in 10 days (inside the 30-day window): the alert
    reaches the person; the next deploy reissues it; the alert resolves."""
    back = hosts[BACKEND]
    issuance = site.pki_config(BACKEND).issuance
    csr = back.check_output(f"openssl req -new -key {HOST_KEY} -subj /CN=csr")
    short = sign_csr(load_ca(site.control.state_dir / "pki"), csr + "\n", issuance.spec, days=10)
    since = time.monotonic()
    put_text(back, HOST_CERT, short, 0o644)
    back.run_expect([0], f"systemctl start {CERTIFICATE_METRICS_UNIT}.service")
    detected = alert_receiver.wait_for("ClawlanCertificateExpiring", "firing", since, 120, instance=BACKEND)
    print(f"certificate inside its window: the person heard it after {detected:.0f} s")
    result = deploy()
    assert ("Site PKI | Keep this host's certificate issued by the site CA", BACKEND) in result.changed
    alert_receiver.wait_for("ClawlanCertificateExpiring", "resolved", since, 120, instance=BACKEND)
    status, text = gateway_chat(site)
    assert status == 200, text


def test_the_watchdog_reaches_the_dead_mans_switch_every_minute(first_deploy, alert_receiver):
    """The pipeline end to end: rules, Prometheus, Alertmanager, the route, the webhook. The lab's dead man's switch
    is the same receiver (monitor_alert_watchdog_url); a site's calls a person when this stops arriving. After the
    tests above the receiver has minutes of history: two notifications a minute apart, the last within a minute, are
    waited for only if that history lacks them."""
    deadline = time.monotonic() + 150
    while True:
        times = [at for at, status, name, _ in alert_receiver.alerts() if name == WATCHDOG and status == "firing"]
        now = time.monotonic()
        if len(times) >= 2 and times[-1] - times[-2] <= WATCHDOG_EVERY_S and now - times[-1] <= WATCHDOG_EVERY_S:
            break
        assert now < deadline, f"the Watchdog's notifications: {[round(at - now) for at in times]} s from now"
        time.sleep(1)


def test_a_second_deploy_of_the_site_is_refused_at_once_and_the_first_completes(first_deploy, site):
    first = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "pyinfra"), "-y", LAB_INVENTORY, "deploys/full.py"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # The first holds the site's lock from its first host's deploy file, and says so in the lock file; a re-run
    # that changes nothing is over in seconds, so it is held there (SIGSTOP) while the second tries.
    lock, deadline = site.control.state_dir / "deploy.lock", time.monotonic() + 60
    while not (lock.exists() and lock.read_text().startswith(f"pid {first.pid} ")):
        assert time.monotonic() < deadline and first.poll() is None, "the first deploy never held the site's lock"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        second = run_pyinfra(LAB_INVENTORY, "deploys/full.py", check=False)
        refused_after = time.monotonic() - started
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert second.returncode != 0 and second.changed == frozenset(), second.log[-2000:]
    assert "another deploy of this site is running" in second.log and "nothing was changed" in second.log
    assert refused_after < 30, f"the second deploy took {refused_after:.0f} s to be refused"


def deploy_killed_at(operation: str, *args: str, host=None, until: str | None = None, then: str | None = None) -> str:
    """A deploy of the site (``args`` added), killed (SIGKILL, pyinfra and its SSH connections) the moment it
    starts ``operation``, or, given ``until``, once that command succeeds on ``host`` after it started; ``then``
    runs on ``host`` right after the kill (the host's side of a power cut). Returns what the deploy printed."""
    process = subprocess.Popen(
        [PYINFRA, "-y", LAB_INVENTORY, "deploys/full.py", *args], cwd=REPO, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    printed = []
    try:
        for line in process.stdout:
            printed.append(line)
            if "Starting operation" in line and operation in line:
                break
        else:
            raise AssertionError(f"the deploy ended before {operation!r}:\n{''.join(printed)[-3000:]}")
        deadline = time.monotonic() + 300
        while until and host.run(until).rc != 0:
            assert time.monotonic() < deadline and process.poll() is None, "".join(printed)[-3000:]
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if then:
        host.run(then)
    return "".join(printed)


def started_at(host, unit: str) -> int:
    return int(host.check_output(f"systemctl show --property ExecMainStartTimestamp --timestamp=unix --value {unit}")
               .lstrip("@"))  # fmt: skip


def test_a_deploy_killed_inside_a_package_install_is_repaired_by_the_next(hosts):
    """The deploy, and the apt and dpkg it started on the backend, killed between dpkg's unpack and configure of
    a package (a power cut, or a hung run stopped hard): dpkg is left half-done. The next deploy repairs it before
    it installs anything, and the site converges."""
    back = hosts[BACKEND]
    package = "unattended-upgrades"  # in the base role's list; nothing serving chats needs it
    hold, held = "/etc/dpkg/dpkg.cfg.d/zz-clawlan-fault", "/run/clawlan-fault-dpkg-held"
    back.run_expect([0], f"apt-get remove -y {package}")
    # dpkg runs this after each call apt makes: after the unpack it holds dpkg there, configure still to come.
    put_text(back, hold, f"post-invoke=touch {held}; sleep 607\n", 0o644)
    try:
        deploy_killed_at(
            "Base system | Install the packages every appliance box needs", host=back, until=f"test -e {held}",
            then="pkill -9 -x apt-get; pkill -9 -x dpkg; pkill -9 -f 'slee[p] 607'",
        )  # fmt: skip
    finally:
        back.run(f"rm -f {hold} {held}")
    assert package in back.check_output("dpkg --audit")  # left unpacked, not configured
    result = deploy()
    assert ("Base system | Finish any package install a killed deploy or a power cut left half-done", BACKEND) in (
        result.changed
    )
    assert back.check_output("dpkg --audit") == "" and back.package(package).is_installed
    assert deploy().changed == frozenset()


def test_a_deploy_killed_as_it_writes_a_configuration_leaves_the_old_file_or_the_new_whole(hosts, site):
    back = hosts[BACKEND]
    good = back.file(MODEL_CONFIG).content_string
    back.run_expect([0], f"echo '# drifted by hand' >> {MODEL_CONFIG}")
    drifted = back.file(MODEL_CONFIG).content_string
    deploy_killed_at(f"Model server | Write the model server's settings to {MODEL_CONFIG}")
    assert back.file(MODEL_CONFIG).content_string in (good, drifted)
    deploy()
    assert back.file(MODEL_CONFIG).content_string == good
    assert back.run("ls /etc/clawlan/*.clawlan-new").rc != 0  # nothing half-done left beside it
    assert started_at(back, MODEL_UNIT) >= int(back.check_output(f"stat -c %Y {MODEL_CONFIG}"))
    assert deploy().changed == frozenset()
    status, text = gateway_chat(site)
    assert status == 200, text


def model_server_arguments(host) -> str:
    return host.check_output(f"tr '\\0' ' ' < /proc/$(systemctl show --property MainPID --value {MODEL_UNIT})/cmdline")


def test_a_deploy_killed_between_a_configuration_write_and_its_restart_is_finished_by_the_next(hosts, site):
    """A setting changed, and the deploy killed as the model server's restart begins, after its settings were
    written: the server still runs on the old ones, though the file on disk is right. The next deploy has no file
    to write, and restarts it all the same."""
    back = hosts[BACKEND]
    changed = ("--data", "model_server_prompt_cache_mib=128")
    assert " --cache-ram 256 " in model_server_arguments(back)
    deploy_killed_at(f"Model server | Run {MODEL_UNIT}", *changed)
    assert " --cache-ram 128 " in back.file(MODEL_CONFIG).content_string
    assert " --cache-ram 256 " in model_server_arguments(back)  # the kill came before the restart
    with pytest.raises(AssertionError, match=MODEL_UNIT):  # and the compliance suite says so
        run_control(base_controls.test_BASE_20_services_run_on_the_files_they_have, back, site, BACKEND)
    result = deploy(*changed)
    assert result.changed == {
        (f"Model server | Run {MODEL_UNIT} (restarted only when its build, model, settings or unit changed)", BACKEND)
    }
    assert " --cache-ram 128 " in model_server_arguments(back)
    run_control(base_controls.test_BASE_20_services_run_on_the_files_they_have, back, site, BACKEND)
    deploy()
    assert " --cache-ram 256 " in model_server_arguments(back)
    assert deploy().changed == frozenset()
    status, text = gateway_chat(site)
    assert status == 200, text


def test_a_deploy_killed_during_a_service_restart_converges_on_the_next(hosts, site):
    """Killed while systemd is restarting the model server: systemd finishes the restart on its own; the next
    deploy finds the server serving its files and settles."""
    back = hosts[BACKEND]
    back.run_expect([0], f"echo '# drifted by hand' >> {MODEL_CONFIG}")
    deploy_killed_at(
        f"Model server | Run {MODEL_UNIT}", host=back, until=f"systemctl is-active {MODEL_UNIT} | grep -qv '^active$'"
    )
    deploy()
    assert back.service(MODEL_UNIT).is_running
    assert started_at(back, MODEL_UNIT) >= int(back.check_output(f"stat -c %Y {MODEL_CONFIG}"))
    assert deploy().changed == frozenset()
    status, text = gateway_chat(site)
    assert status == 200, text


def as_root_with_mounts(lab, host_name: str, script: str) -> None:
    """``script`` on a lab host with the right to mount: the lab's stand-in for a disk of another size."""
    container = next(host.container for host in lab.hosts if host.name == host_name)
    subprocess.run(["podman", "exec", "--privileged", container, "sh", "-ec", script], check=True)


def test_a_disk_that_fills_during_a_model_download_stops_it_clearly_and_the_old_model_keeps_serving(hosts, lab,
                                                                                                    site):  # fmt: skip
    """The backend's model directory on a disk with room for the size the inventory declares (the deploy's check
    passes) but not for the file that arrives: the download stops with an error saying where and how much is left;
    the model in service goes on serving; what arrived is kept. Room made, the next deploy resumes it."""
    back, config = hosts[BACKEND], site.model_server_config(BACKEND)
    name = "clawlan-qwen3next-tiny-next.gguf"
    path = f"{MODELS_DIR}/{name}"
    used_kib = int(back.check_output(f"du -sk {MODELS_DIR}").split()[0])
    # What is there now, on a disk with 3 MiB free. The inventory under-declares the new model (1 MiB): the deploy's
    # check (2 MiB with its margin) passes, the 45.6 MB that arrive do not fit.
    as_root_with_mounts(lab, BACKEND, f"rm -rf /root/models-kept && cp -a {MODELS_DIR}/. /root/models-kept/"
                        f" && mount -t tmpfs -o size={used_kib + 3072}k,mode=755 clawlan-small-disk {MODELS_DIR}"
                        f" && cp -a /root/models-kept/. {MODELS_DIR}/")  # fmt: skip
    serving = main_pid(back, MODEL_UNIT)
    gateway = str(next(lab.subnet.hosts()))  # this machine, on the lab network
    try:
        with FileServer(gateway, {f"/{name}": QWEN_MODEL}, bytes_per_second=32 << 20) as server:
            source = f"model_server_model_source={server.url}/{name}"
            args = ("--data", source, "--data", "model_server_model_size_gib=0.001")
            result = deploy(*args, check=False)
            assert result.returncode != 0
            assert f"{BACKEND}: the download of {server.url}/{name} stopped (curl exit 23) with " in result.log
            assert f"MiB left on the disk under {MODELS_DIR}: " in result.log, result.log[-3000:]
            print("disk full:", next(line for line in result.log.splitlines() if "stopped (curl exit" in line))
            kept = int(back.check_output(f"stat -c %s {path}.partial"))
            assert 0 < kept < QWEN_MODEL.stat().st_size and not back.file(path).exists
            assert main_pid(back, MODEL_UNIT) == serving  # never restarted: the old model serves on
            status, text = gateway_chat(site)
            assert status == 200, text

            as_root_with_mounts(lab, BACKEND, f"mount -o remount,size={used_kib + 65536}k {MODELS_DIR}")  # room made
            deploy(*args)
            assert server.ranges[-1] == f"bytes={kept}-"  # resumed where the disk filled
        assert back.check_output(f"sha256sum {path}").split()[0] == config.model_sha256
        assert f"--model {path} " in model_server_arguments(back)
        status, text = gateway_chat(site)
        assert status == 200, text
    finally:
        # The disk as it was (the server keeps the detached copy it runs on until the deploy restarts it).
        as_root_with_mounts(lab, BACKEND, f"umount -l {MODELS_DIR}; rm -rf /root/models-kept")
        deploy()
    assert f"--model {config.model_path} " in model_server_arguments(back)
    assert deploy().changed == frozenset()


def test_both_boxes_power_cycled_serve_again_with_no_action_and_their_alerts_resolve(lab, site, alert_receiver):
    """A power cut at the site: both boxes off and on again. With no deploy and no person, chats go through again,
    the alert pipeline is back (the Watchdog reaches the dead man's switch), and whatever fired meanwhile resolves.
    Last of the faults: the suite's SSH connections do not survive it."""
    cut = time.monotonic()
    lab.reboot()
    booted = time.monotonic()
    print(f"power cycle: both boxes up {booted - cut:.0f} s after the power went")
    deadline = booted + 300
    while True:
        try:
            status, text = gateway_chat(site)
        except OSError as error:  # refused or reset while the gateway starts
            status, text = None, str(error)
        if status == 200:
            break
        assert time.monotonic() < deadline, f"no chat 300 s after the power came back: {status} {text}"
        time.sleep(1)
    print(f"power cycle: chats go through {time.monotonic() - booted:.0f} s after both boxes were up")
    watchdog_s = alert_receiver.wait_for(WATCHDOG, "firing", booted, 180)
    print(f"power cycle: the Watchdog reached the receiver {watchdog_s:.0f} s after both boxes were up")
    # A trend alert (a p99 over 10 min or more) stays until its window has passed: it is held to its last minute
    # being back on target instead, so the suite does not wait out a window earlier faults may have filled.
    thresholds = site.prometheus_config().thresholds
    deadline = time.monotonic() + 240
    shown: set[str] = set()
    while left := still_firing(site) | trends_off_target(site, thresholds):
        assert time.monotonic() < deadline, f"240 s after the site served again: {sorted(left)}"
        if left != shown:
            print(f"power cycle: {time.monotonic() - booted:.0f} s after, waiting for {sorted(left)}")
            shown = left
        time.sleep(2)
    notified = alert_receiver.alerts(booted)
    fired = {name for _, status, name, _ in notified if status == "firing" and name not in (WATCHDOG, *TRENDS)}
    resolved = {name for _, status, name, _ in notified if status == "resolved"}
    print(f"power cycle: alerts that reached the receiver: {sorted(fired) or 'none'}; all clear after "
          f"{time.monotonic() - booted:.0f} s")  # fmt: skip
    assert fired <= resolved, f"fired and never resolved: {sorted(fired - resolved)}"


TRENDS = ("ClawlanProbeTtftHigh", "ClawlanTokensPerSecondLow")


def still_firing(site) -> set[str]:
    """Alerts Alertmanager holds active, but the Watchdog and the latency trends, each with where (its instance, and
    the unit or path it names)."""
    return {
        alert["labels"]["alertname"] + "(" + ", ".join(
            f"{key}={alert['labels'][key]}" for key in ("instance", "name", "path") if key in alert["labels"]
        ) + ")"
        for alert in alertmanager_alerts(site)
        if alert["labels"]["alertname"] not in (WATCHDOG, *TRENDS) and alert["status"]["state"] == "active"
    }  # fmt: skip


def trends_off_target(site, thresholds) -> set[str]:
    """The latency trends whose last minute of probes misses the alert's own threshold."""
    base = prometheus_url(site)
    p99 = "histogram_quantile(0.99, rate(clawlan_probe_time_to_first_token_seconds_bucket[1m]))"
    slow = api(base, "query", query=f"({p99}) > {thresholds.ttft_p99_s} or absent({p99})")["result"]
    speed = 'clawlan_probe_tokens_per_second{path="backend"}'
    low = api(base, "query", query=f"{speed} < {thresholds.tokens_per_second_floor} or absent({speed})")["result"]
    return {name for name, result in zip(TRENDS, (slow, low), strict=True) if result}


def test_the_site_is_settled_after_the_faults(site):
    wait_until_settled(site)
    status, text = gateway_chat(site)
    assert status == 200, text
    assert deploy().changed == frozenset()

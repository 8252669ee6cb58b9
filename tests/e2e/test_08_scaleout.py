"""Scale-out: a second backend joins the lab, the frontend's balancer spreads chats over both, survives each way
the second one can fail, and a site that drops it again is a clean one-backend site.

The second backend is the one broken: the probe's backend path reaches the backends by their shared name, whose
first address is lab-back, so the alerts that fire are the pool's own, not the probe's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from itertools import pairwise

import pytest

from lab.core import Lab
from lab.runner import REPO, run_pyinfra
from roles.gateway.config import WARM_TAIL_TOKENS
from roles.inventory.load import load_inventory, site_from_inventory
from roles.model_server.config import UNIT as MODEL_UNIT
from roles.monitor.probe import UNIT as PROBE_UNIT
from roles.mtls.config import BALANCER_PROXY, BALANCER_UNIT
from tests.compliance import test_base as base_controls
from tests.compliance import test_services as service_controls
from tests.e2e.conftest import deploy, run_control, wait_until_passes
from tests.support.chats import MESSAGE_TOKENS, evaluated, path_targets, run_session
from tests.support.compliance_suite import compliance, wait_until_settled
from tests.support.gateway import chat
from tests.support.hosts import remote_host
from tests.support.prometheus import api, prometheus_url
from tests.support.remote import balancer_command, chats_logged, pool_states, put_text
from tests.support.waiting import seconds_until

SCALEOUT = "inventory/lab_scaleout.py"
FRONTEND, FIRST, SECOND = "lab-front", "lab-back", "lab-back2"
OUT_WITHIN_S = 5  # the bound: a backend gone bad gets no new chat after this


@pytest.fixture(scope="module")
def grown_lab(lab):
    """The session's lab, seen through the scale-out inventory: its hosts include lab-back2."""
    return Lab(log=lambda message: print(message, file=sys.stderr, flush=True), inventory=REPO / SCALEOUT)


@pytest.fixture(scope="module")
def grown(first_deploy, grown_lab):
    """lab-back2 started blank and the scale-out inventory deployed onto all three hosts."""
    grown_lab.up()
    return run_pyinfra(SCALEOUT, "deploys/full.py")


@pytest.fixture(scope="module")
def site(grown):
    return site_from_inventory(load_inventory(str(REPO / SCALEOUT), cwd=str(REPO)))


@pytest.fixture(scope="module")
def hosts(grown):
    return {host.name: remote_host(host) for host in load_inventory(str(REPO / SCALEOUT), cwd=str(REPO))}


@pytest.fixture(scope="module")
def gateway(site):
    config = site.gateway_config(FRONTEND)
    return config.url, site.control.gateway_token_file.read_text().strip()


def pool(hosts, site) -> dict[str, str]:
    return pool_states(hosts[FRONTEND], site.egress_config(FRONTEND))


def firing(site, alertname: str, **labels: str) -> bool:
    alerts = api(prometheus_url(site), "alerts")["alerts"]
    return any(
        a["state"] == "firing" and a["labels"]["alertname"] == alertname
        and all(a["labels"].get(k) == v for k, v in labels.items())
        for a in alerts
    )  # fmt: skip


def test_a_second_backend_joins_with_one_inventory_line(grown, site):
    """The scale-out inventory is the default lab's plus lab-back2's entry; the deploy put it in the pool."""
    default = site_from_inventory(load_inventory(str(REPO / "inventory" / "lab.py"), cwd=str(REPO)))
    assert [h.name for h in site.topology.hosts] == [*(h.name for h in default.topology.hosts), SECOND]
    assert [member.name for member in site.egress_config(FRONTEND).members] == [FIRST, SECOND]


def test_the_grown_site_redeploys_without_changes(grown):
    assert run_pyinfra(SCALEOUT, "deploys/full.py").changed == set()


def test_the_pool_holds_both_backends_healthy(hosts, site):
    run_control(service_controls.test_LB_02_pool_healthy, hosts[FRONTEND], site, FRONTEND)


def test_every_box_pins_the_shared_name_to_both_backends(hosts, site):
    for name, host in hosts.items():
        run_control(base_controls.test_BASE_10_pinned_names_resolve, host, site, name)


def test_the_monitor_scrapes_both_backends_and_the_balancer(hosts, site):
    wait_until_passes(
        run_control, service_controls.test_MON_03_targets_up, hosts[FRONTEND], site, FRONTEND, timeout_s=60
    )


def test_gateway_chats_spread_over_both_backends(hosts, gateway):
    """Only the test's chats: the probe is paused (its backend path goes to the shared name's first address)."""
    hosts[FRONTEND].run_expect([0], f"systemctl stop {PROBE_UNIT}")
    try:
        before = {name: chats_logged(hosts[name]) for name in (FIRST, SECOND)}
        for _ in range(6):
            status, text = chat(*gateway)
            assert status == 200, text
        moved = {name: chats_logged(hosts[name]) - before[name] for name in (FIRST, SECOND)}
    finally:
        hosts[FRONTEND].run_expect([0], f"systemctl start {PROBE_UNIT}")
    assert all(count > 0 for count in moved.values()), f"chat requests per backend: {moved}"


def session_turns(hosts, site, session: str, turns: int) -> tuple[list[dict], dict[str, int]]:
    """``turns`` chats of one gateway session: their token counts, and how many chats each backend logged meanwhile
    (the probe is held off by the runner)."""
    before = {name: chats_logged(hosts[name]) for name in (FIRST, SECOND)}
    records = run_session(hosts[FRONTEND], path_targets(site, FRONTEND)["gateway"], session, turns)
    assert all("error" not in record for record in records), records
    return records, {name: chats_logged(hosts[name]) - before[name] for name in (FIRST, SECOND)}


def warm(records: list[dict]) -> list[int]:
    """What each turn after the first evaluated beyond the previous answer and its own message."""
    return [evaluated(turn) - previous["completion_tokens"] - MESSAGE_TOKENS for previous, turn in pairwise(records)]


def sessions_placed(front) -> dict[str, str]:
    """The balancer's stick table: {session id: server id}."""
    table = balancer_command(front, f"show table {BALANCER_PROXY}")
    return dict(re.findall(r" key=(\S+) .*?server_id=(\d+)", table))


def test_a_sessions_chats_stay_on_the_backend_holding_its_cache_and_move_when_it_fails(hosts, site, request):
    """Every turn of one conversation reaches one backend, so each evaluates only its new turn, as on a one-backend
    site, while chats naming no session still spread (the test above). Its backend stopped, the next turn is
    answered by the other within the failover bound, evaluates the whole conversation there once, and the turns
    after it are warm again, where it now is."""
    session = "clawlan-affinity-e2e"
    # Only the session's chats: a probe round (a gateway and a backend chat) in flight when the counts are read
    # would land beside them.
    hosts[FRONTEND].run_expect([0], f"systemctl stop {PROBE_UNIT}")
    request.addfinalizer(lambda: hosts[FRONTEND].run_expect([0], f"systemctl start {PROBE_UNIT}"))
    records, placed = session_turns(hosts, site, session, 5)
    assert sorted(placed.values()) == [0, 5], f"one session's chats per backend: {placed}"
    assert max(warm(records)) <= 2 * WARM_TAIL_TOKENS, f"warm turns evaluated {warm(records)}: {records}"
    holder = next(name for name, count in placed.items() if count)
    other = SECOND if holder == FIRST else FIRST

    # A deploy that reloads the balancer (a pool or certificate change) keeps every session on its backend: the new
    # HAProxy takes the stick table from the old one over its loopback peer.
    remembered = sessions_placed(hosts[FRONTEND])
    assert remembered, "the balancer remembers no session"
    hosts[FRONTEND].run_expect([0], f"systemctl reload {BALANCER_UNIT}")
    seconds_until(lambda: sessions_placed(hosts[FRONTEND]) == remembered, 10, "the stick table handed over")
    after_reload, placed = session_turns(hosts, site, session, 2)
    assert placed == {holder: 2, other: 0}, f"after a balancer reload, the session's chats per backend: {placed}"
    assert max(warm([records[-1], *after_reload])) <= 2 * WARM_TAIL_TOKENS, after_reload
    records += after_reload

    hosts[holder].run_expect([0], f"systemctl stop {MODEL_UNIT}")
    try:
        stopped_at = time.monotonic()
        out_after = seconds_until(lambda: pool(hosts, site).get(holder) != "UP", 15, f"{holder} taken out of the pool")
        assert out_after <= OUT_WITHIN_S
        moved, placed = session_turns(hosts, site, session, 4)
        assert placed == {holder: 0, other: 4}, f"after {holder} stopped, the session's chats per backend: {placed}"
        assert evaluated(moved[0]) > evaluated(records[-1]), "the moved turn found the conversation cached?"
        assert max(warm(moved)) <= 2 * WARM_TAIL_TOKENS, f"warm turns after the move evaluated {warm(moved)}"
        print(f"affinity: {holder} out after {out_after:.1f} s; turns before {[evaluated(r) for r in records]},"
              f" after the move {[evaluated(r) for r in moved]} ({time.monotonic() - stopped_at:.1f} s)")  # fmt: skip
    finally:
        hosts[holder].run_expect([0], f"systemctl start {MODEL_UNIT}")
        seconds_until(lambda: pool(hosts, site) == {FIRST: "UP", SECOND: "UP"}, 120, f"{holder} back in the pool")


def chats_meanwhile(gateway, seconds: float, since: float) -> list[tuple[float, int, str]]:
    """Gateway chats one after another for ``seconds``: (start in seconds after ``since``, status, text)."""
    results = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic() - since
        status, text = chat(*gateway, text="are you still there?")
        results.append((started, status, text[:200]))
    return results


def stop_model_server(hosts, lab):
    hosts[SECOND].run_expect([0], f"systemctl stop {MODEL_UNIT}")


def restart_model_server(hosts, lab):
    hosts[SECOND].run_expect([0], f"systemctl start {MODEL_UNIT}")


def kill_model_server(hosts, lab):
    hosts[SECOND].run_expect([0], f"systemctl kill --signal=SIGKILL {MODEL_UNIT}")


def systemd_restarts_it(hosts, lab):
    """Restart=on-failure brings a killed model server back on its own."""


def stop_container(hosts, lab):
    lab.stop(SECOND)


def start_container(hosts, lab):
    lab.start(SECOND)
    hosts[SECOND].backend.__dict__.pop("client", None)  # its SSH connection died with it


FAULTS = {
    "model server stopped": (stop_model_server, restart_model_server),
    "model server killed": (kill_model_server, systemd_restarts_it),
    "container stopped": (stop_container, start_container),
}


@pytest.mark.parametrize("fault", FAULTS, ids=FAULTS)
def test_chats_keep_succeeding_when_a_backend_fails_and_it_rejoins_when_healthy(hosts, site, gateway, grown_lab, fault):
    break_it, mend_it = FAULTS[fault]
    assert pool(hosts, site) == {FIRST: "UP", SECOND: "UP"}
    broken_at = time.monotonic()
    break_it(hosts, grown_lab)
    if fault == "model server killed":
        # systemd has it serving again in ~1.3 s (RestartSec=1): the balancer's checks (two failures a second apart)
        # may never see it gone. What matters holds all the same: the chats meanwhile succeed.
        out_after = 0.0
    else:
        out_after = seconds_until(lambda: pool(hosts, site).get(SECOND) != "UP", 15, f"{SECOND} taken out of the pool")
    results = chats_meanwhile(gateway, 12, since=broken_at)
    print(f"{fault}: out of the pool after {out_after:.1f} s; chats (start s, status): "
          f"{[(round(t, 1), s) for t, s, _ in results]}")  # fmt: skip
    assert out_after <= OUT_WITHIN_S
    failed = [(round(t, 1), status, text) for t, status, text in results if status != 200 and t >= OUT_WITHIN_S]
    assert not failed, f"chats failed after {OUT_WITHIN_S} s: {failed}"
    if fault != "model server killed":  # systemd has it back within seconds: too short for the alert's for:
        seconds_until(lambda: firing(site, "ClawlanBackendOutOfPool", server=SECOND), 90, "ClawlanBackendOutOfPool")
    mend_it(hosts, grown_lab)
    seconds_until(lambda: pool(hosts, site) == {FIRST: "UP", SECOND: "UP"}, 120, f"{SECOND} back in the pool")
    status, text = chat(*gateway)
    assert status == 200, text


def test_a_chat_in_flight_on_a_dying_backend_ends_with_an_error_not_a_hang(hosts, site, lab):
    """Straight through the balancer on the frontend, a long answer on lab-back2 (lab-back drained for new chats for
    the moment), cut by killing lab-back2's model server."""
    front = hosts[FRONTEND]
    url = f"http://127.0.0.1:{site.egress_config(FRONTEND).port}/v1/chat/completions"
    key = site.control.model_server_api_key_file
    stream = (
        "curl -sS -N --max-time 60 -o /dev/null -w '%{http_code} %{time_total}\\n' -H @/root/.clawlan-scaleout-headers "
        "-H 'Content-Type: application/json' "
        """-d '{"max_tokens": 4000, "stream": true, "messages": [{"role": "user", "content": "count"}]}' """
        f"{url}"
    )
    put_text(front, "/root/.clawlan-scaleout-headers", f"Authorization: Bearer {key.read_text().strip()}\n", 0o600)
    proxy = site.egress_config(FRONTEND).proxy
    balancer_command(front, f"set server {proxy}/{FIRST} state drain")
    try:
        runner = subprocess.Popen(
            lab.ssh_command(FRONTEND, stream), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(1.5)
        hosts[SECOND].run_expect([0], f"systemctl kill --signal=SIGKILL {MODEL_UNIT}")
        out, err = runner.communicate(timeout=90)
    finally:
        balancer_command(front, f"set server {proxy}/{FIRST} state ready")
        front.run("rm -f /root/.clawlan-scaleout-headers")
    print(out, err)
    code, seconds = out.split()
    assert float(seconds) < 30, f"the cut stream hung: {out} {err}"
    assert "curl: (18)" in err, f"the stream ended without an error: {out} {err}"  # transfer closed mid-answer
    seconds_until(lambda: pool(hosts, site) == {FIRST: "UP", SECOND: "UP"}, 120, f"{SECOND} back in the pool")


def test_dropping_the_second_backend_leaves_a_clean_one_backend_site(hosts, site, tmp_path):
    """The default lab inventory no longer has lab-back2: the next deploy takes it out of every pin, the pool and
    Prometheus, and the compliance suite (for that inventory) passes."""
    deploy()
    wait_until_settled(site)
    one_backend = site_from_inventory(load_inventory(str(REPO / "inventory" / "lab.py"), cwd=str(REPO)))
    # Prometheus shows a target it was just given as up only after its first scrape.
    wait_until_passes(
        run_control, service_controls.test_MON_03_targets_up, hosts[FRONTEND], one_backend, FRONTEND, timeout_s=60
    )
    front = hosts[FRONTEND]
    assert SECOND not in front.file("/etc/hosts").content_string
    assert set(pool(hosts, site)) == {FIRST}
    returncode, failed, _, _ = compliance(tmp_path)
    assert returncode == 0 and not failed, f"failed controls: {sorted(failed)}"

"""The compliance suite and the check command, run the way a person runs them, against the deployed lab.

After each deliberate breakage the suite fails naming the control that covers it, and one deploy repairs them all;
the check command exits non-zero after a manual change, and after a re-deploy `make check-deep` passes whole: drift,
every compliance control, latency and the deep checks, one run for all four.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from lab.runner import REPO
from roles.gateway.config import CONFIG_FILE as GATEWAY_CONFIG
from roles.model_server.config import KEY_FILE
from tests.e2e.conftest import deploy
from tests.support.compliance_suite import BIN, LAB_INVENTORY, compliance, junit_cases, wait_until_settled

FRONTEND, BACKEND = "lab-front", "lab-back"


BREAKAGES = {
    "swap off": (BACKEND, "swapoff /var/lib/swap/swapfile", ("BASE-05", BACKEND)),
    "a hosts line removed": (FRONTEND, "sed -i '/^10\\.242\\.17\\.20\\s/d' /etc/hosts", ("BASE-06", FRONTEND)),
    "a unit stopped": (FRONTEND, "systemctl stop clawlan-probe.service", ("MON-02", FRONTEND)),
    "a config file mode changed": (BACKEND, f"chmod 644 {KEY_FILE}", ("LLM-03", BACKEND)),
    # The frontend's stored audit report goes stale with the chmod: the suite has the audit run again.
    "the gateway's configuration made readable": (FRONTEND, f"chmod 644 {GATEWAY_CONFIG}", ("GW-05", FRONTEND)),
    "a certificate from another CA": (
        BACKEND,
        "openssl req -x509 -key /etc/clawlan/pki/host.key -subj /CN=intruder -days 30"
        " -out /etc/clawlan/pki/host.crt 2>/dev/null",
        ("PKI-02", BACKEND),
    ),
    "an extra listener on the LAN": (
        BACKEND,
        "systemd-run --unit clawlan-test-listener python3 -m http.server --bind 10.242.17.20 9999",
        ("NET-01", BACKEND),
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_breakage_fails_the_control_that_covers_it(first_deploy, hosts, tmp_path, breakage):
    """One breakage after another, each left in place: the control that covers it passes just before and fails
    just after (run alone, so the run is short and the failure is this breakage's). The next test repairs them
    all with one deploy: a breakage's effect on the rest of the site is not what these tests are about."""
    host_name, command, (control, expected_host) = BREAKAGES[breakage]
    # Earlier breakages may fail other controls on other hosts (a stopped probe leaves NET-01's list on its host).
    code, failed, passed, _ = compliance(tmp_path, only=(control, expected_host))
    assert (code, failed) == (0, set()) and (control, expected_host) in passed, f"{control} before {breakage!r}"
    hosts[host_name].check_output(command)
    deadline = time.monotonic() + 10
    while "listener" in breakage and not hosts[host_name].run("ss -Hltn 'sport = :9999'").stdout.strip():
        assert time.monotonic() < deadline, "the test's listener never bound"
        time.sleep(0.1)  # it binds after systemd-run returns
    code, failed, _, _ = compliance(tmp_path, only=(control, expected_host))
    assert code != 0
    assert (control, expected_host) in failed, f"{control} not among the failures: {sorted(failed)}"


def test_the_suite_names_every_breakage_and_one_deploy_repairs_them(first_deploy, hosts, site, tmp_path):
    try:
        code, failed, _, _ = compliance(tmp_path)
        assert code != 0
        named = {covered for _, _, covered in BREAKAGES.values()}
        assert named <= failed, f"not among the failures: {sorted(named - failed)}"
    finally:
        hosts[BACKEND].run("systemctl stop clawlan-test-listener")
        deploy()  # puts every other breakage right
    wait_until_settled(site)  # a restarted probe (or model server) needs a round before MON-05 can pass
    code, failed, _, _ = compliance(tmp_path)
    assert (code, failed) == (0, set()), f"still failing after the repair: {sorted(failed)}"


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "python"), "tools/check.py", "--inventory", LAB_INVENTORY, "--reports", ".check-e2e", *args],
        cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900,
    )  # fmt: skip


def test_the_check_command_reports_drift(first_deploy, hosts):
    """A manual change: the check command names the operation a deploy would run and exits non-zero. The redeploy
    that puts it right is checked by the deep check below, which runs once for all that follows (make check-deep
    runs drift, compliance and latency first)."""
    hosts[BACKEND].check_output(f"chmod 644 {KEY_FILE}")
    result = check("--no-latency")
    assert result.returncode != 0
    assert "FAIL  drift:" in result.stdout and f"lab-back: Model server | Write the API key to {KEY_FILE}" in (
        result.stdout
    ), result.stdout[-3000:]


@pytest.fixture(scope="module")
def deep_check(first_deploy, site) -> tuple[subprocess.CompletedProcess, dict[str, set]]:
    """The drift above redeployed, then make check-deep on the settled site, as a person runs it: its output and
    the cases of its JUnit report, passed and not."""
    deploy()
    # A settled appliance: earlier suites restart the model server, and the gateway path's first chat after that
    # meets an empty prompt cache.
    wait_until_settled(site)
    result = check("--deep")
    print(result.stdout[-6000:])
    passed = [(name, properties) for name, properties, outcome in junit_cases(REPO / ".check-e2e" / "check.xml")
              if outcome == "passed"]  # fmt: skip
    cases = {
        "passed": {name for name, _ in passed},
        "controls": {properties["control"] for _, properties in passed if "control" in properties},
    }
    return result, cases


def test_the_check_command_is_clean_after_a_redeploy(deep_check):
    result, _ = deep_check
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.rsplit("\n== ", 1)[1]
    assert all(f"ok    {step}:" in summary for step in ("drift", "compliance", "latency")), summary


def test_the_suite_passes_on_the_deployed_lab(deep_check):
    result, cases = deep_check
    summary = result.stdout.rsplit("\n== ", 1)[1]
    assert "ok    compliance:" in summary, result.stdout[-3000:]
    assert cases["controls"] >= {"BASE-01", "PKI-02", "LLM-01", "GW-04", "NET-01", "MON-03"}, sorted(cases["controls"])


# The deep checks (tests/latency/test_deep.py, test_at_once.py) and their cases: each must have run and passed.
DEEP_CHECKS = {
    "test_the_prompt_cache_changes_no_answer[dropped-turn]",
    "test_the_prompt_cache_changes_no_answer[isolation]",
    "test_a_prompt_near_the_context_limit_is_answered_through_the_gateway",
    "test_people_at_once_are_served_about_as_well_as_one",
}


def test_the_deep_check_command_passes_on_the_deployed_lab(deep_check):
    """make check-deep: drift, compliance, latency, then the prompt cache's answers compared with fresh evaluations,
    the longest chat through the gateway, and people chatting at once."""
    result, cases = deep_check
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert cases["passed"] >= DEEP_CHECKS, f"deep checks not passed: {sorted(DEEP_CHECKS - cases['passed'])}"

"""The gateway's security audit program (roles/gateway/programs/audit.py): its report, its staleness rule, its metrics.

The audit itself is a stand-in script here; the real openclaw audit runs in the e2e suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from roles.gateway.config import AUDIT_COMMAND, AUDIT_PROGRAM, AUDIT_REPORT, CLI, CONFIG_FILE, ENV_FILE, STATE_DIR
from roles.gateway.deploy import audit_unit_text
from roles.gateway.programs import audit
from roles.inventory.load import load_inventory, site_from_inventory

PROGRAM = Path(audit.__file__)
REPO = Path(__file__).resolve().parents[2]
COARSE_CLOCK_S = 0.05  # inode times tick with the kernel's jiffies: a change in the same tick would keep the ctime
CLEAN = {"summary": {"critical": 0}, "findings": [{"checkId": "summary.attack_surface", "severity": "info"}]}
CRITICAL = {"findings": [{"checkId": "fs.config.perms_world_readable", "severity": "critical"}]}
REJECTED = {"ok": False, "issues": [{"path": "gateway.port", "message": "Expected number"}]}


def fake_audit(tmp_path: Path, stdout: str, exit_status: int = 0) -> list[str]:
    script = tmp_path / "fake-audit"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{stdout}\nEOF\nexit {exit_status}\n")
    script.chmod(0o755)
    return [str(script), "security", "audit", "--json"]


def run_program(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, PROGRAM, *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )


def audited(tmp_path: Path, stdout: str, exit_status: int = 0, inputs: tuple[Path, ...] = ()):
    """Run the program as the unit does; (its exit, the report file, the metrics file)."""
    report, metrics = tmp_path / "report.json", tmp_path / "audit.prom"
    result = run_program(
        "run", report, metrics, *(arg for path in inputs for arg in ("--input", path)), "--",
        *fake_audit(tmp_path, stdout, exit_status),
    )  # fmt: skip
    return result, report, metrics


def samples(metrics: Path) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.read_text())
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (json.dumps(CLEAN), CLEAN),
        ("Config warnings:\n- a banner before the JSON\n" + json.dumps(CRITICAL), CRITICAL),
        ("", None),
        ("openclaw: command not found", None),
        ('{"findings": [', None),
        ("[1, 2]", None),
    ],
    ids=["clean", "after-a-banner", "nothing", "no-json", "cut-short", "not-an-object"],
)
def test_the_report_is_the_json_object_the_audit_prints(stdout, expected):
    assert audit.parse_report(stdout) == expected


def test_a_run_keeps_the_report_private_with_what_it_read(tmp_path):
    config = tmp_path / "openclaw.json"
    config.write_text("{}")
    result, report, metrics = audited(tmp_path, json.dumps(CRITICAL), inputs=(config,))
    assert result.returncode == 0, result.stderr
    record = json.loads(report.read_text())
    assert record["report"] == CRITICAL and record["exit_status"] == 0
    assert record["inputs"] == {str(config): {"ctime_ns": config.stat().st_ctime_ns}}
    assert record["started"] <= record["finished"] <= time.time()
    assert report.stat().st_mode & 0o777 == 0o600
    assert metrics.stat().st_mode & 0o777 == 0o644


def test_metrics_count_findings_by_severity(tmp_path):
    odd = {"checkId": "x", "severity": 'fatal"\n'}  # no label value straight from openclaw's JSON
    two_critical = {"findings": [*CRITICAL["findings"], *CRITICAL["findings"], *CLEAN["findings"], odd]}
    _, report, metrics = audited(tmp_path, json.dumps(two_critical))
    values = samples(metrics)
    assert values[("clawlan_gateway_audit_findings", (("severity", "critical"),))] == 2
    assert values[("clawlan_gateway_audit_findings", (("severity", "info"),))] == 1
    assert values[("clawlan_gateway_audit_findings", (("severity", "warn"),))] == 0
    assert sum(1 for name, _ in values if name == "clawlan_gateway_audit_findings") == 3
    assert values[("clawlan_gateway_audit_success", ())] == 1
    assert values[("clawlan_gateway_config_valid", ())] == 1
    finished = json.loads(report.read_text())["finished"]
    assert values[("clawlan_gateway_audit_last_run_timestamp_seconds", ())] == pytest.approx(finished)


def test_a_rejected_configuration_is_reported_not_counted_as_findings(tmp_path):
    result, report, metrics = audited(tmp_path, json.dumps(REJECTED), exit_status=1)
    assert result.returncode == 0  # the audit ran and said why: that is a report, for GW-04 to judge
    assert json.loads(report.read_text())["exit_status"] == 1
    values = samples(metrics)
    assert values[("clawlan_gateway_config_valid", ())] == 0
    assert values[("clawlan_gateway_audit_success", ())] == 0
    assert not any(name == "clawlan_gateway_audit_findings" for name, _ in values)


def test_an_audit_without_a_report_fails_the_unit_and_says_so(tmp_path):
    result, report, metrics = audited(tmp_path, "Error: Cannot find module 'openclaw'", exit_status=1)
    assert result.returncode == 1
    assert "printed no report (exit 1)" in result.stderr
    assert json.loads(report.read_text())["report"] is None  # GW-04 and GW-05 then say the audit did not run
    assert samples(metrics)[("clawlan_gateway_audit_success", ())] == 0


def record(inputs: list[str], finished: float) -> dict:
    """A record as a run just now would write it, finished at ``finished``."""
    return {"started": finished - 10, "finished": finished, "exit_status": 0, "report": CLEAN,
            "inputs": {path: audit.fingerprint(path) for path in inputs}}  # fmt: skip


def test_a_report_speaks_for_now_while_nothing_it_read_changed(tmp_path):
    config, state = tmp_path / "openclaw.json", tmp_path / "state"
    config.write_text("{}")
    state.mkdir(mode=0o700)
    current = record([str(config), str(state)], finished=time.time())
    (state / "agents").mkdir()  # the gateway at work: entries come and go in its state directory
    assert audit.staleness(current, 7200, now=time.time()) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda config, state: config.chmod(0o644), "openclaw.json changed since the audit ran"),
        (lambda config, state: config.write_text('{"gateway": {}}'), "openclaw.json changed since the audit ran"),
        (lambda config, state: state.chmod(0o755), "state changed since the audit ran"),
        (lambda config, state: config.unlink(), "openclaw.json is gone"),
    ],
    ids=["file-chmod", "file-edit", "directory-chmod", "file-removed"],
)
def test_a_change_to_what_the_audit_read_makes_it_stale(tmp_path, change, reason):
    config, state = tmp_path / "openclaw.json", tmp_path / "state"
    config.write_text("{}")
    state.mkdir(mode=0o700)
    current = record([str(config), str(state)], finished=time.time())
    time.sleep(COARSE_CLOCK_S)
    change(config, state)
    assert audit.staleness(current, 7200, now=time.time()) == f"{tmp_path}/{reason}"


def test_a_report_older_than_the_limit_is_stale():
    now = 1_800_000_000.0
    assert (
        audit.staleness(record([], finished=now - 7201), 7200, now=now) == "the report is 7201 s old (at most 7200 s)"
    )
    assert audit.staleness(record([], finished=now - 7199), 7200, now=now) is None


def test_only_a_record_of_this_program_is_trusted():
    # The audit's own JSON, without when it ran and from what.
    reason = audit.staleness({"ok": True, "findings": []}, 7200, now=time.time())
    assert reason == "the report is not one this program wrote"


def test_show_prints_a_current_report_and_refuses_a_stale_one(tmp_path):
    config = tmp_path / "openclaw.json"
    config.write_text("{}")
    _, report, _ = audited(tmp_path, json.dumps(CLEAN), inputs=(config,))
    shown = run_program("show", report, "--max-age", "60")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["report"] == CLEAN

    time.sleep(COARSE_CLOCK_S)
    os.chmod(config, 0o600)
    stale = run_program("show", report, "--max-age", "60")
    assert (stale.returncode, stale.stdout) == (1, "")
    assert "changed since the audit ran" in stale.stderr
    missing = run_program("show", tmp_path / "none.json", "--max-age", "60")
    assert missing.returncode == 1 and "no report to show" in missing.stderr


def test_the_unit_runs_the_program_on_what_the_audit_reads():
    site = site_from_inventory(load_inventory(str(REPO / "inventory/lab.py"), cwd=str(REPO)))
    frontend = next(h.name for h in site.topology.hosts if h.role == "frontend")
    config = site.gateway_config(frontend)
    assert {CONFIG_FILE, STATE_DIR, ENV_FILE, config.openclaw_dir, config.node_dir} <= set(config.audit_inputs)
    unit = audit_unit_text(config)
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    arguments = exec_start.removeprefix("ExecStart=/usr/bin/python3 ").split()
    assert arguments[:4] == [AUDIT_PROGRAM, "run", AUDIT_REPORT, config.audit_metrics]
    assert [arguments[i + 1] for i, arg in enumerate(arguments) if arg == "--input"] == list(config.audit_inputs)
    assert " ".join(arguments[arguments.index("--") + 1 :]) == AUDIT_COMMAND
    assert config.metrics_dir in next(line for line in unit.splitlines() if line.startswith("ReadWritePaths="))


def fake_cli(tmp_path: Path, answer: str, known: bool) -> Path:
    """An openclaw CLI that answers `gateway call`: tools.effective fails for an unknown session until it is made."""
    made = tmp_path / "session-made"
    if known:
        made.touch()
    cli = tmp_path / "openclaw"
    cli.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/calls\n'
        f'case "$3" in sessions.create) touch {made}; echo \'{{"ok": true}}\';;\n'
        f"  tools.effective) if [ -e {made} ]; then echo '{answer}';"
        " else echo 'unknown session key' >&2; exit 1; fi;;\n"
        "esac\n"
    )
    cli.chmod(0o755)
    return cli


def test_the_effective_tools_are_what_the_gateway_answers_for_a_session_it_makes_when_missing(tmp_path):
    groups = [{"id": "core", "tools": [{"id": "write"}, {"id": "read"}]}, {"id": "plugin", "tools": [{"id": "read"}]}]
    answer = json.dumps({"agentId": "main", "profile": "minimal", "groups": groups})
    cli = fake_cli(tmp_path, answer, known=False)
    assert audit.effective_tools(str(cli)) == {"profile": "minimal", "tools": ["read", "write"]}
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [call.split()[2] for call in calls] == ["tools.effective", "sessions.create", "tools.effective"]
    assert f'{{"sessionKey": "{audit.TOOLS_SESSION}"}}' in calls[0]


def test_no_answer_from_the_gateway_is_an_error_not_an_empty_list(tmp_path):
    cli = fake_cli(tmp_path, "not json", known=True)
    assert "error" in audit.effective_tools(str(cli))
    missing = audit.effective_tools(str(tmp_path / "no-such-cli"))
    assert "error" in missing and "tools" not in missing


def test_the_unit_asks_the_running_gateway_over_its_own_address_only():
    site = site_from_inventory(load_inventory(str(REPO / "inventory/lab.py"), cwd=str(REPO)))
    frontend = next(h.name for h in site.topology.hosts if h.role == "frontend")
    unit = audit_unit_text(site.gateway_config(frontend))
    assert f"--tools-cli {CLI} -- {AUDIT_COMMAND}" in unit
    assert "IPAddressDeny=any" in unit and f"IPAddressAllow=localhost {site.topology.host(frontend).address}" in unit

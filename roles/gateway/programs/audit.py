"""openclaw's security audit, run on the frontend by clawlan-gateway-audit.service and kept as a report.

    audit.py run REPORT METRICS --input PATH ... [--tools-cli CLI] -- COMMAND ...
                                                                   run the audit, keep its report and metrics
    audit.py show REPORT --max-age SECONDS                         print the report while it speaks for now

The audit costs ~10 s of Node on a small frontend. Run by the deploy whenever the gateway changes, and hourly by a
timer, it is off the compliance suite's path: GW-04 and GW-05 read the report. A report speaks for now while it is
younger than --max-age and none of its inputs (the configuration, the token file, the installed versions, the
state directory's mode and owner) changed since the audit ran: an edit or a chmod makes it stale at once, and the
suite then has the unit run the audit again. The node exporter reads the metrics, so an alert fires on a critical
finding, and on an audit that fails (a rejected configuration) or stopped running.

With --tools-cli the record also holds the tools the running gateway gives its agent (OpenClaw's ``tools.effective``
for a session of its own, made empty when missing): what the gateway enforces, not what its configuration says.

Standard library only: the host's Python 3 runs it, as root (the audit itself runs as the gateway's user).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEVERITIES = ("critical", "warn", "info")
RECORD_KEYS = ("started", "finished", "exit_status", "inputs", "report")
TOOLS_SESSION = "agent:main:clawlan-tools-check"  # an empty session the check asks about; no model call is made


def parse_report(stdout: str) -> dict | None:
    """The JSON object the audit prints; openclaw may print a banner before it."""
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        report = json.loads(stdout[start:])
    except json.JSONDecodeError:
        return None
    return report if isinstance(report, dict) else None


def fingerprint(path: str) -> dict | None:
    """What of ``path`` the audit's verdict rests on, or None if it is missing. A file: its inode's change time,
    which any edit, chmod or chown moves. A directory: its mode and owners only; the gateway adds entries to its
    state directory all the time (its first chat creates half of them), and that changes nothing the audit judges."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(status.st_mode):
        return {"mode": status.st_mode, "uid": status.st_uid, "gid": status.st_gid}
    return {"ctime_ns": status.st_ctime_ns}


def run_audit(command: list[str], inputs: list[str]) -> dict:
    """Run ``command``; the record says when it ran, what it read (as it was before it started) and what it found."""
    started = time.time()
    before = {path: fingerprint(path) for path in inputs}
    process = subprocess.run(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, check=False)
    return {
        "started": started,
        "finished": time.time(),
        "exit_status": process.returncode,
        "inputs": before,
        "report": parse_report(process.stdout),
    }


def gateway_call(cli: str, method: str, params: dict) -> tuple[int, dict | None, str]:
    command = [cli, "gateway", "call", method, "--json", "--params", json.dumps(params)]
    try:
        process = subprocess.run(
            command, capture_output=True, stdin=subprocess.DEVNULL, text=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, None, str(error)
    return process.returncode, parse_report(process.stdout), (process.stdout + process.stderr).strip()[-500:]


def effective_tools(cli: str) -> dict:
    """``{"profile": ..., "tools": [ids]}`` as the running gateway answers for TOOLS_SESSION, or ``{"error": ...}``."""
    status, answer, text = gateway_call(cli, "tools.effective", {"sessionKey": TOOLS_SESSION})
    if status != 0 and "unknown session key" in text:
        gateway_call(cli, "sessions.create", {"key": TOOLS_SESSION})
        status, answer, text = gateway_call(cli, "tools.effective", {"sessionKey": TOOLS_SESSION})
    if status != 0 or answer is None or not isinstance(answer.get("groups"), list):
        return {"error": text or f"exit {status}"}
    tools = sorted({str(tool.get("id")) for group in answer["groups"] for tool in group.get("tools", [])})
    return {"profile": answer.get("profile"), "tools": tools}


def staleness(record: dict, max_age_s: float, now: float) -> str | None:
    """Why ``record`` no longer speaks for the gateway as it is now, or None while it does."""
    if any(key not in record for key in RECORD_KEYS) or not isinstance(record["inputs"], dict):
        return "the report is not one this program wrote"
    age = now - record["finished"]
    if age > max_age_s:
        return f"the report is {age:.0f} s old (at most {max_age_s:.0f} s)"
    for path, before in record["inputs"].items():
        now_there = fingerprint(path)
        if now_there != before:
            return f"{path} is gone" if now_there is None else f"{path} changed since the audit ran"
    return None


def _metric(name: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    values = [(labels, int(value) if float(value).is_integer() else float(value)) for labels, value in samples]
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *(f"{name}{labels} {v!r}" for labels, v in values)]


def metrics(record: dict) -> str:
    """The record as node exporter textfile metrics."""
    report = record["report"]
    audited = report is not None and "findings" in report
    lines = _metric(
        "clawlan_gateway_audit_last_run_timestamp_seconds",
        "When openclaw's security audit last finished, Unix time.",
        [("", record["finished"])],
    )
    lines += _metric(
        "clawlan_gateway_audit_success",
        "1 when the last audit ran and reported its findings.",
        [("", 1 if audited else 0)],
    )
    # Only a configuration openclaw rejects says "ok": false; without a report nothing is known either way.
    lines += _metric(
        "clawlan_gateway_config_valid",
        "1 when openclaw accepted the gateway's configuration in the last audit.",
        [("", 1 if report is not None and report.get("ok", True) is not False else 0)],
    )
    if audited:
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding in report["findings"]:
            if finding.get("severity") in counts:  # a label value from openclaw's JSON only if it is one we know
                counts[finding["severity"]] += 1
        lines += _metric(
            "clawlan_gateway_audit_findings",
            "Findings of the last audit, by severity.",
            [(f'{{severity="{severity}"}}', count) for severity, count in sorted(counts.items())],
        )
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Beside the final name, then renamed into place: a reader never sees half a file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="action", required=True)
    run = commands.add_parser("run", help="run the audit and keep its report and metrics")
    run.add_argument("report", type=Path)
    run.add_argument("metrics", type=Path)
    run.add_argument("--input", action="append", default=[], help="a file or directory the audit reads")
    run.add_argument("--tools-cli", help="the openclaw CLI: also record the agent's effective tools")
    run.add_argument("command", nargs="+", help="the audit, after --")
    show = commands.add_parser("show", help="print the report if it still speaks for now (exit 1 if not)")
    show.add_argument("report", type=Path)
    show.add_argument("--max-age", type=float, required=True, help="seconds")
    args = parser.parse_args(argv)

    if args.action == "run":
        record = run_audit(args.command, args.input)
        if args.tools_cli:
            record["effective_tools"] = effective_tools(args.tools_cli)
        write_atomically(args.report, json.dumps(record, indent=2) + "\n", 0o600)  # root's: the findings map holes
        write_atomically(args.metrics, metrics(record), 0o644)  # the node exporter's user reads it
        if record["report"] is None:
            print(f"the audit printed no report (exit {record['exit_status']})", file=sys.stderr)
            return 1
        return 0

    try:
        record = json.loads(args.report.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as error:
        print(f"no report to show: {error}", file=sys.stderr)
        return 1
    reason = staleness(record, args.max_age, time.time())
    if reason:
        print(f"stale: {reason}", file=sys.stderr)
        return 1
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

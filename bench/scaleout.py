"""Two backends behind the frontend's balancer: throughput at 8 streams against one backend, and failover.

    python -m lab --inventory inventory/lab_scaleout.py up && pyinfra -y inventory/lab_scaleout.py deploys/full.py
    python bench/scaleout.py [--rounds 3] [--failovers 3] [--json]

Against the deployed scale-out lab (it never brings the lab up or down); the probe is paused for the run.
- Throughput: 8 concurrent streamed chats (64 tokens) through the balancer on the first frontend
  (http://127.0.0.1:<mtls_egress_port>), with both backends in the pool and with the second one out (its model
  server stopped, the balancer's health checks having taken it out), alternated --rounds times. Aggregate
  tokens/s as bench/concurrency.py counts it; medians over the rounds and their ratio (goal: > 1).
- Failover, --failovers times per fault (the second backend's model server killed with SIGKILL, stopped, and its
  whole container stopped): short chats (4 tokens) one after another through the balancer for 15 s, the fault 3 s
  in. Per fault: time from the fault to the first chat after it that succeeded, chats that failed, and when the
  last failure started (goal: none fails that starts 5 s or more after the fault). The hosts share this machine's
  clock, so the fault's time and the chats' are comparable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.concurrency import cell  # noqa: E402
from lab.core import Lab  # noqa: E402
from lab.runner import REPO  # noqa: E402
from roles.gateway.config import ENV_FILE as GATEWAY_ENV_FILE  # noqa: E402
from roles.gateway.config import MODEL_API_KEY_ENV  # noqa: E402
from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402
from roles.model_server.config import UNIT as MODEL_UNIT  # noqa: E402
from roles.monitor.probe import UNIT as PROBE_UNIT  # noqa: E402
from tests.support.chats import run_chats  # noqa: E402
from tests.support.hosts import remote_host  # noqa: E402
from tests.support.remote import pool_states, put_text  # noqa: E402

INVENTORY = REPO / "inventory" / "lab_scaleout.py"
STREAMS = 8
HEADERS = "/root/.clawlan-bench-headers"
FAILOVER_S, FAULT_AT_S, GOAL_S = 15, 3, 5


def wait_for(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s} s waiting for {condition.__doc__}")
        time.sleep(0.5)


class Bench:
    def __init__(self, log):
        inventory = load_inventory(str(INVENTORY), cwd=str(REPO))
        self.site = site_from_inventory(inventory)
        self.hosts = {host.name: remote_host(host) for host in inventory}
        self.frontend = next(h.name for h in self.site.topology.hosts if h.role == "frontend")
        self.first, self.second = (member.name for member in self.site.egress_config(self.frontend).members[:2])
        self.front = self.hosts[self.frontend]
        self.lab = Lab(log=log, inventory=INVENTORY)
        self.log = log
        egress = self.site.egress_config(self.frontend)
        self.url = f"http://127.0.0.1:{egress.port}/v1/chat/completions"

    def pool(self) -> dict[str, str]:
        return pool_states(self.front, self.site.egress_config(self.frontend))

    def both_up(self) -> bool:
        """both backends in the pool"""
        return self.pool() == {self.first: "UP", self.second: "UP"}

    def second_out(self) -> bool:
        """the second backend out of the pool"""
        return self.pool().get(self.second) != "UP"

    def spec(self, max_tokens: int) -> dict[str, Any]:
        return {
            "name": "balancer",
            "url": self.url,
            "model": self.site.settings[self.first].model_server.model_alias,
            "env_file": GATEWAY_ENV_FILE,
            "env_var": MODEL_API_KEY_ENV,
            "max_tokens": max_tokens,
            "timeout_s": 120,
        }

    # -- throughput --------------------------------------------------------------------------------------------

    def throughput(self, rounds: int) -> dict[str, Any]:
        spec = self.spec(64)
        cells: dict[str, list[dict[str, Any]]] = {"two": [], "one": []}
        run_chats(self.front, spec, count=2, concurrency=2)  # warm both backends' caches
        for _ in range(rounds):
            wait_for(self.both_up, 120)
            cells["two"].append(cell(run_chats(self.front, spec, count=STREAMS * 3, concurrency=STREAMS), STREAMS))
            self.hosts[self.second].check_output(f"systemctl stop {MODEL_UNIT}")
            try:
                wait_for(self.second_out, 30)
                cells["one"].append(cell(run_chats(self.front, spec, count=STREAMS * 3, concurrency=STREAMS), STREAMS))
            finally:
                self.hosts[self.second].check_output(f"systemctl start {MODEL_UNIT}")
            self.log(
                f"  two: {cells['two'][-1]['tokens_per_s']:.0f} tok/s, one: {cells['one'][-1]['tokens_per_s']:.0f}"
            )
        wait_for(self.both_up, 120)
        medians = {k: statistics.median(c["tokens_per_s"] for c in v) for k, v in cells.items()}
        return {"cells": cells, "tokens_per_s_median": medians, "ratio": medians["two"] / medians["one"]}

    # -- failover ----------------------------------------------------------------------------------------------

    def faults(self):
        second = self.hosts[self.second]

        def kill():
            second.check_output(f"systemctl kill --signal=SIGKILL {MODEL_UNIT}")

        def stop():
            second.check_output(f"systemctl stop {MODEL_UNIT}")

        def start():
            second.check_output(f"systemctl start {MODEL_UNIT}")

        def container_stop():
            self.lab.stop(self.second)

        def container_start():
            self.lab.start(self.second)
            second.backend.__dict__.pop("client", None)  # its SSH connection died with it

        return {
            "model server killed (SIGKILL)": (kill, lambda: None),
            "model server stopped": (stop, start),
            "container stopped": (container_stop, container_start),
        }

    def failover_once(self, fault) -> dict[str, Any]:
        body = json.dumps({"max_tokens": 4, "messages": [{"role": "user", "content": "ping"}]})
        loop = (
            f"end=$(( $(date +%s) + {FAILOVER_S} )); while [ $(date +%s) -lt $end ]; do s=$(date +%s.%N); "
            f"c=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 30 -H @{HEADERS} "
            f"-H 'Content-Type: application/json' -d '{body}' {self.url}); echo \"$s $c\"; done"
        )
        runner = subprocess.Popen(self.lab.ssh_command(self.frontend, loop), stdout=subprocess.PIPE, text=True)
        time.sleep(FAULT_AT_S)
        fault_at = time.time()
        fault()
        out, _ = runner.communicate(timeout=FAILOVER_S + 60)
        chats = [(float(s) - fault_at, code) for s, code in (line.split() for line in out.splitlines() if line)]
        after = [(t, code) for t, code in chats if t >= 0]
        failed = [t for t, code in after if code != "200"]
        first_ok = next((t for t, code in after if code == "200"), None)
        return {
            "chats_after_fault": len(after),
            "failed": len(failed),
            "last_failure_started_s": max(failed) if failed else None,
            "first_success_s": first_ok,
        }

    def failover(self, repetitions: int) -> dict[str, Any]:
        key = self.site.control.model_server_api_key_file.read_text().strip()
        put_text(self.front, HEADERS, f"Authorization: Bearer {key}\n", 0o600)
        results: dict[str, Any] = {}
        try:
            for name, (fault, mend) in self.faults().items():
                runs = []
                for _ in range(repetitions):
                    wait_for(self.both_up, 120)
                    runs.append(self.failover_once(fault))
                    mend()
                    self.log(f"  {name}: {runs[-1]}")
                results[name] = {
                    "runs": runs,
                    "first_success_s_median": statistics.median(r["first_success_s"] for r in runs),
                    "failed_total": sum(r["failed"] for r in runs),
                    "late_failures": sum(
                        1
                        for r in runs
                        if r["last_failure_started_s"] is not None and r["last_failure_started_s"] >= GOAL_S
                    ),
                }
            wait_for(self.both_up, 120)
        finally:
            self.front.run(f"rm -f {HEADERS}")
        return results


def report(result: dict[str, Any]) -> str:
    t = result["throughput"]
    lines = [
        f"8 streams through the balancer, {len(t['cells']['two'])} rounds: two backends "
        f"{t['tokens_per_s_median']['two']:.0f} tokens/s, one {t['tokens_per_s_median']['one']:.0f}: "
        f"ratio {t['ratio']:.2f}"
        if t
        else "(throughput not measured)",
        "",
        "| fault | runs | first success after (median) | chats failed | failures starting >= 5 s after |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, f in result["failover"].items():
        lines.append(
            f"| {name} | {len(f['runs'])} | {f['first_success_s_median']:.2f} s | {f['failed_total']} | "
            f"{f['late_failures']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (0: failover only)")
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    bench = Bench(log)
    bench.front.check_output(f"systemctl stop {PROBE_UNIT}")
    try:
        log("throughput")
        throughput = bench.throughput(args.rounds) if args.rounds else None
        log("failover")
        failover = bench.failover(args.failovers)
    finally:
        bench.front.check_output(f"systemctl start {PROBE_UNIT}")
    result = {"throughput": throughput, "failover": failover}
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a chat costs before its first token, in the model's own tokens, and what that makes on the reference box.

    python bench/first_token.py [--inventory inventory/lab.py] [--repeats 3] [--turns 10] [--json]

Against a site that is deployed and running (it never brings the lab up or down). Every chat goes through the real
path: the gateway on the first frontend (OpenClaw and the agent profile the inventory chose), its balancer, mutual
TLS, the backend's model server. Per chat it records the prompt the model server counted and the part of it that
came from its cache, as the gateway reports them (usage.prompt_tokens, prompt_tokens_details.cached_tokens); the
rest was evaluated before the first token. Scenarios, each --repeats times:

  after a start    the first chat after the model server (re)started (every backend restarted, waited for);
  new session      a chat of a session the site has not seen, on a warm server;
  same session     the next chat of that session;
  turns 2-N        turns 2 to --turns of one session (every turn pooled);
  other backend    a session's turn on a backend it has not used (its own taken out of the balancer for the
                   chat): on a site with two or more backends only.

The projection of time to first token on the reference box is a formula, not a measurement: the gateway's own
time before it sends upstream (measured on the lab, FACTS.md: 0.19-0.27 s; 0.25 s taken) plus the evaluated tokens
at the reference box's published prompt rate plus one token at its published generation rate (RATES below).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402
from roles.model_server.config import UNIT as MODEL_UNIT  # noqa: E402
from tests.support.chats import evaluated, path_targets, run_session  # noqa: E402
from tests.support.hosts import remote_host  # noqa: E402
from tests.support.remote import balancer_command, pool_states  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Published figures for the reference box (Ryzen AI Max+ 395, 128 GB; llama.cpp, Vulkan RADV, kernel 6.18.9, Feb
# 2026), Qwen3-Next-80B-A3B's architecture at Q4_K_M: pp512 531 tokens/s, tg128 42.7 tokens/s. Not measured here.
RATES = {"prompt_tokens_per_second": 531.0, "tokens_per_second": 42.7, "gateway_s": 0.25}


def projected_ttft_s(evaluated_tokens: float) -> float:
    return RATES["gateway_s"] + evaluated_tokens / RATES["prompt_tokens_per_second"] + 1 / RATES["tokens_per_second"]


def wait_all_up(front, egress, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while set(pool_states(front, egress).values()) != {"UP"}:
        if time.monotonic() > deadline:
            raise SystemExit(f"the balancer's pool is not all UP: {pool_states(front, egress)}")
        time.sleep(1)


def session(front, target, turns: int) -> list[dict]:
    records = run_session(front, target, f"bench-{uuid.uuid4().hex[:12]}", turns)
    failed = [r for r in records if "error" in r]
    if failed:
        raise SystemExit(f"chats failed: {failed}")
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default="inventory/lab.py")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    inventory = load_inventory(str((REPO / args.inventory).resolve()), cwd=str(REPO))
    site = site_from_inventory(inventory)
    hosts = {host.name: remote_host(host) for host in inventory}
    frontend = next(h.name for h in site.topology.hosts if h.role == "frontend")
    backends = [h.name for h in site.topology.hosts if h.role == "backend"]
    front, egress = hosts[frontend], site.egress_config(frontend)
    target = path_targets(site, frontend)["gateway"]
    rows: dict[str, list[dict]] = {name: [] for name in ("after a start", "new session", "same session", "turns 2-N")}

    for _ in range(args.repeats):
        for name in backends:
            hosts[name].run_expect([0], f"systemctl restart {MODEL_UNIT}")
        wait_all_up(front, egress)
        rows["after a start"] += session(front, target, 1)
        first, second = session(front, target, 2)
        rows["new session"].append(first)
        rows["same session"].append(second)
    for _ in range(args.repeats):
        rows["turns 2-N"] += session(front, target, args.turns)[1:]

    if len(backends) > 1:
        rows["other backend"] = []
        for _ in range(args.repeats):
            key = f"bench-{uuid.uuid4().hex[:12]}"
            run_session(front, target, key, 2)
            table = balancer_command(front, f"show table {egress.proxy}")
            # The session's entry is the newest: the one with the longest time left before it expires.
            entries = [line for line in table.splitlines() if " server_key=" in line]
            newest = max(entries, key=lambda line: int(line.split(" exp=")[1].split()[0]))
            holder = newest.split(" server_key=")[1].split()[0]
            balancer_command(front, f"disable server {egress.proxy}/{holder}")
            try:
                rows["other backend"] += run_session(front, target, key, 1)
            finally:
                balancer_command(front, f"enable server {egress.proxy}/{holder}")
            wait_all_up(front, egress)

    summary = {}
    for name, records in rows.items():
        spent = [evaluated(r) for r in records]
        summary[name] = {
            "chats": len(records),
            "prompt_tokens_median": statistics.median(r["prompt_tokens"] for r in records),
            "evaluated_median": statistics.median(spent),
            "evaluated_max": max(spent),
            "projected_ttft_s": round(projected_ttft_s(statistics.median(spent)), 2),
        }
    profile = site.gateway_config(frontend).agent_tools
    if args.json:
        print(json.dumps({"profile": profile, "rates": RATES, "scenarios": summary}, indent=2))
        return 0
    print(f"agent profile '{profile}'; {len(backends)} backend(s); {args.repeats} repeats")
    print(f"{'scenario':<15} {'chats':>5} {'prompt':>7} {'evaluated':>9} {'max':>6} {'projected TTFT s':>17}")
    for name, s in summary.items():
        print(f"{name:<15} {s['chats']:>5} {s['prompt_tokens_median']:>7.0f} {s['evaluated_median']:>9.0f}"
              f" {s['evaluated_max']:>6} {s['projected_ttft_s']:>17.2f}")  # fmt: skip
    print(f"projection: {RATES['gateway_s']} s + evaluated / {RATES['prompt_tokens_per_second']:g} tokens/s"
          f" + 1 / {RATES['tokens_per_second']:g} tokens/s (published reference-box rates, not measured)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

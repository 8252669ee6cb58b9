"""People at once: one chat at a time against N at once, through the gateway and on the backend path, one run.

    python bench/at_once.py [--inventory inventory/lab.py] [--chats 8] [--rounds 3] [--max-tokens 64] [--loads ...]

Against a site that is deployed and running (it never deploys or restarts anything). Started on the first frontend,
with the probe paused: for each load, N warm-up chats, then --rounds rounds of N chats one after another and N
chats at once (alternated, so that a drift in the machine's load falls on both sides alike). Loads: "conversations",
the gateway path (OpenClaw on the frontend's LAN address, as a person's browser reaches it) with N people each in a
conversation of their own, every chat a turn of it; "new sessions", the gateway path with a new session per chat
(everyone opening a new chat at once); "backend", the backend's mutual TLS listener with the probe's certificate,
the model server and the path without OpenClaw.

Per load and N: TTFT p50 and p99, inter-token p99, aggregate tokens/s (N x tokens / the sum of the chats'
durations) and failed chats; and, for conversations, the site's targets for people at once (latency_at_once_*,
docs/roles.md): TTFT p99 and aggregate tokens/s as ratios against one chat on the same run, and inter-token p99.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402
from roles.monitor.probe import UNIT as PROBE_UNIT  # noqa: E402
from tests.support.chats import one_then_at_once, path_targets  # noqa: E402
from tests.support.hosts import remote_host  # noqa: E402
from tests.support.stats import at_once, at_once_verdicts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# What is measured: the gateway path as people in their conversations (each chat a turn of one of N sessions, the
# targets' load) and as N new sessions at once; the backend path without OpenClaw.
LOADS = {"conversations": "gateway", "new sessions": "gateway", "backend": "backend"}
HELD = "conversations"  # the load the targets are held on


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def report(result: dict[str, Any]) -> str:
    n = result["concurrency"]
    lines = [
        f"people at once: {result['rounds']} rounds of {n} chats one at a time and {n} at once, max_tokens "
        f"{result['max_tokens']}, from {result['frontend']}",
        f"  {'load':<13} {'N':>2}  {'TTFT p50':>10}  {'TTFT p99':>10}  {'ITL p99':>9}  {'tok/s':>7}  failed",
    ]
    for path, figures in result["loads"].items():
        for cell_n, c in figures["cells"].items():
            rate = "-" if c["tokens_per_s"] is None else f"{c['tokens_per_s']:.0f}"
            lines.append(
                f"  {path:<13} {cell_n:>2}  {_ms(c['ttft_p50_s']):>10}  {_ms(c['ttft_p99_s']):>10}"
                f"  {_ms(c['inter_token_p99_s']):>9}  {rate:>7}  {c['errors']}"
            )
        ttft, tokens = _x(figures["ttft_p99_ratio"]), _x(figures["tokens_per_s_ratio"])
        lines.append(f"  {path:<13} TTFT p99 {ttft} one chat's, tokens/s {tokens}")
    lines.append(f"targets, gateway path, {HELD} (latency_at_once_*, noise margin not applied):")
    lines += [f"  {'holds ' if holds else 'MISSED'} {what}" for what, holds in result["verdicts"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py", help="a deployed, running site (default: the lab)")
    parser.add_argument("--chats", type=int, default=None, help="chats at once (default: latency_at_once_chats)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of N single chats and N at once, per path")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per chat")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated, of {', '.join(LOADS)}")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args()
    loads = [load.strip() for load in args.loads.split(",") if load.strip()]
    if not loads or set(loads) - set(LOADS):
        parser.error(f"--loads takes {', '.join(LOADS)}")
    if args.rounds < 1 or args.max_tokens < 1 or (args.chats is not None and args.chats < 2):
        parser.error("--rounds and --max-tokens must be positive, --chats at least 2")
    inventory_file = (REPO / args.inventory).resolve()
    if not inventory_file.is_file():
        parser.error(f"no inventory file {inventory_file}")

    inventory = load_inventory(str(inventory_file), cwd=str(REPO))
    site = site_from_inventory(inventory)
    targets = site.latency
    concurrency = args.chats or targets.at_once_chats
    frontend = next(h for h in inventory if site.topology.host(h.name).role == "frontend")
    front = remote_host(frontend)
    chat_targets = path_targets(site, frontend.name, max_tokens=args.max_tokens)
    results: dict[str, Any] = {}
    front.check_output(f"systemctl stop {PROBE_UNIT}")
    try:
        for load in loads:
            target = chat_targets[LOADS[load]]
            single, batch = one_then_at_once(front, target, concurrency, args.rounds, people=load == HELD)
            results[load] = at_once(single, batch, concurrency)
            print(f"{load}: {json.dumps(results[load])}", file=sys.stderr, flush=True)
    finally:
        front.check_output(f"systemctl start {PROBE_UNIT}")

    result = {
        "frontend": frontend.name,
        "concurrency": concurrency,
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "loads": results,
        "verdicts": at_once_verdicts(results[HELD], concurrency, targets, margin=False) if HELD in results else [],
    }
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

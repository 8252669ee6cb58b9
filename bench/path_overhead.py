"""What the appliance path costs: one streamed chat through the frontend's transport path, and straight to the model.

    python bench/path_overhead.py [--inventory inventory/lab.py] [--pairs 40] [--max-tokens N] [--json]

Against a site that is deployed and running (it never brings the lab up or down). In one run it alternates single
streamed chats, each started on the host it names:
  A, transport, on the first frontend: its egress proxy on loopback -> mutual TLS -> the backend's nginx -> the
     model server, with the gateway's model API key (what OpenClaw does for every chat);
  B, direct, on the backend: the model server on loopback, with its own API key.
After 3 warm-up chats each, --pairs pairs A,B,A,B...: alternating spreads any drift of the model server (thermal,
cache) over both sides. It reports TTFT and inter-token median and p99 of each side, A-B and A/B, and whether the
goal holds: the path adds at most 2 ms to TTFT p99.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roles.gateway.config import ENV_FILE as GATEWAY_ENV_FILE  # noqa: E402
from roles.gateway.config import MODEL_API_KEY_ENV  # noqa: E402
from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402
from roles.model_server.config import SECRETS_FILE  # noqa: E402
from roles.model_server.settings import LLAMA_SERVER  # noqa: E402
from roles.monitor.probe import UNIT as PROBE_UNIT
from tests.support.chats import run_chats  # noqa: E402
from tests.support.hosts import remote_host  # noqa: E402
from tests.support.stats import bench_figures  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GOAL_TTFT_P99_ADDED_S = 0.002
WARMUP = 3
FIGURES = ("ttft_median_s", "ttft_p99_s", "inter_token_median_s", "inter_token_p99_s")


def targets(site, frontend: str, backend: str, max_tokens: int) -> dict[str, dict[str, Any]]:
    """A and B ask the same model the same question; only the way there differs."""
    model = site.settings[backend].model_server
    common = {"model": model.model_alias, "max_tokens": max_tokens, "timeout_s": site.monitor.probe_timeout_s}
    return {
        "A": {
            "name": "transport",
            "url": f"http://127.0.0.1:{site.settings[frontend].mtls.egress_port}/v1/chat/completions",
            "env_file": GATEWAY_ENV_FILE,
            "env_var": MODEL_API_KEY_ENV,
            **common,
        },
        "B": {
            "name": "direct",
            "url": f"http://127.0.0.1:{model.port}/v1/chat/completions",
            **direct_key(site, backend),
            **common,
        },
    }


def direct_key(site, backend: str) -> dict[str, str]:
    """Where the chat runner on the backend reads the model server's key: the engine's own root-only file."""
    config = site.model_server_config(backend)
    if config.engine == LLAMA_SERVER:
        return {"token_file": config.key_file}
    return {"env_file": SECRETS_FILE, "env_var": "API_KEY"}


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """A-B and A/B of every figure (None where a side has no figure, or B's is zero)."""
    difference = {k: None if a[k] is None or b[k] is None else a[k] - b[k] for k in FIGURES}
    ratio = {k: None if a[k] is None or not b[k] else a[k] / b[k] for k in FIGURES}
    return difference, ratio


def measure(hosts: dict[str, Any], specs: dict[str, dict[str, Any]], pairs: int, log) -> dict[str, list]:
    chats: dict[str, list] = {"A": [], "B": []}
    for _ in range(WARMUP):  # prompt cache, TLS sessions, nginx keepalive connections: not what is measured
        for side in ("A", "B"):
            run_chats(hosts[side], specs[side], count=1)
    for n in range(pairs):
        for side in ("A", "B"):
            chats[side] += run_chats(hosts[side], specs[side], count=1)
        if (n + 1) % 10 == 0:
            log(f"{n + 1}/{pairs} pairs")
    return chats


def _ms(seconds: float | None, sign: bool = False) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:+.2f} ms" if sign else f"{seconds * 1000:.2f} ms"


def report(result: dict[str, Any]) -> str:
    a, b, difference, ratio = result["A"], result["B"], result["difference"], result["ratio"]
    labels = {
        "ttft_median_s": "TTFT median",
        "ttft_p99_s": "TTFT p99",
        "inter_token_median_s": "ITL median",
        "inter_token_p99_s": "ITL p99",
    }
    pairs = result["pairs"]
    # Nearest rank: the p99 of up to 100 chats is their slowest, which a reader should not take for a smooth tail.
    note = " (p99: the slowest chat)" if pairs <= 100 else ""
    lines = [
        f"path overhead: {pairs} pairs of single streamed chats, max_tokens {result['max_tokens']}{note}",
        f"  A transport, on {result['frontend']}: {result['targets']['A']}",
        f"  B direct, on {result['backend']}: {result['targets']['B']}",
        f"  {'':<12}  {'A':>10}  {'B':>10}  {'A-B':>11}  {'A/B':>5}",
    ]
    for key, label in labels.items():
        r = "-" if ratio[key] is None else f"{ratio[key]:.2f}"
        lines.append(f"  {label:<12}  {_ms(a[key]):>10}  {_ms(b[key]):>10}  {_ms(difference[key], True):>11}  {r:>5}")
    if a["errors"] or b["errors"]:
        lines.append(f"  failed chats: A {a['errors']}, B {b['errors']} (left out of the figures)")
    goal = result["goal"]
    verdict = {True: "holds", False: "missed", None: "unknown (no TTFT on a side)"}[goal["holds"]]
    lines.append(
        f"  goal: the path adds <= {_ms(goal['ttft_p99_added_max_s'])} to TTFT p99: {verdict}"
        f" ({_ms(goal['ttft_p99_added_s'], True)})"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py", help="a deployed, running site (default: the lab)")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, help="tokens per chat (default: the site's monitor_probe_max_tokens)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument(
        "--keep-probe",
        action="store_true",
        help="leave the latency probe running (its chats queue ahead of some of the bench's)",
    )
    args = parser.parse_args()
    if args.pairs < 1 or (args.max_tokens is not None and args.max_tokens < 1):
        parser.error("--pairs and --max-tokens must be positive")
    inventory_file = (REPO / args.inventory).resolve()
    if not inventory_file.is_file():  # pyinfra would take a missing file for a host name
        parser.error(f"no inventory file {inventory_file}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    inventory = load_inventory(str(inventory_file), cwd=str(REPO))
    site = site_from_inventory(inventory)
    frontend = next(h.name for h in site.topology.hosts if h.role == "frontend")
    backend = next(h.name for h in site.topology.hosts if h.role == "backend")
    connections = {h.name: remote_host(h) for h in inventory if h.name in (frontend, backend)}
    max_tokens = args.max_tokens or site.monitor.probe_max_tokens
    specs = targets(site, frontend, backend, max_tokens)
    # The model server has one slot: a probe chat in flight makes the next bench chat wait up to a second, which
    # is queueing, not path cost. The probe is paused for the run and started again whatever happens.
    probe_hosts = [] if args.keep_probe else [connections[frontend]]
    for host in probe_hosts:
        host.check_output(f"systemctl stop {PROBE_UNIT}")
    try:
        chats = measure({"A": connections[frontend], "B": connections[backend]}, specs, args.pairs, log)
    finally:
        for host in probe_hosts:
            host.check_output(f"systemctl start {PROBE_UNIT}")

    a, b = bench_figures(chats["A"]), bench_figures(chats["B"])
    difference, ratio = compare(a, b)
    added = difference["ttft_p99_s"]
    result = {
        "inventory": str(inventory_file.relative_to(REPO) if inventory_file.is_relative_to(REPO) else inventory_file),
        "frontend": frontend,
        "backend": backend,
        "pairs": args.pairs,
        "max_tokens": max_tokens,
        "targets": {side: spec["url"] for side, spec in specs.items()},
        "A": a,
        "B": b,
        "difference": difference,
        "ratio": ratio,
        "goal": {
            "ttft_p99_added_max_s": GOAL_TTFT_P99_ADDED_S,
            "ttft_p99_added_s": added,
            "holds": None if added is None else added <= GOAL_TTFT_P99_ADDED_S,
        },
    }
    print(json.dumps(result, indent=2) if args.json else report(result))
    # A failed chat makes the figures suspect: say so in the exit code, after showing what was measured.
    return 1 if a["errors"] or b["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

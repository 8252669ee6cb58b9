"""Chats at once: the two engines side by side, 1, 4 and 8 concurrent streams, on the backend and gateway paths.

    python bench/concurrency.py [--inventory inventory/lab.py] [--rounds 3] [--max-tokens 64] [--json]

Against a site that is deployed and running (it never brings the lab up or down). In one run, for each engine
(llama-server first, then llama-cpp-python: the deploy switches the backend with --data model_server_engine=...,
and a last deploy puts the inventory's engine back), for each concurrency N in 1, 4, 8 and each path it runs
N x --rounds streamed chats, N at a time, started on the first frontend:
  backend: the backend's mutual TLS listener with the probe's certificate (the model server's queue, plus the path);
  gateway: OpenClaw on the frontend's LAN address, as a person's browser reaches it.
Per cell: TTFT p50 and p99, inter-token p99, and aggregate tokens/s: N x tokens answered / the sum of the chats'
durations (the runner keeps N chats in flight, so that is the batch's time without the SSH start around it).
Goals at 8 streams: backend TTFT p99 with llama-server <= 0.5 x llama-cpp-python's, aggregate tokens/s >= 1.5 x,
and gateway inter-token p99 < 40 ms. The probe is paused for the run (its chats would take slots).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.runner import PYINFRA  # noqa: E402
from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402
from roles.model_server.settings import LLAMA_CPP_PYTHON, LLAMA_SERVER  # noqa: E402
from roles.monitor.probe import UNIT as PROBE_UNIT  # noqa: E402
from tests.support.chats import path_targets, run_chats  # noqa: E402
from tests.support.hosts import remote_host  # noqa: E402
from tests.support.stats import aggregate_tokens_per_second, bench_figures  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ENGINES = (LLAMA_SERVER, LLAMA_CPP_PYTHON)
CONCURRENCY = (1, 4, 8)
PATHS = ("backend", "gateway")
GOAL_TTFT_P99_RATIO = 0.5
GOAL_TOKENS_PER_SECOND_RATIO = 1.5
GOAL_GATEWAY_INTER_TOKEN_P99_S = 0.040


def cell(chats: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    figures = bench_figures(chats)
    return {
        "chats": figures["chats"],
        "errors": figures["errors"],
        "ttft_p50_s": figures["ttft_median_s"],
        "ttft_p99_s": figures["ttft_p99_s"],
        "inter_token_p99_s": figures["inter_token_p99_s"],
        "tokens_per_s": aggregate_tokens_per_second(chats, concurrency),
    }


def measure(front, targets: dict[str, dict[str, Any]], rounds: int, log) -> dict[str, dict[int, dict[str, Any]]]:
    results: dict[str, dict[int, dict[str, Any]]] = {path: {} for path in PATHS}
    for path in PATHS:
        run_chats(front, targets[path], count=2, concurrency=1)  # warm: the prompt cache, OpenClaw's session
        for n in CONCURRENCY:
            chats = run_chats(front, targets[path], count=n * rounds, concurrency=n)
            results[path][n] = cell(chats, n)
            log(f"  {path:<8} x{n}: {json.dumps(results[path][n])}")
    return results


def deploy(inventory_file: Path, *args: str) -> None:
    subprocess.run(
        [PYINFRA, "-y", str(inventory_file), "deploys/full.py", *args],
        cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def goals(results: dict[str, Any]) -> dict[str, Any]:
    fast, slow = results[LLAMA_SERVER], results[LLAMA_CPP_PYTHON]
    ttft = ratio(fast["backend"][8]["ttft_p99_s"], slow["backend"][8]["ttft_p99_s"])
    tokens = ratio(fast["backend"][8]["tokens_per_s"], slow["backend"][8]["tokens_per_s"])
    gap = fast["gateway"][8]["inter_token_p99_s"]
    return {
        "backend_ttft_p99_ratio_at_8": ttft,
        "backend_ttft_p99_ratio_holds": None if ttft is None else ttft <= GOAL_TTFT_P99_RATIO,
        "backend_tokens_per_s_ratio_at_8": tokens,
        "backend_tokens_per_s_ratio_holds": None if tokens is None else tokens >= GOAL_TOKENS_PER_SECOND_RATIO,
        "gateway_inter_token_p99_at_8_s": gap,
        "gateway_inter_token_p99_holds": None if gap is None else gap < GOAL_GATEWAY_INTER_TOKEN_P99_S,
    }


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def report(result: dict[str, Any]) -> str:
    lines = [
        f"concurrency: {result['rounds']} rounds of N streamed chats, max_tokens {result['max_tokens']}, "
        f"from {result['frontend']}",
        f"  {'engine':<17} {'path':<8} {'N':>2}  {'TTFT p50':>10}  {'TTFT p99':>10}  {'ITL p99':>9}  {'tok/s':>7}",
    ]
    for engine in ENGINES:
        for path in PATHS:
            for n in CONCURRENCY:
                c = result["engines"][engine][path][n]
                rate = "-" if c["tokens_per_s"] is None else f"{c['tokens_per_s']:.0f}"
                errors = f"  ({c['errors']} failed)" if c["errors"] else ""
                lines.append(
                    f"  {engine:<17} {path:<8} {n:>2}  {_ms(c['ttft_p50_s']):>10}  {_ms(c['ttft_p99_s']):>10}"
                    f"  {_ms(c['inter_token_p99_s']):>9}  {rate:>7}{errors}"
                )
    g = result["goals"]

    def verdict(holds):
        return {True: "holds", False: "missed", None: "unknown"}[holds]

    def x(value):
        return "-" if value is None else f"{value:.2f}x"

    lines += [
        f"  goal, backend TTFT p99 at 8 <= {GOAL_TTFT_P99_RATIO}x the single-slot server's: "
        f"{verdict(g['backend_ttft_p99_ratio_holds'])} ({x(g['backend_ttft_p99_ratio_at_8'])})",
        f"  goal, backend aggregate tokens/s at 8 >= {GOAL_TOKENS_PER_SECOND_RATIO}x: "
        f"{verdict(g['backend_tokens_per_s_ratio_holds'])} ({x(g['backend_tokens_per_s_ratio_at_8'])})",
        f"  goal, gateway inter-token p99 at 8 < {_ms(GOAL_GATEWAY_INTER_TOKEN_P99_S)}: "
        f"{verdict(g['gateway_inter_token_p99_holds'])} ({_ms(g['gateway_inter_token_p99_at_8_s'])})",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py", help="a deployed, running site (default: the lab)")
    parser.add_argument("--rounds", type=int, default=3, help="batches of N chats per cell")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per chat")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args()
    if args.rounds < 1 or args.max_tokens < 1:
        parser.error("--rounds and --max-tokens must be positive")
    inventory_file = (REPO / args.inventory).resolve()
    if not inventory_file.is_file():
        parser.error(f"no inventory file {inventory_file}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    inventory = load_inventory(str(inventory_file), cwd=str(REPO))
    site = site_from_inventory(inventory)
    frontend = next(h for h in inventory if site.topology.host(h.name).role == "frontend")
    front = remote_host(frontend)
    targets = path_targets(site, frontend.name, max_tokens=args.max_tokens)
    engines: dict[str, Any] = {}
    front.check_output(f"systemctl stop {PROBE_UNIT}")
    try:
        for engine in ENGINES:
            log(f"{engine}: deploying")
            deploy(inventory_file, "--data", f"model_server_engine={engine}")
            front.check_output(f"systemctl stop {PROBE_UNIT}")  # the deploy may have started it again
            engines[engine] = measure(front, targets, args.rounds, log)
    finally:
        log("putting the inventory's engine back")
        deploy(inventory_file)
        front.check_output(f"systemctl start {PROBE_UNIT}")

    result = {
        "frontend": frontend.name,
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "engines": engines,
    }
    result["goals"] = goals(engines)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the gateway's time goes: OpenClaw's CPU profile under one chat at a time and under N at once.

    python bench/gateway_profile.py [--inventory inventory/lab.py] [--chats 8] [--rounds 3] [--top 20] [--json]

Against a deployed, running site; it restarts the first frontend's gateway three times. For each load (N x
--rounds chats one after another, then as many in batches of N at once, through the gateway path as a person's
browser reaches it), the gateway runs under Node's sampling profiler (--cpu-prof, from a runtime drop-in under /run
that is removed, like the profile files, before the gateway is started as deployed again). The profile is written
when the gateway stops, so each load gets its own start: two warm-up chats, the load, a stop.

Per load: the wall time of the load; the CPU the gateway's event loop spent (everything but "(idle)") per chat,
sampled within the load's window only; that CPU by where it ran (OpenClaw's bundles by file, Node's own modules, npm
dependencies, garbage collection); the --top functions by self time; and the busy time of every other process and
thread that ran JavaScript (OpenClaw's worker threads and processes). The event loop is what every chat and every
streamed token crosses: its busy share of the load's time is how close one gateway process is to its limit.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roles.gateway.config import CACHE_DIR, UNIT, USER  # noqa: E402
from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402
from roles.monitor.probe import UNIT as PROBE_UNIT  # noqa: E402
from tests.support.chats import path_targets, run_chats  # noqa: E402
from tests.support.hosts import remote_host  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROFILE_DIR = f"{CACHE_DIR}/cpu-profiles"  # the gateway's CacheDirectory=: the one place its sandbox lets it write
DROP_IN_DIR = f"/run/systemd/system/{UNIT}.d"  # /run: gone at the next boot whatever happens to this script
DROP_IN = f"{DROP_IN_DIR}/zz-clawlan-cpu-profile.conf"
IDLE = "(idle)"
PROFILE_NAME = re.compile(r"CPU\.\d{8}\.\d{6}\.(?P<pid>\d+)\.(?P<thread>\d+)\.\d{3}\.cpuprofile")


def where(url: str, function: str) -> str:
    """The part of the gateway a sampled frame belongs to."""
    if function in ("(garbage collector)", "(program)", IDLE, "(root)"):
        return function
    if url.startswith("node:") or not url:
        return "node built-ins"
    if "/openclaw/dist/" in url:
        return "openclaw " + url.rsplit("/openclaw/dist/", 1)[1].split("?")[0]
    if "/node_modules/" in url:
        package = url.rsplit("/node_modules/", 1)[1].split("/")
        return "npm " + "/".join(package[:2] if package[0].startswith("@") else package[:1])
    return url.rsplit("/", 1)[-1]


def self_times(profile: dict[str, Any], since_us: float = 0.0) -> tuple[Counter, Counter, float]:
    """Self time (ms) by part and by function, and the span (ms) they cover, from a .cpuprofile's samples taken at
    or after ``since_us`` (the profiles' own clock, shared by every process on the host)."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    by_node: Counter = Counter()
    now = profile["startTime"]
    for node_id, delta_us in zip(profile["samples"], profile["timeDeltas"], strict=True):
        now += delta_us
        if now >= since_us:
            by_node[node_id] += delta_us / 1000
    parts: Counter = Counter()
    functions: Counter = Counter()
    for node_id, ms in by_node.items():
        frame = nodes[node_id]["callFrame"]
        name, url = frame["functionName"] or "(anonymous)", frame["url"]
        part = where(url, name)
        parts[part] += ms
        if part != IDLE:
            functions[f"{name} ({part}:{frame['lineNumber'] + 1})"] += ms
    return parts, functions, (profile["endTime"] - max(profile["startTime"], since_us)) / 1000


def profiled(front, target: dict[str, Any], load) -> tuple[dict[str, Any], dict[str, float], float, int]:
    """Starts the gateway under the profiler, runs ``load``, stops it. The gateway process's event-loop profile; the
    busy ms of every other process and thread that ran JavaScript meanwhile, by what it is; the load's wall time (s);
    the number of chats."""
    front.check_output(f"rm -rf {PROFILE_DIR} && install -d -o openclaw -g openclaw -m 0700 {PROFILE_DIR}")
    # Quoted: systemd splits an unquoted assignment at the space, and the profiles would land in the state directory.
    conf = f'[Service]\nEnvironment="NODE_OPTIONS=--cpu-prof --cpu-prof-dir={PROFILE_DIR}"\n'
    front.check_output(
        f"install -d {DROP_IN_DIR} && printf %s {shlex.quote(conf)} > {DROP_IN} && systemctl daemon-reload"
        f" && systemctl reset-failed {UNIT} && systemctl restart {UNIT}"  # three starts here: under its start limit
    )
    run_chats(front, target, count=2, concurrency=1)  # warm: OpenClaw's first agent runs, the prompt cache
    started = time.monotonic()
    chats = load()
    wall_s = time.monotonic() - started
    # `openclaw gateway run` is a launcher: the gateway is its child titled openclaw-gateway, beside worker processes
    # (the spawn broker, SQLite readers) that run JavaScript too.
    processes = dict(
        line.strip().split(None, 1) for line in front.check_output(f"ps -o pid=,args= -u {USER}").splitlines()
    )
    stopping = time.monotonic()
    front.check_output(f"systemctl stop {UNIT}")
    stop_s = time.monotonic() - stopping
    failed = [c for c in chats if "error" in c]
    if failed:
        raise RuntimeError(f"{len(failed)} chats failed under the profiler: {failed[:2]}")
    gateway = [pid for pid, args in processes.items() if args == "openclaw-gateway"]
    if len(gateway) != 1:
        raise RuntimeError(f"no single openclaw-gateway process among {processes}")
    # Node names each profile CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is a process's event loop.
    profiles = {}
    for name in front.check_output(f"ls {PROFILE_DIR}").split():
        # Only names of Node's own pattern are read back: a name the host lists never reaches a command unchecked.
        if not (shape := PROFILE_NAME.fullmatch(name)):
            continue
        pid, thread = shape["pid"], shape["thread"]
        profiles[pid, thread] = json.loads(front.check_output(f"cat {PROFILE_DIR}/{shlex.quote(name)}"))
    if (gateway[0], "0") not in profiles:
        raise RuntimeError(f"the gateway (pid {gateway[0]}) wrote no profile")
    profile = profiles.pop((gateway[0], "0"))
    # The load's window on the profiles' clock: it ended when the stop began, which ended the gateway's profile.
    since_us = profile["endTime"] - (stop_s + wall_s) * 1e6
    profile["clawlan_since_us"] = since_us
    others: Counter = Counter()
    for (pid, thread), data in profiles.items():
        parts, _, _ = self_times(data, since_us)
        what = processes.get(pid, "gone before the load ended").rsplit("/", 1)[-1]
        label = f"gateway worker thread {thread}" if pid == gateway[0] else what
        others[label] += sum(ms for part, ms in parts.items() if part != IDLE)
    return profile, dict(others), wall_s, len(chats)


def restore(front) -> None:
    front.run(f"rm -f {DROP_IN}; rm -rf {PROFILE_DIR}; systemctl daemon-reload; systemctl start {UNIT}")


def summary(profile: dict[str, Any], others: dict[str, float], wall_s: float, chats: int, top: int) -> dict[str, Any]:
    parts, functions, span_ms = self_times(profile, profile["clawlan_since_us"])
    busy_ms = sum(ms for part, ms in parts.items() if part != IDLE)
    return {
        "chats": chats,
        "load_wall_s": round(wall_s, 2),
        "profile_span_s": round(span_ms / 1000, 2),
        "main_thread_busy_ms": round(busy_ms),
        "main_thread_busy_share": round(busy_ms / span_ms, 3) if span_ms else None,
        "busy_ms_per_chat": round(busy_ms / chats, 1),
        "parts_ms": {part: round(ms) for part, ms in parts.most_common() if part != IDLE},
        "top_functions_ms": {name: round(ms, 1) for name, ms in functions.most_common(top)},
        "other_javascript_busy_ms": {what: round(ms) for what, ms in sorted(others.items(), key=lambda i: -i[1])},
    }


def report(result: dict[str, Any]) -> str:
    lines = []
    for load, s in result["loads"].items():
        lines += [
            f"{load}: {s['chats']} chats in {s['load_wall_s']} s; the gateway's main thread busy"
            f" {s['main_thread_busy_ms']} ms of the load's {s['profile_span_s']} s ({s['main_thread_busy_share']:.0%}),"
            f" {s['busy_ms_per_chat']} ms per chat",
            "  by part:",
            *(f"    {ms:>7} ms  {part}" for part, ms in list(s["parts_ms"].items())[:12]),
            "  top functions by self time:",
            *(f"    {ms:>7} ms  {name}" for name, ms in s["top_functions_ms"].items()),
            "  other processes and threads running JavaScript meanwhile (busy ms):",
            *(f"    {ms:>7} ms  {what}" for what, ms in s["other_javascript_busy_ms"].items()),
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py", help="a deployed, running site (default: the lab)")
    parser.add_argument("--chats", type=int, default=8, help="chats at once, and chats one after another")
    parser.add_argument("--rounds", type=int, default=3, help="batches of N chats at once")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per chat")
    parser.add_argument("--top", type=int, default=20, help="functions listed per load")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a report")
    args = parser.parse_args()
    if min(args.chats, args.rounds, args.max_tokens, args.top) < 1:
        parser.error("--chats, --rounds, --max-tokens and --top must be positive")
    inventory_file = (REPO / args.inventory).resolve()
    if not inventory_file.is_file():
        parser.error(f"no inventory file {inventory_file}")
    inventory = load_inventory(str(inventory_file), cwd=str(REPO))
    site = site_from_inventory(inventory)
    frontend = next(h for h in inventory if site.topology.host(h.name).role == "frontend")
    front = remote_host(frontend)
    target = path_targets(site, frontend.name, max_tokens=args.max_tokens)["gateway"]
    n, rounds = args.chats, args.rounds
    loads = {
        "one at a time": lambda: run_chats(front, target, count=n * rounds, concurrency=1),
        f"{n} at once": lambda: run_chats(front, target, count=n * rounds, concurrency=n),
    }
    results: dict[str, Any] = {}
    front.check_output(f"systemctl stop {PROBE_UNIT}")
    try:
        for name, load in loads.items():
            profile, others, wall_s, chats = profiled(front, target, load)
            results[name] = summary(profile, others, wall_s, chats, args.top)
            print(f"{name}: {results[name]['busy_ms_per_chat']} ms per chat", file=sys.stderr, flush=True)
    finally:
        restore(front)
        front.check_output(f"systemctl start {PROBE_UNIT}")
    result = {"frontend": frontend.name, "max_tokens": args.max_tokens, "loads": results}
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

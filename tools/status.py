"""The appliance at a glance, from its Prometheus: each box's memory, swap, disk and GPU memory, each path's latency
and speed against the site's targets, the balancers' pools and the alerts firing.

    python tools/status.py --inventory inventory/site.py     (make status)

Exit 0 when no alert is firing (the Watchdog aside), 1 when one is, 2 when Prometheus cannot be read. Read-only: it
asks the monitor host's Prometheus (HTTPS, the site CA, the monitor password) and touches no box.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402
from roles.monitor import dashboard  # noqa: E402
from roles.monitor.common import WEB_USER  # noqa: E402
from roles.mtls.config import BALANCER_PROXY  # noqa: E402
from roles.site.monitor_api import Prometheus, login_files, prometheus_base_url  # noqa: E402

WIDTH = 20  # characters of a bar
PATHS = ("gateway", "backend")
NODE = dashboard.NODE
# Each box's bars: a name, the used share's query (the dashboard's), the total's query (bytes), both by instance.
BOX_BARS = (
    ("memory", dashboard.MEMORY_USED, f"node_memory_MemTotal_bytes{NODE}"),
    ("swap", dashboard.SWAP_USED, f"node_memory_SwapTotal_bytes{NODE}"),
    ("disk /", dashboard.DISK_USED, f"node_filesystem_size_bytes{dashboard.ROOT_FS}"),
    ("GPU memory (GTT)", dashboard.GTT_USED, "sum by (instance) (node_drm_memory_gtt_size_bytes)"),
)
PATH_QUERIES = {
    "ttft_p99_s": dashboard.TTFT_P99,
    "inter_token_p99_s": dashboard.INTER_TOKEN_P99,
    "tokens_per_second": dashboard.TOKENS_PER_SECOND,
    "success": dashboard.PROBE_SUCCESS,
}
POOL = dashboard.pool_members(BALANCER_PROXY)
FIRING = dashboard.FIRING
WINDOW = dashboard.WINDOW


@dataclass
class Readings:
    """What Prometheus said, by box and by path; a figure it has no series for is absent."""

    boxes: dict[str, dict[str, tuple[float, float | None]]] = field(
        default_factory=dict
    )  # box -> bar -> (share, total)
    paths: dict[str, dict[str, float]] = field(default_factory=dict)  # path -> figure -> value
    pool: dict[str, dict[str, str]] = field(default_factory=dict)  # balancer (frontend) -> backend -> state
    firing: list[dict[str, str]] = field(default_factory=list)  # each firing alert's labels


def _number(sample) -> float:
    return float(sample["value"][1])


def read(query: Callable[[str], list[dict]]) -> Readings:
    readings = Readings()
    for name, share_query, total_query in BOX_BARS:
        totals = {s["metric"].get("instance"): _number(s) for s in query(total_query)}
        for sample in query(share_query):
            box = sample["metric"].get("instance", "?")
            readings.boxes.setdefault(box, {})[name] = (_number(sample), totals.get(box))
    for figure, promql in PATH_QUERIES.items():
        for sample in query(promql):
            readings.paths.setdefault(sample["metric"].get("path", "?"), {})[figure] = _number(sample)
    for sample in query(POOL):
        labels = sample["metric"]
        readings.pool.setdefault(labels.get("instance", "?"), {})[labels.get("server", "?")] = labels.get("state", "?")
    readings.firing = sorted((s["metric"] for s in query(FIRING)), key=lambda m: (m.get("alertname", ""), str(m)))
    return readings


def bar(share: float) -> str:
    """``share`` of the bar filled (0 to 1; more shows as full, with a mark at the end)."""
    filled = round(min(max(share, 0.0), 1.0) * WIDTH)
    return "[" + "#" * filled + "." * (WIDTH - filled) + ("]" if share <= 1 else ">")


def _size(total_bytes: float | None) -> str:
    return "" if total_bytes is None else f" of {total_bytes / 2**30:.1f} GiB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _figure(value: float | None, target: float, higher_is_worse: bool, show: Callable[[float], str]) -> str:
    """A bar of ``value`` against ``target`` (full at the target) and the verdict; 'no data' without a value."""
    if value is None or value != value:  # NaN: a histogram with no observations in the window
        return f"{bar(0)} no data"
    if not target:
        return f"{bar(0)} {show(value)} (no target)"
    missed = value > target if higher_is_worse else value < target
    return f"{bar(value / target)} {show(value)} ({'past' if missed else 'within'} target {show(target)})"


def render(readings: Readings, boxes: list[str], targets, *, title: str) -> str:
    """The report: ``boxes`` (the inventory's hosts, in its order) and ``targets`` (the site's LatencyTargets)."""
    label = max([len(b) for b in boxes] + [len("inter-token p99"), len("GPU memory (GTT)")]) + 2
    lines = [title, ""]
    for box in boxes:
        lines.append(box)
        bars = readings.boxes.get(box, {})
        if not bars:
            lines.append(f"  {'':<{label}}no data (node exporter not scraped)")
        for name, _, _ in BOX_BARS:
            if name in bars:
                share, total = bars[name]
                lines.append(f"  {name:<{label}}{bar(share)} {share * 100:3.0f} %{_size(total)}")
    for path in PATHS:
        figures = readings.paths.get(path, {})
        state = {1.0: "answering", 0.0: "FAILING"}.get(figures.get("success"), "no probe result")
        lines.append(f"path {path} ({state}; the probe, last {WINDOW})")
        lines.append(f"  {'first token p99':<{label}}"
                     f"{_figure(figures.get('ttft_p99_s'), targets.ttft_p99_s, True, _ms)}")  # fmt: skip
        lines.append(f"  {'inter-token p99':<{label}}"
                     f"{_figure(figures.get('inter_token_p99_s'), targets.inter_token_p99_s, True, _ms)}")  # fmt: skip
        floor = targets.tokens_per_second
        rate = figures.get("tokens_per_second")
        shown = "no data" if rate is None else f"{rate:.1f} tokens/s"
        verdict = "" if rate is None or not floor else f" ({'below' if rate < floor else 'above'} floor {floor:g})"
        # Full at twice the floor: more is better, so nothing shows as past the bar.
        share = 0 if rate is None or not floor else min(rate / (2 * floor), 1.0)
        lines.append(f"  {'speed':<{label}}{bar(share)} {shown}{verdict}")
    for balancer, members in sorted(readings.pool.items()):
        listed = ", ".join(f"{name} {state}" for name, state in sorted(members.items()))
        lines.append(f"backends behind {balancer}: {listed}")
    if not readings.pool:
        lines.append("backends: no balancer scraped")
    if readings.firing:
        lines.append(f"alerts firing: {len(readings.firing)}")
        for alert in readings.firing:
            where = ", ".join(f"{k}={v}" for k, v in sorted(alert.items()) if k in ("instance", "path", "name"))
            lines.append(
                f"  {alert.get('alertname', '?')} ({alert.get('severity', '?')}){': ' + where if where else ''}"
            )
    else:
        lines.append("alerts firing: none")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/lab.py")
    args = parser.parse_args(argv)
    site = site_from_inventory(load_inventory(args.inventory, cwd=str(REPO)))
    missing = [str(path) for path in login_files(site) if not path.is_file()]
    if missing:
        print(f"status: no {' and no '.join(missing)}: the site's first deploy makes them", file=sys.stderr)
        return 2
    try:
        readings = read(Prometheus(site).query)  # the CA and the password come from the site's state directory
    except (OSError, urllib.error.URLError, RuntimeError) as error:
        print(f"status: cannot read Prometheus at {prometheus_base_url(site)}: {error}", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    title = f"{args.inventory}: Prometheus on {site.topology.monitor_host.name}, {stamp}"
    print(render(readings, [h.name for h in site.topology.hosts], site.latency, title=title))
    print(f"the dashboard: {prometheus_base_url(site)}/consoles/{dashboard.CONSOLE} (user {WEB_USER})")
    return 1 if readings.firing else 0


if __name__ == "__main__":
    sys.exit(main())

"""The appliance's dashboard: one page on the monitor host's Prometheus, in rows by level (the boxes, the model
service, the people's use, the site's state), each panel one PromQL query drawn as bars against the site's own
thresholds.

It is a Prometheus console template (``/consoles/clawlan.html``): Prometheus evaluates the queries and renders the
page itself, so it needs nothing Debian's Prometheus does not ship, fetches nothing from anywhere (no script, no
font, no library: the bars are HTML ``<meter>`` elements) and is served with the same protection as Prometheus'
own UI (HTTPS with the site CA, the monitor password). ``make status`` draws the same panels in a terminal.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

from roles.monitor.alerts import AlertThresholds
from roles.monitor.common import PROMETHEUS_DIR

CONSOLES_DIR = f"{PROMETHEUS_DIR}/consoles"  # Prometheus' console templates (and libraries: none)
CONSOLE = "clawlan.html"  # served at /consoles/clawlan.html
REFRESH_S = 30  # the page asks for itself again this often
WINDOW = "15m"  # the probe's histograms over this window: enough rounds for a p99 that means something
NODE = '{job="node"}'
PROBE = '{job="probe"}'
MODEL = '{job="model_server"}'

Shown = Literal["percent", "seconds", "number", "celsius", "days", "state"]


@dataclass(frozen=True)
class Panel:
    """One query, a bar per series: ``labels`` name the series, ``maximum`` fills the bar, and past ``high`` (or
    under ``low``) the bar turns to a warning: the thresholds the site's alerts use where there is one."""

    title: str
    expr: str
    labels: tuple[str, ...]
    shown: Shown
    maximum: float = 1.0
    high: float | None = None
    low: float | None = None
    state_label: str = ""  # shown: state: the label whose value is the state (HAProxy's server state)
    empty: str = "no data"  # what the panel says when the query has no series

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (path, le) (rate({histogram}_bucket{PROBE}[{WINDOW}])))"


# The queries `make status` draws too (tools/status.py): shares of a whole by box, figures by probe path.
MEMORY_USED = f"1 - node_memory_MemAvailable_bytes{NODE} / node_memory_MemTotal_bytes{NODE}"
GTT_USED = "sum by (instance) (node_drm_memory_gtt_used_bytes) / sum by (instance) (node_drm_memory_gtt_size_bytes > 0)"
SWAP_USED = (
    f"(node_memory_SwapTotal_bytes{NODE} - node_memory_SwapFree_bytes{NODE}) / (node_memory_SwapTotal_bytes{NODE} > 0)"
)
ROOT_FS = '{job="node", mountpoint="/"}'
DISK_USED = f"1 - node_filesystem_avail_bytes{ROOT_FS} / node_filesystem_size_bytes{ROOT_FS}"
TTFT_P99 = _quantile(0.99, "clawlan_probe_time_to_first_token_seconds")
INTER_TOKEN_P99 = _quantile(0.99, "clawlan_probe_inter_token_seconds")
TOKENS_PER_SECOND = f"avg by (path) (clawlan_probe_tokens_per_second{PROBE})"
PROBE_SUCCESS = f"min by (path) (clawlan_probe_success{PROBE})"
FIRING = 'ALERTS{alertstate="firing", alertname!="Watchdog"}'


def pool_members(balancer_proxy: str) -> str:
    """Each balancer's backends, one series each, labelled with its state (HAProxy's exporter: UP, DOWN, MAINT...)."""
    return f'haproxy_server_status{{proxy="{balancer_proxy}"}} == 1'


def rows(thresholds: AlertThresholds, ttft_target_s: float, inter_token_target_s: float) -> tuple[Row, ...]:
    """The dashboard's panels, with the site's alert thresholds and latency targets in place."""
    t = thresholds
    pool = t.balancer_proxy
    floor = t.tokens_per_second_floor
    boxes = Row("The boxes", (
        Panel("memory used", MEMORY_USED, ("instance",), "percent", high=t.memory_used_percent / 100),
        Panel("GPU memory (GTT) used", GTT_USED, ("instance",), "percent", high=t.gpu_memory_percent / 100),
        Panel("swap used", SWAP_USED, ("instance",), "percent", high=0.5),
        Panel("disk / used", DISK_USED, ("instance",), "percent", high=1 - t.disk_free_percent / 100),
        Panel("HugePages reserved", f"node_memory_HugePages_Total{NODE} * node_memory_Hugepagesize_bytes{NODE}"
              f" / node_memory_MemTotal_bytes{NODE}", ("instance",), "percent"),
        Panel("CPU busy", '1 - avg by (instance) (rate(node_cpu_seconds_total{job="node", mode="idle"}[5m]))',
              ("instance",), "percent", high=0.9),
        Panel("hottest sensor", f"max by (instance) (node_hwmon_temp_celsius{NODE})", ("instance",), "celsius",
              maximum=110, high=t.gpu_temperature_celsius),
    ))  # fmt: skip
    service = Row("The model service", (
        Panel("answering (the probe's last round)", PROBE_SUCCESS, ("path",), "state", low=1),
        Panel(f"first token p50 (last {WINDOW})", _quantile(0.5, "clawlan_probe_time_to_first_token_seconds"),
              ("path",), "seconds", maximum=2 * ttft_target_s, high=ttft_target_s),
        Panel(f"first token p99 (last {WINDOW})", TTFT_P99, ("path",), "seconds", maximum=2 * ttft_target_s,
              high=ttft_target_s),
        Panel(f"inter-token p99 (last {WINDOW})", INTER_TOKEN_P99, ("path",), "seconds",
              maximum=2 * inter_token_target_s, high=inter_token_target_s),
        Panel("speed (tokens/s, the probe)", TOKENS_PER_SECOND, ("path",), "number",
              maximum=2 * floor if floor else 100, low=floor or None),
        Panel("backends in the pool", pool_members(pool), ("instance", "server"), "state", state_label="state"),
        Panel("slots busy", f"llamacpp:requests_processing{MODEL}", ("instance",), "number", maximum=8),
        Panel("chats waiting for a slot", f"llamacpp:requests_deferred{MODEL}", ("instance",), "number",
              maximum=8, high=0.5),
        Panel("prompt tokens evaluated (/s, 5 min)", f"rate(llamacpp:prompt_tokens_total{MODEL}[5m])",
              ("instance",), "number", maximum=1000),
        Panel("tokens generated (/s, 5 min)", f"rate(llamacpp:tokens_predicted_total{MODEL}[5m])",
              ("instance",), "number", maximum=100),
        Panel("probe errors (last hour)", f"sum by (path) (increase(clawlan_probe_errors_total{PROBE}[1h]))",
              ("path",), "number", maximum=10, high=0.5, empty="none"),
    ))  # fmt: skip
    use = Row("The people's use", (
        Panel("requests to the model (last hour, the probe's included)",
              f'sum by (instance) (increase(haproxy_backend_http_requests_total{{proxy="{pool}"}}[1h]))',
              ("instance",), "number", maximum=1000),
        Panel("chats refused by the balancer (last hour)",
              f'sum by (instance) (increase(haproxy_backend_http_responses_total{{proxy="{pool}",'
              f' code="5xx"}}[1h]))', ("instance",), "number", maximum=10, high=0.5),
    ))  # fmt: skip
    site = Row("The site", (
        Panel("alerts firing (the Watchdog aside)", FIRING, ("alertname", "instance"), "state",
              state_label="severity", empty="none"),
        Panel("certificates' days left", "min by (instance, file) ((clawlan_certificate_expiry_timestamp_seconds"
              f"{NODE} - time()) / 86400)", ("instance", "file"), "days", maximum=400,
              low=t.certificate_renew_before_days),
        Panel("revocation lists' days left", f"(clawlan_revocation_list_next_update_timestamp_seconds{NODE}"
              " - time()) / 86400", ("instance",), "days", maximum=90, low=7),
        Panel("scrape targets up", "up", ("job", "instance"), "state", low=1),
    ))  # fmt: skip
    return boxes, service, use, site


# Go template pipelines (Prometheus' template functions) that print a sample's value.
_SHOWN = {
    "percent": "{{ .Value | humanizePercentage }}",
    "seconds": "{{ .Value | humanizeDuration }}",
    "number": '{{ printf "%.1f" .Value }}',
    "celsius": '{{ printf "%.0f" .Value }} °C',
    "days": '{{ printf "%.0f" .Value }} days',
}


def _go_string(text: str) -> str:
    """A Go template raw string: PromQL never needs a backquote, so none may appear."""
    if "`" in text:
        raise ValueError(f"a dashboard query holds a backquote: {text!r}")
    return f"`{text}`"


def _value(panel: Panel) -> str:
    if panel.shown != "state":
        return _SHOWN[panel.shown]
    if panel.state_label:
        return f"{{{{ .Labels.{panel.state_label} }}}}"
    return "{{ if eq .Value 1.0 }}yes{{ else }}NO ({{ .Value }}){{ end }}"


def _panel(panel: Panel) -> str:
    names = " ".join(f"{{{{ .Labels.{label} }}}}" for label in panel.labels)
    limits = "".join(
        f' {name}="{value:g}"' for name, value in (("high", panel.high), ("low", panel.low)) if value is not None
    )
    optimum = "" if panel.low is None else f' optimum="{panel.maximum:g}"'
    meter = (
        "" if panel.shown == "state" and panel.state_label
        else f'<meter min="0" max="{panel.maximum:g}"{limits}{optimum} value="{{{{ .Value }}}}"></meter>'
    )  # fmt: skip
    sort = " | ".join(f'sortByLabel "{label}"' for label in reversed(panel.labels))
    return (
        f'<section class="panel" id="{panel.slug}"><h3>{html.escape(panel.title)}</h3>\n'
        f"{{{{ with query {_go_string(panel.expr)} }}}}"
        f"{{{{ range . | {sort} }}}}\n"
        f'<div class="series"><span class="who" title="{names}">{names}</span>{meter}'
        f'<span class="value">{_value(panel)}</span></div>'
        "{{ end }}{{ else }}\n"
        f'<div class="nodata">{html.escape(panel.empty)}</div>{{{{ end }}}}\n'
        "</section>\n"
    )


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1em 2em; color: #222; }
h2 { border-bottom: 1px solid #ccc; margin-top: 1.5em; }
.row { display: flex; flex-wrap: wrap; gap: 1em 2em; }
.panel { min-width: 24em; }
.panel h3 { font-size: 14px; margin: 0.6em 0 0.3em; }
.series { display: flex; gap: 0.6em; align-items: center; }
.who { width: 14em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: #555; }
meter { width: 12em; height: 1.1em; }
.nodata { color: #999; font-style: italic; }
"""


def console_page(panel_rows: tuple[Row, ...], site_name: str) -> str:
    """The console template Prometheus serves: a page that refreshes itself, its queries evaluated on each load."""
    body = "".join(
        f'<h2>{html.escape(row.title)}</h2>\n<div class="row">\n' + "".join(_panel(p) for p in row.panels) + "</div>\n"
        for row in panel_rows
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="{REFRESH_S}">\n'
        f"<title>{html.escape(site_name)}</title>\n<style>{STYLE}</style></head>\n<body>\n"
        f"<h1>{html.escape(site_name)}</h1>\n"
        '<p>Rendered by Prometheus at {{ with query "time()" }}{{ . | first | value | humanizeTimestamp }}{{ end }};'
        f" it refreshes every {REFRESH_S} s. Bars turn amber or red past the thresholds the site's alerts use.</p>\n"
        f"{body}</body></html>\n"
    )

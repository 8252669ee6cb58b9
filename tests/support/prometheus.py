"""Prometheus' and Alertmanager's HTTP APIs on a site's monitor host, as the e2e and compliance suites read them: HTTPS
checked against the site CA, and the password a person uses (``site_state_dir/secrets/monitor-password``)."""

from __future__ import annotations

import html
import json
import re
import ssl
import urllib.parse
import urllib.request

from roles.site.monitor_api import login, prometheus_base_url

_logins: dict[str, tuple[ssl.SSLContext, str]] = {}  # base URL -> how to reach it


def _register(site, base_url: str) -> str:
    _logins[base_url] = login(site)
    return base_url


def prometheus_url(site) -> str:
    return _register(site, prometheus_base_url(site))


def alertmanager_url(site) -> str:
    return _register(site, f"https://{site.topology.monitor_host.address}:{site.monitor.alertmanager_port}")


def open_url(url: str, *, data: bytes | None = None, login: bool = True, timeout: float = 10, method: str | None = None,
             **headers: str):  # fmt: skip
    """urlopen for a URL under a registered base: the site CA's context, and the password unless ``login`` is
    False. Other URLs are opened as they are."""
    base = next((base for base in _logins if url.startswith(base)), None)
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    if base is None:
        return urllib.request.urlopen(request, timeout=timeout)
    context, authorization = _logins[base]
    if login:
        request.add_header("Authorization", authorization)
    return urllib.request.urlopen(request, timeout=timeout, context=context)


def api(base_url: str, path: str, **params):
    """The ``data`` of ``/api/v1/<path>``; an answer that is not "success" fails the caller."""
    url = f"{base_url}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with open_url(url) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def alertmanager_alerts(site, alertname: str | None = None) -> list[dict]:
    """The alerts Alertmanager holds now (its v2 API), optionally one alert's only."""
    query = "?" + urllib.parse.urlencode({"filter": f'alertname="{alertname}"'}) if alertname else ""
    with open_url(f"{alertmanager_url(site)}/api/v2/alerts{query}") as response:
        return json.load(response)


def query(prometheus, expr) -> dict[tuple, float]:
    """An instant query's result as {sorted label pairs (without __name__): value}."""
    return {
        tuple(sorted((k, v) for k, v in sample["metric"].items() if k != "__name__")): float(sample["value"][1])
        for sample in api(prometheus, "query", query=expr)["result"]
    }


def alert_states(prometheus, name) -> dict[str, str]:
    """path (or instance) label -> state of every active alert called ``name``."""
    return {
        alert["labels"].get("path", alert["labels"].get("instance", "")): alert["state"]
        for alert in api(prometheus, "alerts")["alerts"]
        if alert["labels"]["alertname"] == name
    }


def dashboard_panels(site) -> dict[str, list[tuple[str, str]] | str]:
    """The dashboard as Prometheus renders it now: each panel's id -> its series as (who, value), or the text it shows
    for none. A page Prometheus cannot render fails the caller (HTTP 500)."""
    from roles.monitor.dashboard import CONSOLE

    with open_url(f"{prometheus_url(site)}/consoles/{CONSOLE}") as response:
        page = response.read().decode()
    panels: dict[str, list[tuple[str, str]] | str] = {}
    for slug, body in re.findall(r'<section class="panel" id="([^"]+)">(.*?)</section>', page, re.S):
        series = re.findall(r'<span class="who"[^>]*>(.*?)</span>.*?<span class="value">(.*?)</span>', body, re.S)
        empty = re.search(r'<div class="nodata">(.*?)</div>', body)
        panels[slug] = [(html.unescape(w).strip(), html.unescape(v).strip()) for w, v in series] or (
            empty.group(1) if empty else "?"
        )
    return panels

"""Prometheus' HTTP API on a site's monitor host, as the e2e and compliance suites read it."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request


def prometheus_url(site) -> str:
    return f"http://{site.monitor_host().address}:{site.monitor.prometheus_port}"


def api(base_url: str, path: str, **params):
    """The ``data`` of ``/api/v1/<path>``; an answer that is not "success" fails the caller."""
    url = f"{base_url}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def alertmanager_url(site) -> str:
    return f"http://{site.monitor_host().address}:{site.monitor.alertmanager_port}"


def alertmanager_alerts(site, alertname: str | None = None) -> list[dict]:
    """The alerts Alertmanager holds now (its v2 API), optionally one alert's only."""
    query = "?" + urllib.parse.urlencode({"filter": f'alertname="{alertname}"'}) if alertname else ""
    with urllib.request.urlopen(f"{alertmanager_url(site)}/api/v2/alerts{query}", timeout=10) as response:
        return json.load(response)

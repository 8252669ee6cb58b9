"""The monitor host's Prometheus as the control machine reads it: HTTPS checked against the site CA, and the password
a person uses (``site_state_dir/secrets/monitor-password``). `make status` and the test suites share it."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from roles.monitor.common import WEB_USER


def login_files(site) -> tuple[Path, Path]:
    """The site CA's certificate and the monitor password, on the control machine: made by the first deploy."""
    return site.control.state_dir / "pki" / "ca.crt", site.control.monitor_web_password_file


def login(site) -> tuple[ssl.SSLContext, str]:
    """The TLS context (the site CA) and the Authorization header value for the monitor's web services."""
    ca, password_file = login_files(site)
    context = ssl.create_default_context(cafile=str(ca))
    password = password_file.read_text().strip()
    return context, "Basic " + base64.b64encode(f"{WEB_USER}:{password}".encode()).decode()


def prometheus_base_url(site) -> str:
    return f"https://{site.topology.monitor_host.address}:{site.monitor.prometheus_port}"


class Prometheus:
    """Instant queries against the site's Prometheus."""

    def __init__(self, site, timeout_s: float = 10):
        self.base_url = prometheus_base_url(site)
        self.context, self.authorization = login(site)
        self.timeout_s = timeout_s

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector: ``[{"metric": {label: value}, "value": [time, "number"]}, ...]``."""
        url = f"{self.base_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        request = urllib.request.Request(url, headers={"Authorization": self.authorization})
        with urllib.request.urlopen(request, timeout=self.timeout_s, context=self.context) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus refused {promql!r}: {body}")
        return body["data"]["result"]

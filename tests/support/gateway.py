"""The gateway as a person's laptop on the lab's LAN reaches it: HTTPS checked against the lab's site CA, the token as a
bearer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.support.tls import lab_site, site_tls


def request(url, body=None, token=None, timeout=240):
    """(status, body text) of a request from this machine, the lab's "laptop"."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data, headers), timeout=timeout, context=site_tls(lab_site())
        ) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def chat(gateway_url, token, text="hello from the laptop"):
    body = {"model": "openclaw", "messages": [{"role": "user", "content": text}]}
    return request(f"{gateway_url}/v1/chat/completions", body, token)

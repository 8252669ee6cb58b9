"""A real browser on a page of the site: Debian's Chromium, headless, loading it through a relay on loopback that
logs in (the site CA and the monitor password, as tests/support/prometheus.py does), so no password is on a command
line and Chromium trusts nothing it should not."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.prometheus import open_url

CHROMIUM = "/usr/bin/chromium"
# As the machine's own Chromium check starts it: no sandbox as root, and nothing that reaches for the internet.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--window-size=1400,1400")  # fmt: skip


def _relay(origin: str) -> ThreadingHTTPServer:
    """GETs on 127.0.0.1 relayed to ``origin`` (a registered base URL of tests/support/prometheus.py)."""

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            try:
                response = open_url(origin + self.path)
            except urllib.error.HTTPError as error:  # Chromium's own /favicon.ico, say
                self.send_error(error.code)
                return
            with response:
                body = response.read()
                self.send_response(response.status)
                self.send_header("Content-Type", response.headers.get("Content-Type", "text/html"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def screenshot_through_loopback(url: str, png: Path, timeout_s: float = 60) -> str:
    """Chromium loads ``url`` (through the relay) and saves a screenshot to ``png``; the DOM it built is returned."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no {CHROMIUM}: `make test` installs Debian's chromium package")
    parts = urllib.parse.urlsplit(url)
    relay = _relay(f"{parts.scheme}://{parts.netloc}")
    local = f"http://127.0.0.1:{relay.server_address[1]}{parts.path}"
    png.parent.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="clawlan-chromium-")
    try:
        common = (CHROMIUM, *FLAGS, f"--user-data-dir={profile}")
        shot = subprocess.run([*common, f"--screenshot={png}", local], capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)  # fmt: skip
        assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
        dom = subprocess.run([*common, "--dump-dom", local], capture_output=True, text=True, timeout=timeout_s,
                             stdin=subprocess.DEVNULL)  # fmt: skip
        assert dom.returncode == 0, dom.stderr[-2000:]
        return dom.stdout
    finally:
        relay.shutdown()
        shutil.rmtree(profile, ignore_errors=True)

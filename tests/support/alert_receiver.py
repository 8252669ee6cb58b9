"""A webhook receiver for Alertmanager, on an address of the lab network this machine holds: it records every
notification, as a person's phone would receive it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AlertReceiver:
    def __init__(self, address: str, port: int):
        self.notifications: list[tuple[float, dict]] = []  # (monotonic time received, Alertmanager's JSON)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with receiver._lock:
                    receiver.notifications.append((time.monotonic(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AlertReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, since: float = 0.0) -> list[tuple[float, str, str, dict]]:
        """Every alert notified after ``since``: (time, status "firing"/"resolved", alertname, its labels)."""
        with self._lock:
            return [
                (at, alert["status"], alert["labels"].get("alertname", ""), alert["labels"])
                for at, body in self.notifications
                if at > since
                for alert in body.get("alerts", [])
            ]

    def wait_for(self, alertname: str, status: str, since: float, timeout_s: float, **labels: str) -> float:
        """Seconds from ``since`` until ``alertname`` arrived with ``status`` (and ``labels``); fails after timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, got, name, got_labels in self.alerts(since):
                if name == alertname and got == status and all(got_labels.get(k) == v for k, v in labels.items()):
                    return at - since
            time.sleep(0.5)
        seen = [(got, name) for _, got, name, _ in self.alerts(since)]
        raise AssertionError(f"{alertname} {status} did not reach the receiver within {timeout_s:.0f} s: {seen}")

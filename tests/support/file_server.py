"""A small HTTP file server with byte ranges and a rate limit, bound to an address the test chooses.

Stands in for the NAS or mirror a site downloads its model from: a whole-file transfer is slow enough that a test
can interrupt it midway, a resumed one (a Range request) runs at full speed, and every Range header is recorded so a
test can prove a resume.
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FileServer:
    def __init__(self, address: str, files: dict[str, Path], bytes_per_second: int = 64 * 1024):
        self.files = files
        self.bytes_per_second = bytes_per_second
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                path = server.files.get(self.path)
                if path is None:
                    self.send_error(404)
                    return
                data = path.read_bytes()
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = 0
                if header:
                    match = re.fullmatch(r"bytes=(\d+)-", header)
                    start = int(match.group(1)) if match else 0
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                chunk = max(1024, server.bytes_per_second // 10)
                try:
                    for offset in range(start, len(data), chunk):
                        self.wfile.write(data[offset : offset + chunk])
                        if not header:
                            time.sleep(chunk / server.bytes_per_second)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

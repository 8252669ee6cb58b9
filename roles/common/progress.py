"""Progress of the long steps, printed while they run: pyinfra shows nothing between an operation's start and its
end, and a compile of several minutes or a model of ~45 GiB on its way looks the same as a hung one.

A long command runs as a FunctionCommand that prints, every ``every_s`` seconds, how long it has been running (and,
for a transfer, how much has arrived, the rate and the time left), and at the end how long it took. The command runs
as the operation would run it (the host's sudo), and a failure shows its output and fails the operation, as pyinfra's
own commands do.
"""

from __future__ import annotations

import time
from shlex import quote
from typing import IO, Any

import gevent
from pyinfra import logger
from pyinfra.api import FunctionCommand, StringCommand
from pyinfra.api.util import print_host_combined_output

from roles.common.connection import sudo_arguments

EVERY_S = 30.0
MIB = 2**20


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def amount(done: int, total: int | None, approximate: bool = False) -> str:
    """Bytes as a person reads them, with the share of the total when it is known (``approximate``: declared)."""
    unit, scale = ("GiB", 2**30) if (total or done) >= 2**30 else ("MiB", MIB)
    if not total:
        return f"{done / scale:.1f} {unit}"
    about = "about " if approximate else ""
    return f"{done / scale:.1f} of {about}{total / scale:.1f} {unit} ({100 * done / total:.0f} %)"


def transfer_line(done: int, total: int | None, rate: float, approximate: bool = False) -> str:
    """'12.3 of 45.6 GiB (27 %), 110 MiB/s, about 5 min 10 s left' (``rate`` in bytes per second)."""
    line = f"{amount(done, total, approximate)}, {rate / MIB:.0f} MiB/s"
    if total and rate > 0 and done < total:
        line += f", about {duration((total - done) / rate)} left"
    return line


def phase(label: str, command: str, every_s: float = EVERY_S) -> FunctionCommand:
    """``command`` run on the host, with '<label>: running for N min' every ``every_s`` seconds."""
    return FunctionCommand(_run, (label, command, every_s, None), {})


def download(label: str, command: str, partial: str, total_bytes: int | None, every_s: float = EVERY_S):
    """``command`` writing ``partial`` on the host (a download), with its size, rate and time left as it grows
    (``total_bytes``: the size the inventory declares, so an estimate)."""
    return FunctionCommand(_run, (label, command, every_s, (partial, total_bytes)), {})


def _say(host, text: str) -> None:
    logger.info(f"{host.print_prefix}{text}")


def _remote_size(host, path: str) -> int:
    ok, output = host.run_shell_command(StringCommand(f"stat -c %s {quote(path)} 2>/dev/null || echo 0"),
                                        **sudo_arguments(host))  # fmt: skip
    lines = output.stdout_lines if ok else []
    return int(lines[-1]) if lines and lines[-1].strip().isdigit() else 0


def _tick(host, label: str, started: float, every_s: float, watched) -> None:
    partial, total = watched or (None, None)
    start_size = _remote_size(host, partial) if partial else 0  # a resumed download starts part way
    while True:
        gevent.sleep(every_s)
        seconds = time.monotonic() - started
        if partial is None:
            _say(host, f"{label}: running for {duration(seconds)}")
        else:
            size = _remote_size(host, partial)
            _say(host, f"{label}: {transfer_line(size, total, (size - start_size) / seconds, approximate=True)}")


def _run(state, host, label: str, command: str, every_s: float, watched) -> bool:
    started = time.monotonic()
    _say(host, f"{label}: started")
    ticker = gevent.spawn(_tick, host, label, started, every_s, watched)
    try:
        ok, output = host.run_shell_command(StringCommand(command), **sudo_arguments(host))
    finally:
        ticker.kill()
    took = duration(time.monotonic() - started)
    if not ok:
        # As pyinfra reports a failed command of its own: its output, then the operation fails (no traceback).
        print_host_combined_output(host, output)
        _say(host, f"{label}: failed after {took}")
        return False
    _say(host, f"{label}: done in {took}")
    return True


class ProgressReader:
    """A local file read for an upload, saying every ``every_s`` seconds how much has gone, the rate and the time
    left (pyinfra's SFTP reads it in chunks; each retry seeks back to the start)."""

    def __init__(self, host, label: str, path: str, every_s: float = EVERY_S):
        self.host, self.label, self.every_s = host, label, every_s
        self.file: IO[bytes] = open(path, "rb")  # noqa: SIM115 (closed with the reader, by the upload)
        self.total = self.file.seek(0, 2)
        self.file.seek(0)
        self.started = self.last = time.monotonic()

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0:
            self.started = self.last = time.monotonic()
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        now = time.monotonic()
        done = self.file.tell()
        if now - self.last >= self.every_s or (not chunk and done == self.total):
            self.last = now
            if chunk:
                rate = done / (now - self.started) if now > self.started else 0.0
                _say(self.host, f"{self.label}: {transfer_line(done, self.total, rate)}")
            else:
                _say(self.host, f"{self.label}: {amount(done, None)} sent in {duration(now - self.started)}")
                self.last = float("inf")  # said once
        return chunk

    def close(self) -> None:
        self.file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)

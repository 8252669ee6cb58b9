"""One deploy of a site at a time: the second is refused at once, naming who holds the site."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from pyinfra.api.exceptions import PyinfraError

from deploys import _site


def holder(path) -> subprocess.Popen:
    """Another deploy: a process holding the lock until its stdin closes."""
    program = (
        "import fcntl, sys; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
        "f.write('pid 4242 on laptop, since 2026-11-24 10:00:00 UTC'); f.flush(); print('held', flush=True); "
        "sys.stdin.read()"
    )
    process = subprocess.Popen([sys.executable, "-c", program, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_deploy_is_refused_at_once_naming_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr(_site, "_held", {})
    site = SimpleNamespace(control=SimpleNamespace(state_dir=tmp_path))
    first = holder(tmp_path / "deploy.lock")
    try:
        started = time.monotonic()
        with pytest.raises(PyinfraError, match="another deploy of this site is running .pid 4242 on laptop"):
            _site._hold_the_site_lock(site)
        assert time.monotonic() - started < 1  # refused, not queued
    finally:
        first.communicate("")
    _site._hold_the_site_lock(site)  # once the first ended (or was killed), the next deploy runs
    _site._hold_the_site_lock(site)  # and each host's deploy file in that run finds it held already
    assert "pid" in (tmp_path / "deploy.lock").read_text()
    _site._held.pop(str(tmp_path / "deploy.lock")).close()

"""Prometheus' own checker, for the unit tests of the rules and configuration the monitor role writes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def promtool() -> Path:
    """The promtool `make venv` extracts into the virtualenv (from Debian's .deb), else one on PATH."""
    candidate = Path(sys.prefix) / "bin" / "promtool"
    if candidate.is_file():
        return candidate
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            f"promtool not found in {candidate.parent} or on PATH: `make venv` installs it (from Debian's .deb)"
        )
    return Path(found)


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, check=False)

"""A lighter systemd operation for units that only need to be enabled at boot."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation


class UnitFileState(FactBase):
    """``systemctl is-enabled`` for one unit: "enabled", "disabled", "static", ... or "not-found"."""

    def command(self, unit: str) -> str:
        return f"systemctl is-enabled {shlex.quote(unit)} 2>/dev/null || true"

    def process(self, output):
        return output[0].strip() if output else "not-found"


@operation()
def unit_enabled(unit: str, daemon_reload: bool = False):
    """Enable ``unit`` at boot without starting it; one ``systemctl is-enabled`` instead of two
    ``systemctl show --all`` facts, which matters on a no-op re-run."""
    if daemon_reload:
        yield "systemctl daemon-reload"
    if host.get_fact(UnitFileState, unit=unit) not in ("enabled", "static"):
        yield f"systemctl enable {shlex.quote(unit)}"
    elif not daemon_reload:
        host.noop(f"{unit} is enabled")

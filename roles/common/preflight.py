"""A role's preflight: the rules across its own settings, and the host groups they hold on, declared by the role.

The inventory check runs each declared preflight on every host of its groups before any host is touched, so which
rules run where is said once, beside the rules. Rules that read two roles' settings (a host's memory budget) or
every host at once are the inventory's own (roles/inventory/rules.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from roles.common.names import HostSpec
from roles.common.settings import Problem


@dataclass(frozen=True)
class Preflight:
    prefix: str  # whose settings it checks: the inventory key prefix of the role
    groups: tuple[str, ...]  # the host groups it runs on
    check: Callable[[Any, HostSpec], list[Problem]]  # (the role's settings, the host) -> what is wrong

"""Package installation that stays quiet on a converged host."""

from __future__ import annotations

from pyinfra.operations import apt


def install_packages(name: str, packages: list[str], installed: frozenset[str]):
    # Refresh the package lists only when something is missing, so a converged host reports no change.
    return apt.packages(name=name, packages=packages, update=not set(packages) <= installed, cache_time=3600)

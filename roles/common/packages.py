"""Package installation that stays quiet on a converged host."""

from __future__ import annotations

from pyinfra.operations import apt


def install_packages(name: str, packages: list[str], installed: frozenset[str], no_recommends: bool = False):
    """apt.packages, only when something is missing: on a converged host the operation (and its dpkg
    query, run twice by pyinfra) is skipped, which keeps a no-op re-run fast."""
    if set(packages) <= installed:
        return None
    return apt.packages(name=name, packages=packages, update=True, cache_time=3600, no_recommends=no_recommends)

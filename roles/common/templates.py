"""Rendering of the files under templates/<role>/, shared by the deploys and the unit tests."""

from __future__ import annotations

from functools import cache
from io import StringIO
from pathlib import Path

import jinja2

from roles.common.hardening import sandbox

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty line in a config
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["sandbox"] = sandbox  # the hardening every unit starts from (roles/common/hardening.py)
    return environment


def render(name: str, **context) -> str:
    return _environment().get_template(name).render(**context)


def rendered(name: str, **context) -> StringIO:
    """A template rendered into a file object, for files.put (which compares checksums, so re-runs are no-ops)."""
    return StringIO(render(name, **context))

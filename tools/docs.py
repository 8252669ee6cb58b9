"""The generated tables in README.md and the pages under docs/, and the reference pages under docs/, each made from
the one place its facts live.

    python -m tools.docs            rewrite the tables and the pages (make docs)
    python -m tools.docs --check    exit 1, naming the tables and pages, when they differ from what this makes

Settings tables come from the settings classes (each default and its reason is written once, there); the alert
index and docs/alerts.md from the alert rules' data (roles/monitor/alerts); the decode floors from their table
(roles/model_server/decode_floors.py).

A table sits between ``<!-- settings:PREFIX -->`` and ``<!-- /settings:PREFIX -->``, in one of DOCUMENTS (PREFIX as in
roles.inventory.schema.SETTINGS, ``host`` for the per-host keys, or ``controls`` for the compliance suite's controls);
what is between the markers is replaced whole.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from roles.common import connection
from roles.common.names import ROLE_GROUPS
from roles.common.settings import every_key_site_wide, is_site_wide
from roles.common.values.core import ValueType
from roles.inventory.schema import HOST_KEYS, HOST_VALUES, SETTINGS, SSH_PORT
from roles.model_server.decode_floors import DECODE_FLOORS
from roles.monitor.settings import ALERT_FLOOR_PERCENT
from roles.site.exposure import SERVICES, Box
from roles.site.settings import HostSettings
from tools import alert_reference

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# Whole pages, written from data: path under the repository -> what belongs there.
PAGES = {alert_reference.PAGE: alert_reference.page}
# Where generated tables may sit, between their markers: README and every page under docs/ but the whole pages.
DOCUMENTS = (README, *sorted(p for p in (REPO / "docs").glob("*.md") if str(p.relative_to(REPO)) not in PAGES))
HOST = "host"
CONTROLS = "controls"
PYINFRA = "pyinfra"
TYPES = "types"
ALERTS = "alerts"
DECODE_FLOORS_SECTION = "decode_floors"
SERVED = "served"


def literal(value: Any) -> str:
    """A value as one writes it in a Python inventory file."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table(prefix: str) -> str:
    cls = SETTINGS[prefix]
    marked = not every_key_site_wide(cls)  # the odd site-wide key is marked; a site-wide class is said once, below
    lines = ["| key | default | accepts | meaning |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        meaning = field.metadata["doc"] + (" (site-wide)" if marked and is_site_wide(cls, field) else "")
        cells = [f"`{prefix}_{field.name}`", f"`{literal(default)}`", field.metadata["check"].describe, meaning]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if not marked:
        lines += ["", f"Every `{prefix}_*` key is site-wide: the same on every host."]
    return "\n".join(lines)


def host_table() -> str:
    lines = ["| key | accepts | meaning |", "| --- | --- | --- |"]
    for key, meaning in HOST_KEYS.items():
        lines.append(f"| `{key}` | {_cell(HOST_VALUES[key].describe)} | {_cell(meaning)} |")
    return "\n".join(lines)


def pyinfra_table() -> str:
    """pyinfra's own keys that an inventory may set, and what each accepts (roles.common.connection)."""
    lines = ["| key | accepts |", "| --- | --- |"]
    for key, value_type in connection.VALUE_TYPES.items():
        lines.append(f"| `{key}` | {_cell(value_type.describe)} |")
    return "\n".join(lines)


def _value_types(value_type) -> list[Any]:
    """``value_type`` and the value types it is made of (a list's items, a mapping's keys and values, ...)."""
    parts = [value_type]
    for name in ("item", "keys", "values", "inner"):
        if isinstance(getattr(value_type, name, None), ValueType):
            parts += _value_types(getattr(value_type, name))
    for arm in getattr(value_type, "arms", ()):
        parts += _value_types(arm)
    return parts


def types_table() -> str:
    """Every kind of value an inventory holds: what it is (its class's docstring) and the keys that take it."""
    used: dict[type, list[str]] = {}
    checks = {f"{prefix}_{f.name}": f.metadata["check"] for prefix, cls in SETTINGS.items()
              for f in dataclasses.fields(cls)} | dict(HOST_VALUES) | dict(connection.VALUE_TYPES)  # fmt: skip
    for key, check in checks.items():
        for part in _value_types(check):
            if key not in used.setdefault(type(part), []):
                used[type(part)].append(key)
    lines = ["| type | accepts, and so refuses everything else | keys |", "| --- | --- | --- |"]
    for kind, keys in sorted(used.items(), key=lambda item: item[0].__name__):
        what = " ".join((kind.__doc__ or "").split("\n\n")[0].split())
        shown_keys = ", ".join(f"`{key}`" for key in keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
        lines.append(f"| `{kind.__name__}` | {_cell(what)} | {shown_keys} |")
    return "\n".join(lines)


def served_table() -> str:
    """What each box serves (roles/site/exposure.SERVICES): the firewall, the port check and NET-01 read the same."""
    own = HostSettings(**{prefix: cls() for prefix, cls in SETTINGS.items()})
    lines = ["| box | service | port (default) | listens on | admitted from |", "| --- | --- | --- | --- | --- |"]
    for service in SERVICES:
        port = service.port(Box(own, SSH_PORT))
        lines.append(
            f"| {service.boxes} | {_cell(service.what)} | `{service.key}` ({port}) | {service.listens} |"
            f" {service.admits} |"
        )
    return "\n".join(lines)


def decode_floors_table() -> str:
    """The decode floor of each device class (roles/model_server/decode_floors.py), and what follows from it."""
    lines = [
        "| device class | floor, tokens/s | from, tokens/s | below it by | where the number comes from |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, floor in DECODE_FLOORS.items():
        cells = [
            f"`{name}`",
            "none (0)" if floor.tokens_per_second is None else f"{floor.tokens_per_second:g}",
            "—" if floor.from_tokens_per_second is None else f"{floor.from_tokens_per_second:g}",
            "—" if floor.margin_percent is None else f"{floor.margin_percent} %",
            floor.source,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "`latency_tokens_per_second: \"auto\"` (the default): the lowest floor among the site's backends' classes, "
        'none if any class has none; `monitor_alert_tokens_per_second_floor: "auto"`: '
        f"{ALERT_FLOOR_PERCENT} % of the site's `latency_tokens_per_second`. An inventory value wins over either.",
    ]
    return "\n".join(lines)


def controls() -> list[Any]:
    """The compliance suite's controls (tests/compliance/test_*.py), in ID order."""
    if str(REPO) not in sys.path:  # tests/ is no installed package: run as a script, import it from the checkout
        sys.path.insert(0, str(REPO))
    found = []
    for path in sorted((REPO / "tests" / "compliance").glob("test_*.py")):
        module = importlib.import_module(f"tests.compliance.{path.stem}")
        for value in vars(module).values():
            found += [mark.args[0] for mark in getattr(value, "pytestmark", ()) if mark.name == "control"]
    family_and_number = lambda control: (control.id.rsplit("-", 1)[0], int(control.id.rsplit("-", 1)[1]))  # noqa: E731
    return sorted(found, key=family_and_number)


def controls_table() -> str:
    lines = ["| control | title | hosts | impact |", "| --- | --- | --- | --- |"]
    for control in controls():
        hosts = "every host" if set(control.roles) == set(ROLE_GROUPS) else ", ".join(control.roles)
        lines.append(f"| {control.id} | {_cell(control.title)} | {hosts} | {control.impact:.1f} |")
    return "\n".join(lines)


def sections() -> dict[str, str]:
    """Section name -> what belongs between its markers."""
    tables = {prefix: settings_table(prefix) for prefix in SETTINGS} | {
        HOST: host_table(),
        PYINFRA: pyinfra_table(),
        TYPES: types_table(),
        CONTROLS: controls_table(),
        ALERTS: alert_reference.index_table(),
        DECODE_FLOORS_SECTION: decode_floors_table(),
        SERVED: served_table(),
    }
    return {name: f"\n{table}\n\n" for name, table in tables.items()}


def _marker(name: str) -> re.Pattern[str]:
    name = re.escape(name)
    return re.compile(rf"(<!-- settings:{name} -->\n)(.*?)(<!-- /settings:{name} -->)", re.DOTALL)


def section_in(text: str, name: str) -> str | None:
    """What ``text`` has between the markers of section ``name``; None without the markers."""
    match = _marker(name).search(text)
    return match.group(2) if match else None


def homes() -> dict[str, Path]:
    """Section name -> the document holding its markers (README.md or a page under docs/); a section in none is
    an error: its table would silently vanish."""
    texts = {path: path.read_text() for path in DOCUMENTS}
    found = {}
    for name in sections():
        holders = [path for path, text in texts.items() if section_in(text, name) is not None]
        if len(holders) != 1:
            where = ", ".join(p.name for p in holders) or "none of " + ", ".join(p.name for p in DOCUMENTS)
            raise SystemExit(f"<!-- settings:{name} --> markers must be in one document, found in {where}")
        found[name] = holders[0]
    return found


def out_of_date(text: str) -> list[str]:
    """The sections whose markers ``text`` holds, whose tables differ from what this makes."""
    return [name for name, body in sections().items() if section_in(text, name) not in (None, body)]


def stale_pages() -> list[str]:
    return [page for page, make in PAGES.items() if not (REPO / page).is_file() or (REPO / page).read_text() != make()]


def update(text: str) -> str:
    """``text`` with each section whose markers it holds rewritten."""
    for name, body in sections().items():
        if section_in(text, name) is not None:
            text = _marker(name).sub(lambda m, body=body: m.group(1) + body + m.group(3), text, count=1)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the documents are up to date")
    args = parser.parse_args(argv)
    homes()  # every section has its one place
    stale_documents = {path: out_of_date(path.read_text()) for path in DOCUMENTS}
    if args.check:
        pages = stale_pages()
        for path, stale in stale_documents.items():
            if stale:
                print(
                    f"{path.relative_to(REPO)} is out of date in: {', '.join(stale)} (run make docs)", file=sys.stderr
                )
        if pages:
            print(f"out of date: {', '.join(pages)} (run make docs)", file=sys.stderr)
        return 1 if any(stale_documents.values()) or pages else 0
    for path in DOCUMENTS:
        text = path.read_text()
        new = update(text)
        if new != text:
            path.write_text(new)
            print(f"{path.relative_to(REPO)}: settings tables rewritten")
    for page in stale_pages():
        (REPO / page).parent.mkdir(parents=True, exist_ok=True)
        (REPO / page).write_text(PAGES[page]())
        print(f"{page}: rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())

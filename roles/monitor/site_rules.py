"""A site's own Prometheus rules file, loaded beside clawlan's.

The inventory names a file on the control machine (``monitor_rules_file``). Its shape is checked here before any
host is touched; Prometheus' own checker (promtool, on the monitor host) then judges every expression before the
file replaces the live one, so a file it refuses leaves Prometheus with the rules it had.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from roles.common.values.core import shown
from roles.monitor.alerts import WATCHDOG
from roles.monitor.rules import GROUP_PREFIX

FILE_NAME = "site.rules.yml"  # beside clawlan.rules.yml in Prometheus' configuration directory
MAX_BYTES = 1 << 20
# clawlan's alert names: a site's alert of the same name would be inhibited, routed and documented as ours.
OUR_ALERTS = ("Clawlan", WATCHDOG)


def read(path: str) -> str:
    return Path(path).expanduser().read_text(encoding="utf-8")


def problem(path: str) -> str | None:
    """Why the file at ``path`` cannot be a rules file next to ours, in one line; None when it can."""
    file = Path(path).expanduser()
    try:
        if file.stat().st_size > MAX_BYTES:
            return f"{shown(path)} is over {MAX_BYTES // 1024} KiB: not a rules file"
        text = read(path)
    except FileNotFoundError:
        return f"{shown(path)} does not exist on the control machine"
    except (OSError, UnicodeDecodeError) as error:
        return f"{shown(path)} cannot be read as UTF-8 text: {type(error).__name__}"
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        return f"{shown(path)} is not YAML" + (f" (line {where.line + 1})" if where else "")
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not groups:
        return f"{shown(path)} needs a list of rule groups under groups:, as Prometheus' rule files have"
    for index, group in enumerate(groups, 1):
        name = group.get("name") if isinstance(group, dict) else None
        if not isinstance(name, str) or not name or not isinstance(group.get("rules"), list):
            return f"{shown(path)}: group {index} needs a name and a list of rules"
        if name.startswith(GROUP_PREFIX):
            return f"{shown(path)}: group {shown(name)} starts with {GROUP_PREFIX}, which names clawlan's own groups"
        for rule in group["rules"]:
            if not isinstance(rule, dict) or not isinstance(rule.get("expr"), (str, int, float)):
                return f"{shown(path)}: every rule of group {shown(name)} needs an expr"
            if not isinstance(rule.get("alert", rule.get("record")), str):
                return f"{shown(path)}: every rule of group {shown(name)} needs an alert: or record: name"
            if str(rule.get("alert", "")).startswith(OUR_ALERTS):
                return f"{shown(path)}: alert {shown(rule['alert'])} has a name clawlan's alerts have; choose another"
    return None

"""A site's own rules file (monitor_rules_file): refused before any host is touched when it cannot be one, else
listed beside clawlan's rules in the configuration promtool checks."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from roles.common.settings import InventoryError
from roles.inventory.load import build_site
from roles.monitor import site_rules
from roles.monitor.prometheus import prometheus_yml_text
from roles.monitor.rules import render_rules
from tests.support.promtool import promtool
from tests.support.sites import good_hosts, on_both_hosts

SITE_RULES = """\
groups:
  - name: home
    rules:
      - record: home:memory_available:ratio
        expr: node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes
      - alert: HomeNasUnreachable
        expr: up{job="nas"} == 0
        for: 5m
        labels: {severity: warning}
        annotations: {summary: "The NAS does not answer"}
"""


def written(tmp_path: Path, text: str, name: str = "home.rules.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def problems(path: str) -> set[tuple[str, str, str]]:
    with pytest.raises(InventoryError) as refused:
        build_site(on_both_hosts("monitor_rules_file", path))
    return {(p.host, p.key, p.message) for p in refused.value.problems}


def test_a_good_file_is_named_in_prometheus_configuration_and_passes_promtool(tmp_path):
    path = written(tmp_path, SITE_RULES)
    site = build_site(on_both_hosts("monitor_rules_file", path))
    config = site.prometheus_config()
    assert config.settings.rules_file == path and site_rules.read(path) == SITE_RULES
    text = prometheus_yml_text(config, "front")
    assert "rule_files:\n  - clawlan.rules.yml\n  # The site's own (monitor_rules_file).\n  - site.rules.yml\n" in text
    staged = tmp_path / "staged"
    staged.mkdir()
    for name in ("ca.crt", "monitor.crt", "monitor.key", "web-password"):
        (staged / name).write_text("x\n")
    text = text.replace("/etc/clawlan/pki/", f"{staged}/").replace("/etc/clawlan/prometheus/", f"{staged}/")
    (staged / "prometheus.yml").write_text(text)
    (staged / "clawlan.rules.yml").write_text(render_rules(config.thresholds))
    (staged / site_rules.FILE_NAME).write_text(SITE_RULES)
    result = subprocess.run([promtool(), "check", "config", str(staged / "prometheus.yml")],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout + result.stderr


def test_without_one_only_clawlans_rules_are_named():
    config = build_site(good_hosts()).prometheus_config()
    assert config.settings.rules_file == ""
    assert site_rules.FILE_NAME not in prometheus_yml_text(config, "front")


def test_promtool_on_the_monitor_refuses_what_the_shape_check_lets_through(tmp_path):
    """The control machine checks the shape; an expression only Prometheus can judge: promtool on the host."""
    path = written(tmp_path, SITE_RULES.replace('up{job="nas"} == 0', "up{job= == 0"))
    build_site(on_both_hosts("monitor_rules_file", path))  # the shape is a rules file's
    result = subprocess.run([promtool(), "check", "rules", path], capture_output=True, text=True, check=False)
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        pytest.param(None, "does not exist on the control machine", id="missing"),
        pytest.param("groups: [\n", "is not YAML (line 2)", id="not-yaml"),
        pytest.param("rules: []\n", "needs a list of rule groups under groups:", id="no-groups"),
        pytest.param("groups: []\n", "needs a list of rule groups under groups:", id="empty"),
        pytest.param("groups:\n  - rules: []\n", "group 1 needs a name and a list of rules", id="unnamed-group"),
        pytest.param("groups:\n  - {name: clawlan-host, rules: []}\n", "names clawlan's own groups", id="our-group"),
        pytest.param("groups:\n  - {name: home, rules: [{alert: X}]}\n", "needs an expr", id="no-expr"),
        pytest.param("groups:\n  - {name: home, rules: [{expr: up}]}\n", "alert: or record: name", id="no-name"),
        pytest.param(
            "groups:\n  - {name: home, rules: [{alert: ClawlanMemoryHigh, expr: up}]}\n", "clawlan's alerts have",
            id="our-alert",
        ),
        pytest.param("groups:\n  - {name: home, rules: [{alert: Watchdog, expr: up}]}\n", "clawlan's alerts have",
                     id="watchdog"),
        pytest.param("\udcff", "cannot be read as UTF-8 text", id="not-utf8"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_a_rules_file_is_refused_naming_the_key(tmp_path, text, refusal):
    path = str(tmp_path / "missing.yml")
    if text == "\udcff":
        Path(path).write_bytes(b"groups: \xff\n")
    elif text is not None:
        path = written(tmp_path, text)
    ((host, key, message),) = problems(path)
    assert (host, key) == ("*", "monitor_rules_file") and refusal in message and "\n" not in message


def test_an_oversized_file_is_refused_unread(tmp_path):
    path = written(tmp_path, "#" * (site_rules.MAX_BYTES + 1))
    ((_, key, message),) = problems(path)
    assert key == "monitor_rules_file" and "over 1024 KiB" in message


def test_a_site_rules_file_changes_no_other_setting(tmp_path):
    base = build_site(good_hosts()).prometheus_config()
    changed = build_site(on_both_hosts("monitor_rules_file", written(tmp_path, SITE_RULES))).prometheus_config()
    assert dataclasses.replace(changed, settings=dataclasses.replace(changed.settings, rules_file="")) == base

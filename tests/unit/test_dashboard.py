"""The dashboard (roles/monitor/dashboard.py): its queries are PromQL that promtool accepts and that compute what
the panels say, its bars carry the site's own thresholds, and the page reaches for nothing outside Prometheus. The
e2e suite (test_05, test_11) opens it on the lab's Prometheus."""

from __future__ import annotations

import json
import re

import pytest

from roles.monitor import dashboard
from tests.support.promtool import run_promtool
from tests.support.sites import site_with


def panels(site) -> list[dashboard.Panel]:
    config = site.prometheus_config()
    rows = dashboard.rows(config.thresholds, config.ttft_target_s, config.inter_token_target_s)
    return [panel for row in rows for panel in row.panels]


def rules_file(tmp_path, site) -> tuple:
    """Each panel's query as a recording rule, for promtool to check and evaluate."""
    records = {f"panel:{p.slug.replace('-', '_')}": p for p in panels(site)}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(
        json.dumps(
            {"groups": [{"name": "dashboard", "rules": [{"record": r, "expr": p.expr} for r, p in records.items()]}]}
        )
    )
    return path, records


def test_every_panels_query_is_promql_that_promtool_accepts(tmp_path):
    path, records = rules_file(tmp_path, site_with())
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records)} rules found" in result.stdout


def test_the_panels_compute_what_they_say(tmp_path):
    """Synthetic scrapes through the real queries: memory used is the share not available, the pool lists each
    backend with its state, and the Watchdog is not an alert firing."""
    path, _ = rules_file(tmp_path, site_with())
    test = {
        "rule_files": [str(path)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": 'node_memory_MemAvailable_bytes{job="node", instance="back"}', "values": "25x5"},
                {"series": 'node_memory_MemTotal_bytes{job="node", instance="back"}', "values": "100x5"},
                {"series": 'haproxy_server_status{proxy="model_servers", instance="front", server="back",'
                           ' state="UP"}', "values": "1x5"},
                {"series": 'haproxy_server_status{proxy="model_servers", instance="front", server="back",'
                           ' state="DOWN"}', "values": "0x5"},
                {"series": 'ALERTS{alertname="Watchdog", alertstate="firing", severity="none"}', "values": "1x5"},
                {"series": 'ALERTS{alertname="ClawlanMemoryHigh", alertstate="firing", instance="back",'
                           ' severity="warning"}', "values": "1x5"},
            ],
            "promql_expr_test": [
                {"expr": "panel:memory_used", "eval_time": "5m",
                 "exp_samples": [{"labels": 'panel:memory_used{instance="back", job="node"}', "value": 0.75}]},
                {"expr": "panel:backends_in_the_pool", "eval_time": "5m",
                 "exp_samples": [{"labels": 'panel:backends_in_the_pool{instance="front", proxy="model_servers",'
                                            ' server="back", state="UP"}', "value": 1}]},
                {"expr": "panel:alerts_firing_the_watchdog_aside", "eval_time": "5m",
                 "exp_samples": [{"labels": 'panel:alerts_firing_the_watchdog_aside{alertname="ClawlanMemoryHigh",'
                                            ' alertstate="firing", instance="back", severity="warning"}',
                                  "value": 1}]},
            ],
        }],
    }  # fmt: skip
    test_file = tmp_path / "dashboard.test.yml"
    test_file.write_text(json.dumps(test))
    result = run_promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bars_turn_at_the_sites_own_alert_thresholds():
    changed = {"monitor_alert_memory_used_percent": 70, "monitor_alert_disk_free_percent": 20}  # site-wide keys
    site = site_with(front=changed, back=changed)
    page = site.prometheus_config().dashboard_page()
    memory = re.search(r'id="memory-used".*?</section>', page, re.S).group(0)
    disk = re.search(r'id="disk-used".*?</section>', page, re.S).group(0)
    assert 'high="0.7"' in memory and 'high="0.8"' in disk


def test_the_page_has_each_panel_once_and_fetches_nothing():
    site = site_with()
    page = site.prometheus_config().dashboard_page()
    for panel in panels(site):
        assert page.count(f'id="{panel.slug}"') == 1, panel.title
        assert f"query `{panel.expr}`" in page
    assert not re.search(r"<script|<link|<img|<iframe|src=|href=|url\(|@import|https?://", page, re.I)
    assert f'http-equiv="refresh" content="{dashboard.REFRESH_S}"' in page


def test_prometheus_serves_the_page_from_its_console_directory():
    arguments = site_with().prometheus_config().arguments()
    assert f"--web.console.templates={dashboard.CONSOLES_DIR}" in arguments


def test_a_query_holding_a_backquote_is_refused_before_it_reaches_the_page():
    with pytest.raises(ValueError, match="backquote"):
        dashboard._panel(dashboard.Panel("x", "up`", ("instance",), "number"))

"""Monitoring end to end: a person on the LAN (this machine) opens Prometheus on the monitor host.

Prometheus scrapes both node exporters and the probe, whose streamed chats cross the real paths. The alerts a
stopped model server raises, and their resolution, are test_11's: the suite stops it once, for every test that needs
it.
"""

from __future__ import annotations

import json
import time
import urllib.error

import pytest

from lab.runner import REPO
from roles.model_server.config import UNIT as MODEL_UNIT
from roles.monitor import dashboard
from roles.monitor.alerts import alert_groups
from roles.monitor.probe import UNIT as PROBE_UNIT
from tests.compliance import test_pki as pki_controls
from tests.compliance import test_services as service_controls
from tests.e2e.conftest import deploy, status, wait_until_passes
from tests.support.browser import screenshot_through_loopback
from tests.support.prometheus import (
    alert_states,
    alertmanager_url,
    api,
    dashboard_panels,
    open_url,
    prometheus_url,
    query,
)
from tests.support.waiting import wait_for

FRONTEND, BACKEND = "lab-front", "lab-back"
PATHS = ("gateway", "backend")
MEMORY_TOTAL = 'node_memory_MemTotal_bytes{job="node"}'
RUN_PROMETHEUS = (
    "Prometheus | Run prometheus.service (restarted when its flags changed, reloaded when its configuration did)"
)


@pytest.fixture(scope="module")
def prometheus(first_deploy, site):
    return prometheus_url(site)


@pytest.mark.parametrize(
    "page, shows",
    [("/", "Prometheus"), ("/classic/targets", "lab-back"), ("/classic/alerts", "ClawlanProbeFailing")],
)
def test_the_prometheus_ui_answers_on_the_monitors_lan_address(prometheus, page, shows):
    """Debian's package serves Prometheus' classic UI (under /classic/; / leads there)."""
    with open_url(prometheus + page) as response:
        assert response.status == 200
        assert shows in response.read().decode()


def test_every_exporter_and_the_probe_are_scraped_and_up(prometheus, hosts, site):
    """Both node exporters, the probe and Prometheus itself: the lab's monitor host is the frontend."""
    monitor = site.topology.monitor_host.name
    wait_until_passes(service_controls.test_MON_03_targets_up, hosts[monitor], site, monitor, timeout_s=60)


def measured_path(prometheus, path: str) -> dict[str, float] | None:
    """The probe's figures of ``path``, once it has succeeded with every one of them non-zero."""
    values = {
        name: query(prometheus, f'{name}{{path="{path}"}}')
        for name in (
            "clawlan_probe_success",
            "clawlan_probe_time_to_first_token_seconds_count",
            "clawlan_probe_time_to_first_token_seconds_sum",
            "clawlan_probe_inter_token_seconds_count",
            "clawlan_probe_tokens_per_second",
        )
    }
    flat = {name: next(iter(samples.values()), 0.0) for name, samples in values.items()}
    return flat if flat["clawlan_probe_success"] == 1 and all(flat.values()) else None


@pytest.mark.parametrize("path", PATHS)
def test_the_probe_measures_real_chats_on_each_path(prometheus, path):
    values = wait_for(lambda: measured_path(prometheus, path), 180, f"a successful probe of the {path} path")
    print(f"probe {path}: {values}")
    assert values["clawlan_probe_time_to_first_token_seconds_sum"] > 0
    assert values["clawlan_probe_tokens_per_second"] > 0


def test_make_status_shows_each_box_and_path_from_prometheus(prometheus, site):
    """The terminal view (tools/status.py): each box's memory against the total its node exporter reports, both
    paths answering, the backend in the balancer's pool, and an exit code that says whether an alert fires."""
    wait_for(lambda: all(measured_path(prometheus, path) for path in PATHS), 180, "both paths probed")
    totals = {dict(labels)["instance"]: value for labels, value in query(prometheus, MEMORY_TOTAL).items()}
    result = status()
    print(result.stdout, result.stderr)
    assert result.returncode == (0 if "alerts firing: none" in result.stdout else 1), result.stdout + result.stderr
    for host in (FRONTEND, BACKEND):
        section = result.stdout.split(f"\n{host}\n", 1)[1]
        assert section.startswith("  memory ") and f"of {totals[host] / 2**30:.1f} GiB" in section.splitlines()[0]
    for path in PATHS:
        assert f"path {path} (answering;" in result.stdout
    assert f"backends behind {FRONTEND}: {BACKEND} UP" in result.stdout


# Panels the lab has no series for: lavapipe has no GPU memory of its own (no DRM GTT), a container's overlay root
# has no disk figure, and a container sees the sensors of the machine that runs it, often none. Each still renders,
# saying so.
NOT_IN_THE_LAB = {"GPU memory (GTT) used", "disk / used", "hottest sensor"}
QUIET = {"probe errors (last hour)", "alerts firing (the Watchdog aside)"}  # "none" on a healthy site


def dashboard_titles(site) -> dict[str, str]:
    config = site.prometheus_config()
    rows = dashboard.rows(config.thresholds, config.ttft_target_s, config.inter_token_target_s)
    return {panel.title: panel.slug for row in rows for panel in row.panels}


def test_the_dashboard_shows_every_panel_with_the_labs_own_series(prometheus, site):
    """Prometheus renders the page from the lab's own scrapes: each box's memory, both paths answering with their
    latency, the backend in the pool, and no panel empty that the lab has series for."""
    wait_for(lambda: all(measured_path(prometheus, path) for path in PATHS), 180, "both paths probed")
    titles = dashboard_titles(site)
    assert set(dashboard_panels(site)) == set(titles.values())
    # On a lab just deployed, rates and increases need a second scrape, and the balancer's last scrape may predate
    # the backend's admission (after its warm-up): the page fills in within a few scrapes.
    deadline, panels, empty = time.monotonic() + 120, {}, ["?"]
    while time.monotonic() < deadline:
        panels = dashboard_panels(site)
        empty = [
            f"{title}: {panels[slug]}"
            for title, slug in titles.items()
            if title not in NOT_IN_THE_LAB | QUIET and not (isinstance(panels[slug], list) and panels[slug])
        ]
        pool = panels[titles["backends in the pool"]]
        if not empty and (f"{FRONTEND} {BACKEND}", "UP") in pool:
            break
        time.sleep(2)
    assert not empty, empty  # no panel empty that the lab has series for
    assert (f"{FRONTEND} {BACKEND}", "UP") in panels[titles["backends in the pool"]], panels
    for title in NOT_IN_THE_LAB:
        assert panels[titles[title]] == "no data" or panels[titles[title]], title  # rendered either way
    for title in QUIET:
        assert panels[titles[title]] == "none" or isinstance(panels[titles[title]], list), title
    memory = dict(panels[titles["memory used"]])
    assert set(memory) == {FRONTEND, BACKEND} and all(value.endswith("%") for value in memory.values()), memory
    assert dict(panels[titles["answering (the probe's last round)"]]) == {"gateway": "yes", "backend": "yes"}
    assert all(value.endswith("s") for _, value in panels[titles["first token p99 (last 15m)"]])


def test_the_dashboard_opens_in_a_browser_and_a_lan_device_without_the_password_is_refused(prometheus, site):
    """Headless Chromium (Debian's) loads the live page, as Prometheus serves it, through a loopback relay that
    holds the password (so it is on no command line); the DOM it built holds the lab's series. The screenshot is
    kept in .check-e2e/. Without the password, the page is refused like the rest of Prometheus."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        open_url(f"{prometheus}/consoles/{dashboard.CONSOLE}", login=False)
    assert refused.value.code == 401
    dom = screenshot_through_loopback(
        f"{prometheus}/consoles/{dashboard.CONSOLE}", REPO / ".check-e2e" / "dashboard.png"
    )
    assert f">{BACKEND}</span>" in dom and '<meter min="0"' in dom, dom[:2000]
    assert (REPO / ".check-e2e" / "dashboard.png").read_bytes().startswith(b"\x89PNG")


def test_every_alert_rule_is_loaded_in_its_group(prometheus, site):
    loaded = {group["name"]: {rule["name"] for rule in group["rules"]} for group in api(prometheus, "rules")["groups"]}
    ours = {f"clawlan-{g.name}": {r.name for r in g.rules} for g in alert_groups(site.prometheus_config().thresholds)}
    # 24 alerts and the Watchdog: "all loaded" is not "none made, none loaded".
    assert sum(map(len, ours.values())) == 25
    assert loaded == ours
    service_controls.test_MON_04_alert_rules_loaded(site, site.topology.monitor_host.name)


@pytest.mark.parametrize(
    "expr",
    [
        "node_memory_HugePages_Total",
        "node_memory_SwapTotal_bytes",
        "node_netstat_Tcp_RetransSegs",
        'node_systemd_unit_state{state="active", name="prometheus-node-exporter.service"} == 1',
        "clawlan_certificate_expiry_timestamp_seconds > time()",
    ],
)
def test_each_host_reports(prometheus, site, expr):
    def instances():
        found = {dict(labels)["instance"] for labels in query(prometheus, expr)}
        return found if found == {h.name for h in site.topology.hosts} else None

    wait_for(instances, 30, f"{expr} from every host")


def test_the_gateway_audit_is_reported_by_each_frontend(prometheus, site):
    """The deploy ran openclaw's security audit; its findings reach Prometheus through the textfile collector."""
    frontends = {h.name for h in site.topology.hosts if h.role == "frontend"}

    def reported_clean():
        audited = query(prometheus, "clawlan_gateway_audit_success == 1 and clawlan_gateway_config_valid == 1")
        clean = query(prometheus, 'clawlan_gateway_audit_findings{severity="critical"} == 0')
        instances = ({dict(labels)["instance"] for labels in audited}, {dict(labels)["instance"] for labels in clean})
        return instances == (frontends, frontends)

    # Up to a scrape interval behind the file, which an earlier test may just have rewritten.
    wait_for(reported_clean, 60, "an audit without critical findings, as Prometheus sees it, from every frontend")


def test_our_units_states_are_reported(prometheus):
    active = query(prometheus, 'node_systemd_unit_state{state="active"} == 1')
    units = {(dict(labels)["instance"], dict(labels)["name"]) for labels in active}
    assert {
        (BACKEND, MODEL_UNIT),
        (BACKEND, "nginx.service"),
        (FRONTEND, "clawlan-gateway.service"),
        (FRONTEND, PROBE_UNIT),
        (FRONTEND, "prometheus.service"),
        (FRONTEND, "haproxy.service"),
    } <= units


def test_the_exporters_answer_the_monitor_host_only(hosts, site):
    # Not this machine: the backend's node exporter, the frontend's probe (the frontend is the lab's monitor host).
    service_controls.test_NET_04_exporters_refuse_others(site, BACKEND)
    service_controls.test_NET_05_probe_refuses_others(site, FRONTEND)
    # The monitor host: its Prometheus scrapes every exporter and the probe.
    monitor = site.topology.monitor_host.name
    service_controls.test_MON_03_targets_up(hosts[monitor], site, monitor)


@pytest.mark.parametrize(
    "host_name, unit",
    [
        (FRONTEND, PROBE_UNIT),
        (FRONTEND, "prometheus.service"),
        (BACKEND, "prometheus-node-exporter.service"),
        (BACKEND, "clawlan-certificate-metrics.service"),
    ],
)
def test_monitoring_units_are_hardened(hosts, site, host_name, unit):
    service_controls.test_MON_06_monitoring_hardening(hosts[host_name], site, host_name, unit)


def test_the_probe_has_its_own_key_and_the_host_key_stays_roots(hosts, site):
    front, spec = hosts[FRONTEND], site.topology.host(FRONTEND)
    pki_controls.test_PKI_01_private_key_mode(front, spec, "probe")  # the probe's user's, 0600
    pki_controls.test_PKI_01_private_key_mode(front, spec, "host")  # root's, 0600
    pki_controls.test_PKI_07_probe_cannot_read_the_host_key(front)


SITE_RULES = """\
groups:
  - name: home
    rules:
      - alert: HomeRulesLoaded
        expr: vector(1)
        labels: {severity: none}
"""


def test_a_changed_threshold_and_a_sites_own_rules_reload_prometheus_and_change_nothing_else(
    hosts, prometheus, tmp_path
):
    """A threshold and a site's own rules file (monitor_rules_file) reach Prometheus by a reload, checked by promtool
    first, and the threshold the dashboard's bar (no reload: Prometheus reads the page at each request); taking the
    file out of the inventory takes its rules out of Prometheus."""
    front = hosts[FRONTEND]
    pid = front.check_output("systemctl show --property MainPID --value prometheus.service")
    site_rules = tmp_path / "home.rules.yml"
    site_rules.write_text(SITE_RULES)
    result = deploy("--data", "monitor_alert_disk_free_percent=12.5", "--data", f"monitor_rules_file={site_rules}")
    check = ("Prometheus | Check the staged configuration and rules with promtool", FRONTEND)
    written = {(f"Prometheus | {step}", FRONTEND) for step in (
        "Stage clawlan.rules.yml", "Write /etc/clawlan/prometheus/clawlan.rules.yml",
        "Stage prometheus.yml", "Write /etc/clawlan/prometheus/prometheus.yml",
        f"Write the dashboard, served at /consoles/{dashboard.CONSOLE}")}  # fmt: skip
    assert result.changed == written | {
        ("Prometheus | Stage site.rules.yml", FRONTEND),
        ("Prometheus | Write /etc/clawlan/prometheus/site.rules.yml", FRONTEND),
        check,
        (RUN_PROMETHEUS, FRONTEND),
    }
    assert front.check_output("systemctl show --property MainPID --value prometheus.service") == pid
    groups = {group["name"]: group for group in api(prometheus, "rules", type="alert")["groups"]}
    disk = next(rule for rule in groups["clawlan-host"]["rules"] if rule["name"] == "ClawlanDiskFilling")
    assert "< 12.5" in disk["query"]
    assert [rule["name"] for rule in groups["home"]["rules"]] == ["HomeRulesLoaded"]
    assert groups["home"]["file"].endswith("/site.rules.yml")
    page = front.file(f"{dashboard.CONSOLES_DIR}/{dashboard.CONSOLE}").content_string  # the lab's disk has no figure
    assert 'high="0.875"' in page.split('id="disk-used"', 1)[1].split("</section>", 1)[0]

    back = deploy()  # the inventory's own values, and no site rules file
    removed = {(f"Prometheus | Remove /etc/clawlan/prometheus/{where}site.rules.yml: the inventory names no site"
                " rules file", FRONTEND) for where in ("staged/", "")}  # fmt: skip
    assert back.changed == written | removed | {check, (RUN_PROMETHEUS, FRONTEND)}
    assert "home" not in {group["name"] for group in api(prometheus, "rules")["groups"]}
    assert not front.file("/etc/clawlan/prometheus/site.rules.yml").exists
    assert deploy().changed == set()


def test_only_the_password_opens_the_monitor_and_a_silence_is_heard(prometheus, site):
    """Without the password Alertmanager takes no silence and no alert, and Prometheus shows nothing (MON-10). With
    it, a person's silence is taken, and ClawlanSilenceActive fires until the silence is expired."""
    monitor = site.topology.monitor_host.name
    service_controls.test_MON_10_monitor_access(site, monitor)
    alertmanager = alertmanager_url(site)
    silence = json.dumps({"matchers": [{"name": "alertname", "value": "ClawlanNothing", "isRegex": False}],
                          "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
                          "createdBy": "test_05", "comment": "a person's own silence"}).encode()  # fmt: skip
    with open_url(f"{alertmanager}/api/v2/silences", data=silence, **{"Content-Type": "application/json"}) as answer:
        silence_id = json.load(answer)["silenceID"]
    try:
        wait_for(lambda: alert_states(prometheus, "ClawlanSilenceActive").get(monitor) == "firing", 60,
                 "ClawlanSilenceActive firing for the person's silence")  # fmt: skip
    finally:
        with open_url(f"{alertmanager}/api/v2/silence/{silence_id}", method="DELETE") as answer:
            assert answer.status == 200
    wait_for(lambda: "ClawlanSilenceActive" not in alert_names(prometheus), 60,
             "ClawlanSilenceActive resolved once the silence is expired")  # fmt: skip


def alert_names(prometheus) -> set[str]:
    return {alert["labels"]["alertname"] for alert in api(prometheus, "alerts")["alerts"]}

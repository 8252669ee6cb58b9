"""Alertmanager's configuration: who hears what, what is held back, and that no value or secret leaks into it."""

from __future__ import annotations

import json

import pytest

from roles.monitor.alertmanager import SMTP_PASSWORD_FILE
from roles.monitor.alerts import CAUSES, EFFECTS, WATCHDOG
from tests.support.sites import problems_of, site_with, with_change

MAIL = {
    "monitor_alert_email_to": "ops@example.org",
    "monitor_alert_smtp_host": "mail.example.org",
    "monitor_alert_smtp_username": "appliance@example.org",
}


def everywhere(**data) -> dict:
    """Monitor keys are site-wide: the same on every host."""
    return {"front": data, "back": data}


def config(tmp_path=None, **data):
    if tmp_path is not None:
        data = {"site_state_dir": str(tmp_path), **data}
    return site_with(front=dict(data), back=dict(data)).alertmanager_config()


def test_without_receivers_alerts_stay_in_alertmanager_and_the_watchdog_goes_nowhere():
    am = config().config()
    assert am["receivers"] == [{"name": "person"}, {"name": "watchdog"}]
    assert am["route"]["receiver"] == "person"


def test_the_webhook_and_mail_reach_the_person_with_resolved_notices_and_the_password_by_file(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "alert-smtp-password").write_text("hunter2\n")
    am = config(tmp_path, monitor_alert_webhook_url="http://10.0.0.5:8123/api/webhook/alerts", **MAIL)
    person = am.config()["receivers"][0]
    assert person["webhook_configs"] == [{"url": "http://10.0.0.5:8123/api/webhook/alerts", "send_resolved": True}]
    (mail,) = person["email_configs"]
    assert mail["smarthost"] == "mail.example.org:587" and mail["require_tls"] is True
    assert mail["auth_password_file"] == SMTP_PASSWORD_FILE and "hunter2" not in am.yaml()
    assert mail["from"] == "alertmanager@10.0.0.10"  # the monitor's address when no From: is given


def test_the_watchdog_goes_to_the_dead_mans_switch_every_minute_and_the_rest_is_grouped_per_alert_and_host():
    am = config(monitor_alert_watchdog_url="https://hc.example.org/ping/abc").config()
    route = am["route"]
    assert route["group_by"] == ["alertname", "instance"]
    (watchdog_route,) = route["routes"]
    assert watchdog_route["matchers"] == [f'alertname="{WATCHDOG}"'] and watchdog_route["receiver"] == "watchdog"
    # Every minute: the first look after the 50 s repeat, at a 10 s group interval, is 60 s after the last.
    assert (watchdog_route["group_interval"], watchdog_route["repeat_interval"]) == ("10s", "50s")
    assert am["receivers"][1]["webhook_configs"][0]["url"] == "https://hc.example.org/ping/abc"


def test_a_backend_down_holds_back_the_probe_alerts_it_causes():
    (rule,) = config().config()["inhibit_rules"]
    assert rule["source_matchers"] == [f'alertname=~"{"|".join(CAUSES)}"']
    assert rule["target_matchers"] == [f'alertname=~"{"|".join(EFFECTS)}"']
    assert "ClawlanModelServerNotReady" in CAUSES and "ClawlanProbeFailing" in EFFECTS


def test_the_file_is_json_so_no_value_breaks_out_of_its_string():
    am = config(monitor_alert_webhook_url="http://nas.home.arpa/hook?a=1&b=%22x%22")
    assert json.loads(am.yaml().split("\n", 1)[1]) == am.config()


def test_it_listens_on_the_monitors_address_without_a_gossip_port():
    arguments = config().arguments()
    assert "--web.listen-address=10.0.0.10:9093" in arguments and "--cluster.listen-address=" in arguments


def test_a_relay_login_without_its_password_file_is_refused_before_any_host(tmp_path):
    hosts = with_change(lambda h: [data.update(site_state_dir=str(tmp_path), **MAIL) for _, data in h.values()])
    problems, text = problems_of(hosts)
    assert ("front", "monitor_alert_smtp_username") in problems and "alert-smtp-password" in text


@pytest.mark.parametrize(
    "key, value",
    [
        ("monitor_alert_email_to", "ops@example.org\nBcc: everyone@example.org"),
        ("monitor_alert_email_to", "Ops <ops@example.org>"),
        ("monitor_alert_webhook_url", "file:///etc/shadow"),
        ("monitor_alert_smtp_host", "mail.example.org:25"),
        ("monitor_alert_smtp_username", 'me"; rm -rf /'),
        ("monitor_alertmanager_port", 70000),
    ],
)
def test_hostile_or_sloppy_values_are_refused_naming_the_key(key, value):
    problems, _ = problems_of(with_change(lambda h: [data.update({key: value}) for _, data in h.values()]))
    assert any(k == key for _, k in problems), problems


HALF_MAIL = {
    "a receiver without a relay": ({"monitor_alert_email_to": "ops@example.org"}, "monitor_alert_smtp_host"),
    "a relay without a receiver": ({"monitor_alert_smtp_host": "mail.example.org"}, "monitor_alert_email_to"),
    "a sender without a receiver": ({"monitor_alert_email_from": "am@example.org"}, "monitor_alert_email_to"),
    "a relay port without a relay": ({"monitor_alert_smtp_port": 587}, "monitor_alert_smtp_host"),  # given: read
    "a relay login without a relay": (
        {"monitor_alert_email_to": "ops@example.org", "monitor_alert_smtp_username": "am"},
        "monitor_alert_smtp_host",
    ),
}


@pytest.mark.parametrize("data, missing", HALF_MAIL.values(), ids=HALF_MAIL.keys())
def test_a_half_configured_mail_receiver_is_refused_naming_both_keys(data, missing):
    problems, text = problems_of(with_change(lambda h: [d.update(data) for _, d in h.values()]))
    assert {("front", key) for key in data} <= problems  # the monitor host, where Alertmanager runs
    for key in data:
        assert any(f"host 'front', key '{key}': " in line and missing in line for line in text.split("\n"))

"""The monitoring stack's configs and rendered files: who may connect, what is scraped, where secrets live."""

from __future__ import annotations

import json
import re
import subprocess

import bcrypt
import pytest

from roles.common.secrets import password_hash, replace_site_secret, site_secret
from roles.common.templates import render
from roles.inventory.load import build_site
from roles.monitor.common import MONITOR_CERT, MONITOR_KEY, WEB_CONFIG, WEB_PASSWORD_FILE, web_config_yaml
from roles.monitor.node_exporter import UNIT as NODE_EXPORTER_UNIT
from roles.monitor.probe import CERT as PROBE_CERT
from roles.monitor.probe import KEY as PROBE_KEY
from roles.monitor.probe import ROUND_LOCK as PROBE_ROUND_LOCK
from roles.monitor.probe import RUNTIME_DIR as PROBE_RUNTIME_DIR
from roles.monitor.prometheus import prometheus_yml_text
from roles.monitor.rules import render_rules
from roles.site.site import WATCHED_UNITS
from tests.support.promtool import promtool
from tests.support.sites import good_hosts, with_change

FRONT, BACK = "10.0.0.10", "10.0.0.20"


@pytest.fixture
def site():
    return build_site(good_hosts())


def test_the_monitor_defaults_to_the_first_frontend(site):
    assert site.topology.monitor_host.name == "front"
    assert site.prometheus_config().listen_address == FRONT


def test_the_monitor_host_is_settable(site):
    moved = build_site(with_change(lambda h: [d.update(monitor_host="back") for _, d in h.values()]))
    assert moved.topology.monitor_host.name == "back"
    assert moved.node_exporter_config("front").monitor_address == BACK
    assert BACK in moved.probe_config("front").allowed_addresses


def test_node_exporter_listens_on_the_lan_address_for_the_monitor_only(site):
    config = site.node_exporter_config("back")
    dropin = render("monitor/node-exporter.conf.j2", arguments=config.arguments(),
                    monitor_address=config.monitor_address)  # fmt: skip
    assert f"--web.listen-address={BACK}:9100" in dropin
    assert re.search(r"^IPAddressDeny=any$", dropin, re.M)
    assert re.search(rf"^IPAddressAllow=localhost {FRONT}$", dropin, re.M)
    assert "ExecStart=\nExecStart=/usr/bin/prometheus-node-exporter " in dropin


def test_the_systemd_collector_reports_exactly_our_long_running_units(site):
    (include,) = [a for a in site.node_exporter_config("back").arguments() if "unit-include" in a]
    assert "\\" not in include, "systemd's ExecStart= would eat the backslash"
    pattern = re.compile(include.split("=", 1)[1])
    for unit in WATCHED_UNITS:
        assert pattern.fullmatch(unit)
    for other in ("clawlan-swapon.service", "clawlan-certificate-metrics.service", "nginxXservice", "ssh.service"):
        assert not pattern.fullmatch(other), other
    assert NODE_EXPORTER_UNIT in WATCHED_UNITS


def test_the_probe_configuration_holds_no_secret_and_names_both_paths(site):
    probe = json.loads(site.probe_config("front").probe_json())
    targets = {t["name"]: t for t in probe["targets"]}
    assert set(targets) == {"gateway", "backend"}
    assert targets["gateway"]["url"] == f"https://{FRONT}:18789/v1/chat/completions"
    assert targets["backend"]["url"] == "https://llm.home.arpa:8443/v1/chat/completions"
    assert (targets["backend"]["cert_file"], targets["backend"]["key_file"]) == (PROBE_CERT, PROBE_KEY)
    assert {t["api_key_env"] for t in targets.values()} == {"OPENCLAW_GATEWAY_TOKEN", "CLAWLAN_MODEL_API_KEY"}
    assert not any("api_key_file" in t or "token" in t for t in targets.values())
    assert (probe["listen_address"], probe["port"], probe["interval_s"]) == (FRONT, 9464, 60)
    assert probe["round_lock_file"] == PROBE_ROUND_LOCK


def test_the_probe_unit_reads_its_secrets_from_the_environment_file_and_talks_only_to_its_peers(site):
    config = site.probe_config("front")
    unit = render("monitor/clawlan-probe.service.j2", user="clawlan-probe", program="/opt/p.py",
                  config_file="/etc/clawlan/probe.json", env_file="/etc/clawlan/gateway.env",
                  runtime_directory=PROBE_RUNTIME_DIR, allowed_addresses=config.allowed_addresses)  # fmt: skip
    assert "EnvironmentFile=/etc/clawlan/gateway.env" in unit
    # The round lock lives where systemd lets the sandboxed probe write (ProtectSystem=strict).
    runtime_directory = re.search(r"^RuntimeDirectory=(\S+)$", unit, re.M)[1]
    assert PROBE_ROUND_LOCK.startswith(f"/run/{runtime_directory}/")
    assert re.search(rf"^IPAddressAllow=localhost {FRONT} {BACK}$", unit, re.M)
    assert "User=clawlan-probe" in unit


def test_the_probes_certificate_carries_the_frontends_identity(site):
    assert site.probe_config("front").issuance.spec == site.pki_config("front").issuance.spec
    assert site.probe_config("front").issuance.spec.subject_dn() in site.ingress_config("back").allowed_client_dns


def test_prometheus_scrapes_every_exporter_and_probe_by_inventory_name(site):
    config = site.prometheus_config()
    assert [(t.host, t.address) for t in config.node_targets] == [("front", f"{FRONT}:9100"), ("back", f"{BACK}:9100")]
    assert [(t.host, t.address) for t in config.probe_targets] == [("front", f"{FRONT}:9464")]
    assert "--storage.tsdb.retention.time=30d" in config.arguments()
    assert f"--web.listen-address={FRONT}:9090" in config.arguments()


def test_prometheus_may_reach_a_scrape_target_outside_the_ui_networks():
    def outside(hosts):
        hosts["back"][1].update(ssh_hostname="192.168.0.20")
        for _, data in hosts.values():
            data["monitor_client_networks"] = ["10.0.0.0/8"]

    hosts = with_change(outside)
    config = build_site(hosts).prometheus_config()
    assert config.allowed_networks[-1] == "192.168.0.20"


def test_the_rendered_prometheus_configuration_passes_promtool(site, tmp_path):
    config = site.prometheus_config()
    # promtool checks that the monitor's TLS files exist: on the monitor the deploy has made them by then.
    pki = tmp_path / "pki"
    pki.mkdir()
    for name in ("ca.crt", "monitor.crt", "monitor.key"):
        (pki / name).touch()
    text = prometheus_yml_text(config, "front")
    assert "cert_file: /etc/clawlan/pki/monitor.crt" in text
    # Alerts go to the site's Alertmanager beside Prometheus, which is scraped too: over HTTPS, with a password.
    login = (
        "    - scheme: https\n      tls_config: {ca_file: /etc/clawlan/pki/ca.crt}\n"
        f"      basic_auth: {{username: clawlan, password_file: {WEB_PASSWORD_FILE}}}\n"
    )
    assert f'alerting:\n  alertmanagers:\n{login}      static_configs:\n        - targets: ["10.0.0.10:9093"]' in text
    assert "job_name: alertmanager" in text
    assert text.count("basic_auth: {username: clawlan") == 3  # alerts, and the scrapes of Prometheus and Alertmanager
    (tmp_path / "web-password").write_text("x\n")
    text = text.replace(WEB_PASSWORD_FILE, str(tmp_path / "web-password"))
    (tmp_path / "prometheus.yml").write_text(text.replace("/etc/clawlan/pki/", f"{pki}/"))
    (tmp_path / "clawlan.rules.yml").write_text(render_rules(config.thresholds))
    result = subprocess.run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_the_web_configuration_serves_https_with_the_monitors_certificate_and_one_user(tmp_path):
    """promtool reads it as Prometheus and Alertmanager do: their UI and API need TLS and the password."""
    key, cert = tmp_path / "monitor.key", tmp_path / "monitor.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-subj", "/CN=monitor", "-days", "1"],
                   check=True, capture_output=True)  # fmt: skip
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    text = web_config_yaml(hashed)
    config = json.loads(text.split("\n", 1)[1])
    assert config == {
        "basic_auth_users": {"clawlan": hashed},
        "tls_server_config": {"cert_file": MONITOR_CERT, "key_file": MONITOR_KEY, "min_version": "TLS12"},
    }
    (tmp_path / "web.yml").write_text(text.replace(MONITOR_CERT, str(cert)).replace(MONITOR_KEY, str(key)))
    result = subprocess.run([promtool(), "check", "web-config", str(tmp_path / "web.yml")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_and_alertmanager_read_the_web_configuration(site):
    for arguments in (site.prometheus_config().arguments(), site.alertmanager_config().arguments()):
        assert f"--web.config.file={WEB_CONFIG}" in arguments
        assert any(a.startswith("--web.external-url=https://") for a in arguments)


def test_the_password_hash_is_made_once_and_follows_the_password(tmp_path):
    secret = tmp_path / "monitor-password"
    first = password_hash(secret, "one")
    assert password_hash(secret, "one") == first  # the hosts' web configuration does not change on every deploy
    assert bcrypt.checkpw(b"one", first.encode())
    assert (tmp_path / "monitor-password.bcrypt").stat().st_mode & 0o777 == 0o600
    second = password_hash(secret, "two")  # a new password (the old file removed) gets its own hash
    assert second != first and bcrypt.checkpw(b"two", second.encode())


def test_a_replaced_secret_is_new_private_and_takes_its_old_hash_with_it(tmp_path):
    secret = tmp_path / "monitor-password"
    old = site_secret(secret)
    old_hash = password_hash(secret, old)
    replace_site_secret(secret)
    new = secret.read_text().strip()
    assert new != old and len(new) >= 40 and secret.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "monitor-password.bcrypt").exists()
    assert password_hash(secret, new) != old_hash and site_secret(secret) == new

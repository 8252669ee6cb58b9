"""Both ends of the mtls role's path: the backend's ingress (TLS 1.3, frontends' client certificates only) and the
frontend's egress proxy (verifies the backend by name, retries connections only); streaming untouched at both."""

from roles.common.templates import render
from roles.mtls.config import build_egress_config, build_ingress_config
from roles.mtls.settings import MtlsSettings

FRONTEND_DN = "CN=front.home.arpa,OU=frontend,O=clawlan"
MONITOR_DN = "CN=front.home.arpa,OU=monitor,O=clawlan"


def rendered(**settings):
    config = build_ingress_config(
        MtlsSettings(**settings), "10.0.0.20", 8000, (FRONTEND_DN,), MONITOR_DN, "/state/secrets/key"
    )
    return render("mtls/ingress.conf.j2", **config.__dict__)


def test_listens_on_the_lan_address_only_with_tls13_and_client_certificates():
    text = rendered(port=9443)
    assert "listen 10.0.0.20:9443 ssl;" in text
    assert "ssl_protocols TLSv1.3;" in text
    assert "ssl_verify_client on;" in text
    assert "ssl_client_certificate /etc/clawlan/pki/ca.crt;" in text


def test_admits_only_the_frontends_and_the_monitors_subjects():
    text = rendered()
    assert f'"{FRONTEND_DN}" frontend;' in text
    assert f'"{MONITOR_DN}" monitor;' in text
    assert 'default "";' in text
    assert 'if ($clawlan_client = "") {\n        return 403;' in text


def test_the_monitor_reads_metrics_only_and_frontends_everything_else():
    metrics, rest = rendered().split("location = /metrics {")[1].split("location / {")
    assert "if ($clawlan_client != monitor) {\n            return 403;" in metrics
    assert "include /etc/nginx/clawlan-metrics-key.conf;" in metrics  # the key is added here, never sent by the monitor
    assert "if ($clawlan_client != frontend) {\n            return 403;" in rest
    assert "include" not in rest


def test_streams_without_buffering_to_a_kept_alive_upstream():
    text = rendered(upstream_keepalive=4, read_timeout_s=120)
    for line in (
        "server 127.0.0.1:8000;",
        "keepalive 4;",
        "proxy_buffering off;",
        "tcp_nodelay on;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_read_timeout 120s;",
    ):
        assert line in text, line


def egress(**settings):
    config = build_egress_config(MtlsSettings(**settings), "llm.home.arpa")
    return render("mtls/egress.conf.j2", **config.__dict__)


def test_egress_listens_on_loopback_and_verifies_the_backend_by_name():
    text = egress(egress_port=18181)
    assert "listen 127.0.0.1:18181;" in text
    for line in (
        "proxy_ssl_certificate /etc/clawlan/pki/host.crt;",
        "proxy_ssl_trusted_certificate /etc/clawlan/pki/ca.crt;",
        "proxy_ssl_verify on;",
        "proxy_ssl_name llm.home.arpa;",
        "proxy_ssl_protocols TLSv1.3;",
        "proxy_buffering off;",
        "tcp_nodelay on;",
    ):
        assert line in text, line


def test_egress_retries_connections_not_requests():
    text = egress(connect_retries=2, connect_timeout_s=7)
    assert text.count("server llm.home.arpa:8443 max_fails=0;") == 3
    assert "proxy_next_upstream_tries 3;" in text
    assert "proxy_connect_timeout 7s;" in text
    assert "non_idempotent" not in text


def test_both_ends_admit_the_same_largest_request():
    """A request the frontend's proxy lets through must not be refused by the backend's, and the other way round."""
    assert "client_max_body_size 24m;" in egress(max_body_mib=24)
    assert "client_max_body_size 24m;" in rendered(max_body_mib=24)

"""The backend's nginx: TLS 1.3, client certificates of frontends only, streaming untouched."""

from roles.mtls.config import build_ingress_config
from roles.mtls.settings import MtlsSettings
from roles.templates import render

FRONTEND_DN = "CN=front.home.arpa,OU=frontend,O=clawlan"


def rendered(**settings):
    config = build_ingress_config(MtlsSettings(**settings), "10.0.0.20", 8000, (FRONTEND_DN,))
    return render("mtls/ingress.conf.j2", **config.__dict__)


def test_listens_on_the_lan_address_only_with_tls13_and_client_certificates():
    text = rendered(port=9443)
    assert "listen 10.0.0.20:9443 ssl;" in text
    assert "ssl_protocols TLSv1.3;" in text
    assert "ssl_verify_client on;" in text
    assert "ssl_client_certificate /etc/clawlan/pki/ca.crt;" in text


def test_admits_only_the_frontends_subjects():
    text = rendered()
    assert f'"{FRONTEND_DN}" 1;' in text
    assert "default 0;" in text
    assert "if ($clawlan_frontend_client = 0) {\n        return 403;" in text


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

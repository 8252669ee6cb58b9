"""The frontend's egress side, its balancer (HAProxy): plain HTTP on loopback in, mutual TLS to the backends out.

This is the path the gateway uses: it never holds the frontend's private key.
"""

from __future__ import annotations

import json

import pytest

from roles.mtls.config import BALANCER_UNIT, OLD_EGRESS_CONF
from tests.compliance import test_services as service_controls
from tests.e2e.conftest import deploy, run_control, wait_until_passes
from tests.support.remote import curl, last_chat_logged, listening_addresses, put_text, unit_property

FRONTEND, BACKEND = "lab-front", "lab-back"
HEADERS = "/root/.clawlan-egress-headers"


@pytest.fixture(scope="module")
def front(hosts, site):
    host = hosts[FRONTEND]
    # The backend suite ends by restarting the model server: the balancer takes it back at its next passed check.
    wait_until_passes(run_control, service_controls.test_LB_02_pool_healthy, host, site, FRONTEND, timeout_s=30)
    key = site.control.model_server_api_key_file.read_text().strip()
    put_text(host, HEADERS, f'header = "Authorization: Bearer {key}"\n')
    return host


@pytest.fixture(scope="module")
def egress_url(site):
    return f"http://127.0.0.1:{site.egress_config(FRONTEND).port}/v1/chat/completions"


def ask(front, url, stream=False, config=HEADERS):
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 6, "stream": stream}
    return curl(front, url, "--no-buffer", body=body, config=config)


def test_a_chat_through_the_egress_proxy_reaches_the_model(front, egress_url):
    code, text, _ = ask(front, egress_url)
    assert code == 200, text
    assert json.loads(text)["usage"]["completion_tokens"] == 6


def test_a_stream_through_the_egress_proxy_arrives_token_by_token(front, egress_url):
    code, text, _ = ask(front, egress_url, stream=True)
    assert code == 200, text
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")]
    # A chunk per token, but Qwen's vocabulary is byte-level: a character split over two to four tokens arrives whole,
    # in one chunk (the server holds back an incomplete UTF-8 sequence). Six tokens: at least two chunks.
    assert 2 <= len([c for c in contents if c]) <= 6, contents


def test_the_backend_saw_the_frontends_certificate(front, egress_url, hosts, site):
    ask(front, egress_url)
    log = last_chat_logged(hosts[BACKEND])
    assert f'"{site.pki_config(FRONTEND).issuance.spec.subject_dn()}"' in log and " 200 " in log


def test_the_api_key_is_still_required(front, egress_url):
    code, _, _ = ask(front, egress_url, config=None)
    assert code == 401


def test_the_egress_proxy_listens_on_loopback_only(hosts, site):
    service_controls.test_NET_03_egress_on_loopback(hosts[FRONTEND], site, FRONTEND)


# What an earlier clawlan left on a frontend: nginx as the egress proxy, on the port the balancer now takes.
OLD_EGRESS_SITE = """upstream clawlan_backend {{ server {backend}:{port}; }}
server {{
    listen 127.0.0.1:{egress_port};
    location / {{ proxy_pass https://clawlan_backend; proxy_ssl_certificate /etc/clawlan/pki/host.crt;
                 proxy_ssl_certificate_key /etc/clawlan/pki/host.key; }}
}}
"""


def test_a_frontend_with_the_old_nginx_egress_proxy_moves_to_the_balancer(front, egress_url, site):
    """The upgrade: nginx holds the egress port; the deploy removes its site and stops nginx before HAProxy runs."""
    egress = site.egress_config(FRONTEND)
    front.run_expect([0], f"systemctl stop {BALANCER_UNIT}")
    front.run_expect([0], "DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx")
    put_text(front, OLD_EGRESS_CONF, OLD_EGRESS_SITE.format(
        backend=egress.members[0].address, port=egress.upstream_port, egress_port=egress.port), 0o644)  # fmt: skip
    front.run_expect([0], "rm -f /etc/nginx/sites-enabled/default && systemctl restart nginx")
    assert listening_addresses(front).count(f"127.0.0.1:{egress.port}") == 1
    result = deploy()
    changed = result.changed_ops(FRONTEND)
    assert any("Remove the old nginx egress proxy" in op for op in changed), changed
    assert not front.file(OLD_EGRESS_CONF).exists
    assert unit_property(front, "nginx.service", "ActiveState") == "inactive"  # not left idle on the LAN box
    assert unit_property(front, "nginx.service", "UnitFileState") == "disabled"
    service_controls.test_NET_03_egress_on_loopback(front, site, FRONTEND)
    assert front.check_output(f"ss -Htlnp 'sport = :{egress.port}'").count("haproxy") >= 1
    code, text, _ = ask(front, egress_url)
    assert code == 200, text
    assert deploy().changed == set()

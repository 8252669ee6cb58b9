"""Both ends of the mtls role's path: the backend's ingress (TLS 1.3, frontends' client certificates only) and the
frontend's balancer (verifies each backend by name, checks health, caps each at its slots, retries connections only);
streaming untouched at both."""

from roles.common.templates import render
from roles.mtls.config import PoolMember, build_egress_config, build_ingress_config
from roles.mtls.settings import MtlsSettings

CAPTURE_SOCKET = "/run/capture.sock"
WARM_MARKER = "/run/model-server/warm"
FRONTEND_DN = "CN=front.home.arpa,OU=frontend,O=clawlan"
MONITOR_DN = "CN=front.home.arpa,OU=monitor,O=clawlan"


def rendered(health_upstream_path="/health", upstream_idle_close_s=5, **settings):
    config = build_ingress_config(
        MtlsSettings(**settings), "10.0.0.20", 8000, (FRONTEND_DN,), MONITOR_DN, "/state/secrets/key",
        health_upstream_path, upstream_idle_close_s, CAPTURE_SOCKET, WARM_MARKER,
    )  # fmt: skip
    return render("mtls/ingress.conf.j2", **config.__dict__)


def test_listens_on_the_lan_address_only_with_tls13_and_client_certificates():
    text = rendered(port=9443)
    # Keepalive probes find a frontend gone silent mid-answer: 10 s idle, 3 probes 5 s apart.
    assert "listen 10.0.0.20:9443 ssl so_keepalive=10s:5s:3;" in text
    assert "ssl_protocols TLSv1.3;" in text
    assert "ssl_verify_client on;" in text
    assert "ssl_client_certificate /etc/clawlan/pki/ca.crt;" in text
    assert "ssl_crl /etc/clawlan/pki/crl.pem;" in text  # a retired box's certificate is refused at once


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


def test_the_balancers_health_check_reads_the_engines_readiness_with_the_key_added():
    """llama-server's /health needs no key; llama-cpp-python has none, and its model list needs the key."""
    for upstream in ("/health", "/v1/models"):
        health = rendered(upstream).split("location = /health {")[1].split("location / {")[0]
        assert f"proxy_pass http://clawlan_model_server{upstream};" in health
        assert "if ($clawlan_client != frontend) {\n            return 403;" in health
        assert "include /etc/nginx/clawlan-metrics-key.conf;" in health
        assert "access_log off;" in health  # a check a second would drown the chats in the log


def location(text: str, name: str) -> str:
    """The block of ``location name {`` in the ingress's configuration, to its closing brace."""
    return text.split(f"    location {name} {{\n")[1].split("\n    }\n")[0]


def test_the_balancers_admit_a_backend_only_once_its_model_server_is_warm():
    """The model server makes the marker after its warm-up; the check answers 503 without it, before anything is
    asked of the server, and only frontends learn either way."""
    health = location(rendered(), "= /health")
    refused, marker, proxied = (health.index(s) for s in ("return 403;", "return 503;", "proxy_pass"))
    assert refused < marker < proxied
    assert f"if (!-f {WARM_MARKER}) {{\n            return 503;\n        }}" in health


def test_every_chat_is_mirrored_to_the_prefix_capture_and_nothing_else_is():
    text = rendered(max_body_mib=24)
    chats = location(text, "= /v1/chat/completions")
    assert "mirror /clawlan-prefix-capture;" in chats
    assert "mirror_request_body on;" in chats
    # The mirror reads the whole body first: in memory, so no chat lands in nginx's temporary files.
    assert "client_body_buffer_size 24m;" in chats
    assert "if ($clawlan_client != frontend) {\n            return 403;" in chats  # before the mirror runs
    # Otherwise as any other request to the model server: streamed, unbuffered, the same upstream and timeouts.
    assert chats.split("\n        mirror ")[0] == location(text, "/")
    assert [line for line in text.splitlines() if line.strip().startswith("mirror ")] == [
        "        mirror /clawlan-prefix-capture;"
    ]  # the chats' location alone


def test_the_mirror_carries_no_header_of_the_client_and_gives_up_quickly():
    capture = location(rendered(), "= /clawlan-prefix-capture")
    assert "internal;" in capture  # no client can ask for it
    assert f"proxy_pass http://unix:{CAPTURE_SOCKET}:/;" in capture
    assert "proxy_pass_request_headers off;" in capture  # neither the session's id nor anything else
    assert 'proxy_set_header Authorization "";' in capture  # nor the model server's key
    assert "include" not in capture
    # The next request on a frontend's connection waits for its mirror: a stuck capture may not hold it long.
    for line in ("proxy_connect_timeout 1s;", "proxy_send_timeout 2s;", "proxy_read_timeout 2s;"):
        assert line in capture, line


def test_idle_upstream_connections_are_let_go_before_the_model_server_closes_them():
    """A chat sent down a connection the server is closing fails with 502 (nginx never resends a POST): seen once in
    CI, with more chats in flight than slots."""
    assert "keepalive_timeout 2s;" in rendered(upstream_idle_close_s=5).split("upstream clawlan_model_server {")[1]
    assert "keepalive_timeout 1s;" in rendered(upstream_idle_close_s=1)


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


MEMBERS = (
    PoolMember("back", "10.0.0.20", "back.home.arpa", 4),
    PoolMember("back2", "10.0.0.21", "back2.home.arpa", 1),
)


def egress(members=MEMBERS, **settings):
    config = build_egress_config(MtlsSettings(**settings), "llm.home.arpa", members, "10.0.0.10", "10.0.0.11")
    return render("mtls/haproxy.cfg.j2", **config.__dict__)


def server_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("    server ")]


def test_the_balancer_takes_chats_on_loopback_only():
    text = egress(egress_port=18181)
    assert "    bind 127.0.0.1:18181\n" in text
    assert text.count("    bind ") == 2  # and the metrics listener


def test_every_backend_is_verified_by_its_own_name_over_tls13_with_the_frontends_certificate():
    text = egress()
    assert "ssl-server-verify required" in text
    assert (
        "default-server check inter 1s fall 2 rise 1 observe layer7 error-limit 3 on-error mark-down "
        "on-marked-down shutdown-sessions ssl verify "
        "required ca-file /etc/clawlan/pki/ca.crt crl-file /etc/clawlan/pki/crl.pem crt /etc/clawlan/pki/host.crt "
        "ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3"
    ) in text
    assert "ssl-load-extra-del-ext" in text  # crt host.crt takes its key from host.key
    # A backend that dies mid-answer: its chats end when it is marked down, or by keepalive within 25 s.
    assert "option srvtcpka\n    srvtcpka-idle 10s\n    srvtcpka-intvl 5s\n    srvtcpka-cnt 3\n" in text
    assert server_lines(text) == [
        "server back 10.0.0.20:8443 maxconn 4 sni str(back.home.arpa) check-sni back.home.arpa "
        "verifyhost back.home.arpa",
        "server back2 10.0.0.21:8443 maxconn 1 sni str(back2.home.arpa) check-sni back2.home.arpa "
        "verifyhost back2.home.arpa",
    ]


def test_a_backend_gets_no_more_chats_than_its_slots_the_rest_queue_at_the_balancer():
    text = egress(balancer_queue_timeout_s=45)
    assert "balance leastconn" in text
    assert [line.split(" maxconn ")[1].split()[0] for line in server_lines(text)] == ["4", "1"]
    assert "timeout queue 45s" in text


def test_health_is_checked_on_the_ingress_every_second():
    text = egress()
    assert "option httpchk" in text
    assert "http-check send meth GET uri /health ver HTTP/1.1 hdr Host llm.home.arpa" in text
    assert "http-check expect status 200" in text


def test_the_balancer_retries_connections_not_requests():
    text = egress(connect_retries=2, connect_timeout_s=7)
    assert "retries 2" in text
    assert "retry-on conn-failure\n" in text  # nothing a backend may have started answering
    assert "option redispatch 1" in text  # each retry on another backend
    assert "timeout connect 7s" in text


def test_tokens_stream_through_the_balancer_at_once():
    text = egress(read_timeout_s=120)
    assert "option http-no-delay" in text
    assert "timeout server 120s" in text
    assert "http-buffer-request" not in text


def test_the_balancers_metrics_answer_the_monitor_and_its_own_box_only():
    text = egress(balancer_metrics_port=8499)
    metrics = text.split("frontend clawlan_metrics")[1]
    assert "bind 10.0.0.10:8499" in metrics
    assert "tcp-request connection reject unless { src 10.0.0.10 10.0.0.11 }" in metrics
    assert "use-service prometheus-exporter if { path /metrics }" in metrics


def test_both_ends_admit_the_same_largest_request():
    """A request the frontend's balancer lets through must not be refused by the backend's nginx."""
    assert "if { req.hdr_val(content-length) gt 25165824 }" in egress(max_body_mib=24)
    assert "client_max_body_size 24m;" in rendered(max_body_mib=24)


def test_a_session_stays_on_its_backend_and_a_client_naming_none_is_placed_by_load():
    text = egress()
    assert "    balance leastconn\n" in text
    assert "    stick-table type string len 128 size 100000 expire 3600s peers clawlan_sessions\n" in text
    # The session id is the header's part before the colon (OpenClaw sends <session id>:<n>).
    assert "    stick on req.hdr(x-session-affinity),field(1,:) if { req.hdr(x-session-affinity) -m found }\n" in text


def test_a_reload_hands_the_sessions_backends_to_the_new_process():
    """The stick table's only peer is the balancer itself, on loopback: a reload's new process takes the table."""
    text = egress(balancer_peers_port=8499)
    assert "    localpeer clawlan-balancer\n" in text.split("defaults")[0]
    peers = text.split("peers clawlan_sessions\n")[1].split("\n\n")[0]
    assert peers == "    peer clawlan-balancer 127.0.0.1:8499"

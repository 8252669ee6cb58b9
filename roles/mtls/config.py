"""The TLS path between the boxes, resolved from settings and the site: nginx's ingress on each backend, HAProxy's
balancer on each frontend."""

from __future__ import annotations

from dataclasses import dataclass

from roles.common.tls import CA_CERT, CRL, HOST_CERT, HOST_KEY
from roles.mtls.settings import MtlsSettings

CONF = "/etc/nginx/conf.d/clawlan-llm.conf"
# The model server's key as an nginx directive for the monitor's /metrics and the balancers' health checks: root's
# only (nginx's master reads its configuration as root), outside conf.d so nginx does not load it on its own.
METRICS_KEY_CONF = "/etc/nginx/clawlan-metrics-key.conf"
# Before the balancer, the frontend's egress proxy was nginx with this site: the deploy removes it (it held the port).
OLD_EGRESS_CONF = "/etc/nginx/conf.d/clawlan-egress.conf"
BALANCER_CONF = "/etc/haproxy/haproxy.cfg"  # Debian's unit reads this one (and checks it before a reload)
BALANCER_UNIT = "haproxy.service"
INGRESS_UNIT = "nginx.service"
WORKER_GROUP = "www-data"  # Debian's nginx.conf drops its workers to www-data: the ingress's requests come from them
# Debian's units, kept, with our hardening as a drop-in of each (and nginx's Restart=): never an edited unit file.
HARDENING = {INGRESS_UNIT: "mtls/nginx-hardening.conf.j2", BALANCER_UNIT: "mtls/haproxy-hardening.conf.j2"}

BALANCER_PROXY = "model_servers"  # HAProxy's name for the pool: the proxy label of its metrics
# Health checks: every second, two failures take a backend out, one pass puts it back. A backend that goes bad just
# after a passed check is out within ~3 s (two checks, each allowed a second), inside the 5 s; one that is
# ready again (a model server restarted by a deploy) serves within a second: on a one-backend site, the balancer
# answers 503 until then.
CHECK_INTERVAL_S = 1
CHECK_FALL = 2
CHECK_RISE = 1
# Chats failing in a row (5xx but 501/505, or no connection) that take a backend out between checks. Three, not one:
# a client's bad request that makes one backend answer 500 must not empty the pool.
ERROR_LIMIT = 3
HEALTH_PATH = "/health"  # on the ingress: the model server's readiness, for frontend certificates
# TCP keepalive on the connections between the boxes, both ends. A backend that loses power mid-answer sends nothing
# more, not even a reset, and a chat would wait out the read timeout (minutes: a cold prompt is slow). After
# KEEPALIVE_IDLE_S of silence the kernel probes every KEEPALIVE_INTERVAL_S; KEEPALIVE_PROBES unanswered end the
# connection: a dead peer fails its chats within DEAD_PEER_S.
KEEPALIVE_IDLE_S = 10
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_PROBES = 3
DEAD_PEER_S = KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S * KEEPALIVE_PROBES
# Session affinity: the gateway names the conversation on every upstream request (OpenClaw's
# sendSessionAffinityHeaders: "x-session-affinity: <session id>:<n>"), and the balancer keeps a session on the backend
# that evaluated its prompt, whose cache holds it: elsewhere its whole prompt is evaluated again (tens of seconds on
# the reference box). A session idle this long is forgotten (its cache is likely gone too) and placed by load again.
AFFINITY_HEADER = "x-session-affinity"
AFFINITY_IDLE_S = 3600
AFFINITY_SESSIONS = 100_000  # remembered at once: ~100 bytes each in HAProxy's memory
# The one peer of the balancer's peers section: itself. A reload's new process learns the stick table from the old
# one through it, so sessions keep their backends (and their caches) across a deploy that reloads the balancer.
LOCAL_PEER = "clawlan-balancer"


@dataclass(frozen=True)
class IngressConfig:
    listen_address: str
    port: int
    upstream_port: int
    allowed_client_dns: tuple[str, ...]  # subject DNs of the frontend hosts' certificates
    monitor_dn: str  # the monitor's client certificate: /metrics only
    api_key_file: str  # on the control machine: the model server's key, added to the monitor's requests
    read_timeout_s: int
    max_body_mib: int
    upstream_keepalive: int
    health_upstream_path: str  # what answers HEALTH_PATH on the model server: 200 once the model is loaded
    upstream_idle_s: int  # nginx lets an idle upstream connection go before the model server closes it
    capture_socket: str  # the prompt prefix capture's unix socket: every chat's body is mirrored to it
    warm_marker: str  # the file the model server makes once warm: HEALTH_PATH answers 503 without it
    cert: str = HOST_CERT
    key: str = HOST_KEY
    ca: str = CA_CERT
    crl: str = CRL  # certificates the site retired: refused though the CA signed them
    metrics_key_conf: str = METRICS_KEY_CONF
    health_path: str = HEALTH_PATH
    keepalive_idle_s: int = KEEPALIVE_IDLE_S
    keepalive_interval_s: int = KEEPALIVE_INTERVAL_S
    keepalive_probes: int = KEEPALIVE_PROBES


@dataclass(frozen=True)
class PoolMember:
    """One backend in a frontend's balancer."""

    name: str  # the inventory name: HAProxy's server name and its metrics' server label
    address: str  # the pinned LAN address
    server_name: str  # the backend's own FQDN: its certificate must carry it (SNI and verification)
    slots: int  # chats it serves at once: the balancer sends it no more and queues the rest


@dataclass(frozen=True)
class EgressConfig:
    """The frontend's balancer: loopback in (plain HTTP from the gateway), mutual TLS out to every backend."""

    port: int  # on 127.0.0.1
    service_name: str  # the backends' shared name (llm.<domain>): the Host requests and health checks carry
    members: tuple[PoolMember, ...]
    upstream_port: int
    connect_timeout_s: int
    connect_retries: int
    read_timeout_s: int
    queue_timeout_s: int
    max_body_mib: int  # the same limit as the ingress: a request the balancer admits, the backend admits too
    metrics_address: str  # the frontend's LAN address: HAProxy's Prometheus exporter
    metrics_port: int
    metrics_clients: tuple[str, ...]  # addresses allowed to read it: the monitor and the frontend itself
    peers_port: int  # loopback: the stick table's hand-over from a reloading HAProxy to its successor
    cert: str = HOST_CERT
    key: str = HOST_KEY
    ca: str = CA_CERT
    crl: str = CRL  # certificates the site retired: refused though the CA signed them
    proxy: str = BALANCER_PROXY
    health_path: str = HEALTH_PATH
    check_interval_s: int = CHECK_INTERVAL_S
    check_fall: int = CHECK_FALL
    check_rise: int = CHECK_RISE
    error_limit: int = ERROR_LIMIT
    keepalive_idle_s: int = KEEPALIVE_IDLE_S
    keepalive_interval_s: int = KEEPALIVE_INTERVAL_S
    keepalive_probes: int = KEEPALIVE_PROBES
    affinity_header: str = AFFINITY_HEADER
    affinity_idle_s: int = AFFINITY_IDLE_S
    affinity_sessions: int = AFFINITY_SESSIONS
    local_peer: str = LOCAL_PEER


def build_egress_config(
    settings: MtlsSettings,
    service_name: str,
    members: tuple[PoolMember, ...],
    address: str,
    monitor_address: str,
) -> EgressConfig:
    return EgressConfig(
        port=settings.egress_port,
        service_name=service_name,
        members=members,
        upstream_port=settings.port,
        connect_timeout_s=settings.connect_timeout_s,
        connect_retries=settings.connect_retries,
        read_timeout_s=settings.read_timeout_s,
        queue_timeout_s=settings.balancer_queue_timeout_s,
        max_body_mib=settings.max_body_mib,
        metrics_address=address,
        metrics_port=settings.balancer_metrics_port,
        peers_port=settings.balancer_peers_port,
        metrics_clients=tuple(sorted({address, monitor_address})),
    )


def build_ingress_config(
    settings: MtlsSettings,
    address: str,
    upstream_port: int,
    frontend_dns: tuple[str, ...],
    monitor_dn: str,
    api_key_file: str,
    health_upstream_path: str,
    upstream_idle_close_s: int,
    capture_socket: str,
    warm_marker: str,
) -> IngressConfig:
    return IngressConfig(
        listen_address=address,
        port=settings.port,
        upstream_port=upstream_port,
        allowed_client_dns=frontend_dns,
        monitor_dn=monitor_dn,
        api_key_file=api_key_file,
        read_timeout_s=settings.read_timeout_s,
        max_body_mib=settings.max_body_mib,
        upstream_keepalive=settings.upstream_keepalive,
        health_upstream_path=health_upstream_path,
        # Half the server's idle time, at least a second: nginx must drop the connection well before the server
        # does, even when a busy host handles its timer late.
        upstream_idle_s=max(1, upstream_idle_close_s // 2),
        capture_socket=capture_socket,
        warm_marker=warm_marker,
    )

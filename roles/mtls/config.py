"""The TLS ingress on the backend, resolved from settings and the site."""

from __future__ import annotations

from dataclasses import dataclass

from roles.common.tls import CA_CERT, HOST_CERT, HOST_KEY
from roles.mtls.settings import MtlsSettings

CONF = "/etc/nginx/conf.d/clawlan-llm.conf"
# The model server's key as an nginx directive for the monitor's /metrics requests: root's only (nginx's master
# reads its configuration as root), outside conf.d so nginx does not load it on its own.
METRICS_KEY_CONF = "/etc/nginx/clawlan-metrics-key.conf"
EGRESS_CONF = "/etc/nginx/conf.d/clawlan-egress.conf"


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
    cert: str = HOST_CERT
    key: str = HOST_KEY
    ca: str = CA_CERT
    metrics_key_conf: str = METRICS_KEY_CONF


@dataclass(frozen=True)
class EgressConfig:
    port: int  # on 127.0.0.1
    upstream_name: str  # the backend's pinned name; its certificate must carry it
    upstream_port: int
    connect_timeout_s: int
    connect_retries: int
    read_timeout_s: int
    max_body_mib: int  # the same limit as the ingress: a request the egress admits, the backend admits too
    upstream_keepalive: int
    cert: str = HOST_CERT
    key: str = HOST_KEY
    ca: str = CA_CERT


def build_egress_config(settings: MtlsSettings, upstream_name: str) -> EgressConfig:
    return EgressConfig(
        port=settings.egress_port,
        upstream_name=upstream_name,
        upstream_port=settings.port,
        connect_timeout_s=settings.connect_timeout_s,
        connect_retries=settings.connect_retries,
        read_timeout_s=settings.read_timeout_s,
        max_body_mib=settings.max_body_mib,
        upstream_keepalive=settings.upstream_keepalive,
    )


def build_ingress_config(
    settings: MtlsSettings,
    address: str,
    upstream_port: int,
    frontend_dns: tuple[str, ...],
    monitor_dn: str,
    api_key_file: str,
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
    )

"""Settings of the mtls role (nginx in front of each model server, HAProxy on each frontend balancing across
them): inventory keys ``mtls_*``."""

from __future__ import annotations

from dataclasses import dataclass

from roles.common.settings import setting
from roles.common.values.numbers import Port, WholeNumber


@dataclass(frozen=True)
class MtlsSettings:
    port: int = setting(8443, "The backend's one LAN port for the model: TLS 1.3, frontend certificates only.",
                        Port(), site_wide=True)  # fmt: skip
    read_timeout_s: int = setting(
        600, "Longest silence from the model server: a 13k-token prompt takes ~25 s cold before the first token.",
        WholeNumber(5, 3600),
    )  # fmt: skip
    max_body_mib: int = setting(16, "Largest request: gateway prompts carry ~13k tokens and tool definitions.",
                                WholeNumber(1, 1024))  # fmt: skip
    upstream_keepalive: int = setting(
        8, "Idle connections nginx keeps open upstream, so a request never waits for a TLS handshake.",
        WholeNumber(0, 1024),
    )  # fmt: skip
    egress_port: int = setting(
        18080, "Loopback port of the frontend's balancer (HAProxy), the gateway's only way to the model.",
        Port(),
    )  # fmt: skip
    connect_timeout_s: int = setting(
        30, "The seeds' 30 s timeout, applied where it is safe: connecting to the backend, not generating.",
        WholeNumber(1, 600),
    )  # fmt: skip
    connect_retries: int = setting(
        3, "The seeds' 3 retries: the balancer retries a failed connection (never a sent request).",
        WholeNumber(0, 10),
    )  # fmt: skip
    balancer_queue_timeout_s: int = setting(
        300, "How long a chat waits at the balancer for a free slot before it gets 503: a few answers' time.",
        WholeNumber(1, 3600),
    )  # fmt: skip
    balancer_metrics_port: int = setting(
        8405, "HAProxy's Prometheus exporter on each frontend's LAN address (HAProxy's usual port), monitor only.",
        Port(),
    )  # fmt: skip
    balancer_peers_port: int = setting(
        8406, "On loopback: a reloading HAProxy hands its sessions' backends to the new process over it.",
        Port(),
    )  # fmt: skip

"""Settings of the monitoring stack (node exporters, latency probe, Prometheus, alerts): inventory keys ``monitor_*``.

Every ``monitor_*`` key is site-wide: one Prometheus evaluates one set of rules for the whole site.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from roles.common.settings import all_site_wide, setting
from roles.common.values.containers import OrEmpty
from roles.common.values.network import DnsLabel, HostName, PrivateNetworks
from roles.common.values.numbers import Choice, Either, Number, Port, WholeNumber
from roles.common.values.paths import ControlPath, Url
from roles.common.values.text import EmailAddress, Pattern

# The probe's decode alert sits this far below the site's decode target (latency_tokens_per_second) unless the
# inventory sets its own: one short probe chat is noisier than the latency suite's median of many.
ALERT_FLOOR_PERCENT = 80


@all_site_wide  # one Prometheus, one set of rules and targets for the whole site
@dataclass(frozen=True)
class MonitorSettings:
    host: str = setting(
        "", "Inventory name of the host that runs Prometheus; empty = the first frontend (always on).",
        OrEmpty(DnsLabel(), "the first frontend"),
    )  # fmt: skip
    prometheus_port: int = setting(9090, "Prometheus' web UI and API on the monitor's LAN address (usual port).",
                                   Port())  # fmt: skip
    node_exporter_port: int = setting(9100, "Node exporter on each host's LAN address, reachable by the monitor only.",
                                      Port())  # fmt: skip
    probe_port: int = setting(9464, "The latency probe's /metrics on each frontend's LAN address, monitor only.",
                              Port())  # fmt: skip
    client_networks: tuple[str, ...] = setting(
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
        "Networks allowed to open the Prometheus UI (systemd IP filter): the LAN, never the internet.",
        PrivateNetworks(),
    )
    scrape_interval_s: int = setting(15, "Seconds between scrapes and rule evaluations (Prometheus' usual pace).",
                                     WholeNumber(1, 300))  # fmt: skip
    retention_days: int = setting(30, "Days of history Prometheus keeps: a month to compare before and after a change.",
                                  WholeNumber(1, 3650))  # fmt: skip
    probe_interval_s: int = setting(
        60,
        "Seconds between probe rounds (start to start): a single-slot server gives ~1 % of its time to probing.",
        WholeNumber(2, 3600),
    )
    probe_timeout_s: int = setting(
        60, "Seconds a probe may take: a cold 13k-token prompt takes ~25 s on the reference box.", WholeNumber(1, 600)
    )
    probe_max_tokens: int = setting(16, "Tokens each probe asks for: enough gaps for inter-token latency, cheap.",
                                    WholeNumber(2, 256))  # fmt: skip
    alert_memory_used_percent: float = setting(85.0, "Memory in use that raises an alert (the seeds' 85 %).",
                                               Number(1, 100))  # fmt: skip
    alert_memory_for_s: int = setting(300, "How long memory must stay above that first (the seeds' 5 minutes).",
                                      WholeNumber(0, 86400))  # fmt: skip
    alert_memory_available_floor_gib: float = setting(
        2.0, "Available memory below this alerts at once (for: 1m): the OOM killer is next.", Number(0, 1024)
    )
    alert_swap_growth_for_s: int = setting(900, "Swap use growing this long alerts: the model is being paged out.",
                                           WholeNumber(60, 86400))  # fmt: skip
    alert_packet_loss_percent: float = setting(1.0, "Dropped packets or TCP retransmits above this % (the seeds' 1 %).",
                                               Number(0.01, 100))  # fmt: skip
    alert_ttft_p99_s: float = setting(1.0, "Probe time to first token p99 above this alerts (the seeds' P99 > 1 s).",
                                      Number(0.01, 600))  # fmt: skip
    alert_tokens_per_second_floor: float | Literal["auto"] = setting(
        "auto",
        f"The probe's decode speed below this alerts; 0 = never. auto: {ALERT_FLOOR_PERCENT} % of "
        "latency_tokens_per_second, the target the latency suite holds a median of many chats to (one probe is "
        "noisier).",
        Either(Number(0, 100000), Choice("auto")),
    )
    alert_latency_for_s: int = setting(600, "How long latency or speed must miss target: one slow chat is no trend.",
                                       WholeNumber(0, 86400))  # fmt: skip
    alert_probe_failing_for_s: int = setting(120, "How long the probe must fail before alerting (two probe rounds).",
                                             WholeNumber(0, 86400))  # fmt: skip
    alert_down_for_s: int = setting(120, "How long an exporter or a clawlan unit must be down before alerting.",
                                    WholeNumber(0, 86400))  # fmt: skip
    alert_queue_for_s: int = setting(
        60, "Chats waiting for a free model server slot this long alert: people are queueing.", WholeNumber(0, 86400)
    )
    alert_context_full_percent: float = setting(
        90.0, "A chat filling more of its slot's context than this alerts: longer ones get cut.", Number(1, 100)
    )
    alert_backend_out_for_s: int = setting(
        120,
        "A backend out of a balancer's pool this long alerts: chats still flow, on fewer boxes.",
        WholeNumber(0, 86400),
    )
    alert_backends_min: int = setting(
        1,
        "Fewer healthy backends than this in a balancer's pool alerts (critical): too little capacity.",
        WholeNumber(1, 64),
    )
    alert_certificate_for_s: int = setting(
        600, "A certificate inside its renewal window this long alerts: a deploy renewing it right now finishes first.",
        WholeNumber(0, 86400),
    )  # fmt: skip
    alert_disk_free_percent: float = setting(10.0, "Free space below this % on any disk alerts (the model's volume).",
                                             Number(0.1, 99))  # fmt: skip
    alert_gpu_memory_percent: float = setting(
        85.0, "GPU memory in use above this % for 5 minutes alerts (the seeds' 85 %); on unified memory, of the GTT.",
        Number(1, 100),
    )  # fmt: skip
    alert_gpu_temperature_celsius: float = setting(
        90.0, "A GPU's edge temperature above this for 5 minutes alerts: the Radeon 8060S throttles near 100 °C.",
        Number(40, 120),
    )  # fmt: skip
    rules_file: str = setting(
        "", "A site's own Prometheus rules file on the control machine, loaded beside clawlan's (checked by promtool).",
        OrEmpty(ControlPath(), "clawlan's rules only"),
    )  # fmt: skip
    alertmanager_port: int = setting(
        9093, "Alertmanager's UI and API on the monitor's LAN address, for monitor_client_networks only.", Port()
    )
    alert_webhook_url: str = setting(
        "", "Alerts POSTed here as Alertmanager's JSON (a home-automation or ntfy-style endpoint on the LAN).",
        OrEmpty(Url(), "no webhook"),
    )  # fmt: skip
    alert_email_to: str = setting("", "Alerts mailed here, through alert_smtp_host.",
                                  OrEmpty(EmailAddress(), "no e-mail"))  # fmt: skip
    alert_email_from: str = setting("", "The From: of alert mails (the relay may insist on its own account).",
                                    OrEmpty(EmailAddress(), "alertmanager@<the monitor's FQDN>"))  # fmt: skip
    alert_smtp_host: str = setting("", "The mail relay for alert mails (STARTTLS required).",
                                   OrEmpty(HostName(), "no e-mail"))  # fmt: skip
    alert_smtp_port: int = setting(587, "The relay's submission port.", Port())
    alert_smtp_username: str = setting(
        "", "The relay account; its password is site_state_dir/secrets/alert-smtp-password (0600), never here.",
        OrEmpty(Pattern(r"[A-Za-z0-9._%+@-]+", "a login name (letters, digits, . _ % + @ -)"), "no login"),
    )  # fmt: skip
    alert_watchdog_url: str = setting(
        "", "A dead man's switch (a healthchecks-style URL) the always-firing Watchdog alert is sent to every minute.",
        OrEmpty(Url(), "the Watchdog shows in Alertmanager only"),
    )  # fmt: skip
    alert_group_wait_s: int = setting(30, "Alertmanager waits this long to gather an alert's group before notifying.",
                                      WholeNumber(0, 3600))  # fmt: skip
    alert_group_interval_s: int = setting(
        300, "New and resolved alerts of a group already notified wait this long to be sent together.",
        WholeNumber(1, 86400),
    )  # fmt: skip
    alert_repeat_interval_s: int = setting(
        14400, "A firing alert is sent again this often (4 h: a reminder, not a flood).", WholeNumber(60, 604800)
    )


def with_alert_floor(settings: MonitorSettings, decode_target: float) -> MonitorSettings:
    """``settings`` with an 'auto' decode alert floor made a number: ALERT_FLOOR_PERCENT of the site's target."""
    if settings.alert_tokens_per_second_floor != "auto":
        return settings
    return replace(settings, alert_tokens_per_second_floor=decode_target * ALERT_FLOOR_PERCENT / 100)

"""Alerts about one box: its memory, swap, network, disks and our long-running units on it.

Series: the node exporters, job="node", instance = the inventory host name.
"""

from __future__ import annotations

from roles.monitor.alerts.model import (
    DEPLOY,
    INSTANCE,
    VALUE_BYTES,
    AlertGroup,
    AlertRule,
    AlertThresholds,
    gib_to_bytes,
    label,
    number,
    prometheus_duration,
    prose,
    unit_regex,
    value_as,
)

DEVICE = label("device")
MOUNTPOINT = label("mountpoint")
UNIT = label("name")


def group(t: AlertThresholds) -> AlertGroup:
    memory_for = prometheus_duration(t.memory_for_s)
    swap_for = prometheus_duration(t.swap_growth_for_s)
    down_for = prometheus_duration(t.down_for_s)
    loss = number(t.packet_loss_percent)
    rules = (
        AlertRule(
            name="ClawlanMemoryHigh",
            expr=(
                '(1 - node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"}) * 100\n'
                f"  > {number(t.memory_used_percent)}"
            ),
            for_s=t.memory_for_s,
            severity="warning",
            summary=prose(f"""
                Memory {value_as("%.1f")} % in use on {INSTANCE},
                above {number(t.memory_used_percent)} % for {memory_for}
            """),
            description=prose(f"""
                Find what holds it: on {INSTANCE} run `ps -eo pid,rss,cmd --sort=-rss | head` and
                `systemd-cgtop -m`. On the backend the model server should be the bulk (weights and context); if it
                grew, lower `model_server_context_tokens` or `model_server_prompt_cache_mib` in the inventory (or choose
                a smaller model) and rerun {DEPLOY}. Stop anything that does not belong on the appliance.
            """),
            why=prose("""
                Memory in use over the threshold for a while: the model's weights plus context leave little for the
                rest. Memory in use = not available (MemAvailable counts reclaimable page cache as free, so cache is
                no alarm).
            """),
            tuned_by=("monitor_alert_memory_used_percent", "monitor_alert_memory_for_s"),
        ),
        AlertRule(
            name="ClawlanMemoryAvailableLow",
            expr=f'node_memory_MemAvailable_bytes{{job="node"}} < {gib_to_bytes(t.memory_available_floor_gib)}',
            for_s=60,
            severity="critical",
            summary=prose(f"""
                Only {VALUE_BYTES} of memory available on {INSTANCE},
                below the {number(t.memory_available_floor_gib)} GiB floor
            """),
            description=prose(f"""
                Free memory now, before the OOM killer picks a process: on {INSTANCE} find the biggest
                with `ps -eo pid,rss,cmd --sort=-rss | head` and stop what does not belong on the appliance;
                `journalctl -k | grep -i oom` shows earlier kills. If the model server is the consumer, lower
                `model_server_context_tokens` in the inventory and rerun {DEPLOY}.
            """),
            why=prose("""
                Below the floor the OOM killer is next, and the model server is the biggest target: critical, and a
                for: of 1m only rides out a single scrape of a short spike.
            """),
            tuned_by=("monitor_alert_memory_available_floor_gib",),
        ),
        AlertRule(
            name="ClawlanSwapGrowing",
            expr=(
                '(node_memory_SwapTotal_bytes{job="node"} - node_memory_SwapFree_bytes{job="node"}) > 0\n'
                '  and deriv(node_memory_SwapFree_bytes{job="node"}[10m]) < 0'
            ),
            for_s=t.swap_growth_for_s,
            severity="warning",
            summary=prose(f"""
                Swap use on {INSTANCE} is {VALUE_BYTES}
                and has kept growing for {swap_for}
            """),
            description=prose(f"""
                Memory is being paged out. On {INSTANCE} check `free -h`, `vmstat 5` (columns si and so)
                and who holds swap: `grep VmSwap /proc/*/status | sort -k2 -n | tail`. Keep `model_server_mlock` on
                so the weights cannot be swapped, free memory (see ClawlanMemoryHigh), and rerun
                {DEPLOY} after changing the inventory.
            """),
            why=prose("""
                Swap in use and still growing: memory is being paged out, and paged-out weights cost seconds per
                token. deriv over 10m (40 scrapes) is a trend, not one burst; swap that was used once and stays flat
                is quiet.
            """),
            tuned_by=("monitor_alert_swap_growth_for_s",),
        ),
        AlertRule(
            name="ClawlanPacketLoss",
            expr=(
                "(\n"
                '    rate(node_network_receive_drop_total{job="node", device!="lo"}[5m])\n'
                '  + rate(node_network_transmit_drop_total{job="node", device!="lo"}[5m])\n'
                ")\n"
                "/ (\n"
                "  (\n"
                '      rate(node_network_receive_packets_total{job="node", device!="lo"}[5m])\n'
                '    + rate(node_network_transmit_packets_total{job="node", device!="lo"}[5m])\n'
                "  ) > 1\n"
                ")\n"
                f"* 100 > {loss}"
            ),
            for_s=300,
            severity="warning",
            summary=prose(f"""
                {value_as("%.2f")} % of packets dropped on {INSTANCE} {DEVICE}
                over 5m, above {loss} %
            """),
            description=prose(f"""
                On {INSTANCE} run `ip -s link show {DEVICE}` and
                `ethtool -S {DEVICE} | grep -i -e drop -e err`. Errors point at the cable, the switch port
                or a duplex mismatch (`ethtool {DEVICE}`); drops without errors at a saturated link or
                full receive rings (`ethtool -g {DEVICE}`). Chats through this link will stall.
            """),
            why=prose("""
                Dropped packets per host and interface over 5m, as a share of the packets that passed. Links under
                one packet a second count as idle: there a few dropped frames (Linux counts unknown protocols as
                drops) would be a large share of nothing, and an idle link never divides by zero. A dead link shows
                as other alerts.
            """),
            tuned_by=("monitor_alert_packet_loss_percent",),
        ),
        AlertRule(
            name="ClawlanTcpRetransmits",
            expr=(
                'rate(node_netstat_Tcp_RetransSegs{job="node"}[5m])\n'
                '  / (rate(node_netstat_Tcp_OutSegs{job="node"}[5m]) > 1)\n'
                f"  * 100 > {loss}"
            ),
            for_s=300,
            severity="warning",
            summary=prose(f"""
                {value_as("%.2f")} % of TCP segments retransmitted by {INSTANCE}
                over 5m, above {loss} %
            """),
            description=prose(f"""
                Packets get lost between {INSTANCE} and its peers. There, `ss -ti` shows retransmits per
                connection (which peer) and `nstat -az | grep -i retrans` the totals; a ClawlanPacketLoss alert on
                either host names the interface. Check cables, the switch and the link's speed and duplex with
                `ethtool`.
            """),
            why=prose("""
                TCP retransmits as a share of segments sent over 5m: loss anywhere on the path, also beyond this
                host's interfaces. Same idle guard as ClawlanPacketLoss: under one segment a second, a peer that went
                away is no network fault.
            """),
            tuned_by=("monitor_alert_packet_loss_percent",),
        ),
        AlertRule(
            name="ClawlanGpuHot",
            expr=(
                'node_hwmon_temp_celsius{job="node"}\n'
                '  * on (instance, chip) group_left (chip_name) node_hwmon_chip_names{job="node", chip_name="amdgpu"}\n'
                f"  > {number(t.gpu_temperature_celsius)}"
            ),
            for_s=300,
            severity="warning",
            summary=prose(f"""
                GPU sensor {label("sensor")} on {INSTANCE} reads {value_as("%.0f")} °C,
                above {number(t.gpu_temperature_celsius)} °C for 5m
            """),
            description=prose(f"""
                A hot GPU clocks down and answers slow down with it (ClawlanTokensPerSecondLow follows). Check the box's
                airflow and fans, the dust in its vents and the room's temperature; `sensors` on {INSTANCE} shows
                every reading. A sustained load at this heat shortens the hardware's life.
            """),
            why=prose("""
                amdgpu's own hwmon sensors (edge on an APU; junction and memory on a discrete card), picked by the
                chip's name. For 5m: a long prompt heats the chip for seconds, a blocked vent for good.
            """),
            tuned_by=("monitor_alert_gpu_temperature_celsius",),
        ),
        AlertRule(
            name="ClawlanDiskFilling",
            expr=(
                'node_filesystem_avail_bytes{job="node", fstype!~"tmpfs|ramfs|devtmpfs|squashfs|nsfs|overlay"}\n'
                f'  / node_filesystem_size_bytes{{job="node"}} * 100 < {number(t.disk_free_percent)}\n'
                '  unless node_filesystem_readonly{job="node"} == 1'
            ),
            for_s=600,
            severity="warning",
            summary=prose(f"""
                Only {value_as("%.1f")} % free on {MOUNTPOINT} ({DEVICE})
                on {INSTANCE},
                below {number(t.disk_free_percent)} %
            """),
            description=prose(f"""
                Find what grew: `du -xh --max-depth=2 {MOUNTPOINT} | sort -h | tail` on
                {INSTANCE}. Usual suspects: model files no longer used in /var/lib/clawlan/models,
                Prometheus' data in /var/lib/prometheus (lower `monitor_retention_days`), the journal
                (`journalctl --vacuum-size=500M`). A full disk stops Prometheus, logging and model downloads.
            """),
            why=prose("""
                Free space on real, writable filesystems. Left out: memory-backed ones (tmpfs, ramfs, devtmpfs:
                memory alerts cover them), read-only images (squashfs, always full), nsfs, and overlay (container
                layers, whose space is the disk below; the node exporter drops overlay by default, the lab's root
                included). A for: of 10m lets a download or a log rotation pass.
            """),
            tuned_by=("monitor_alert_disk_free_percent",),
        ),
        AlertRule(
            name="ClawlanUnitDown",
            expr=(f'node_systemd_unit_state{{job="node", state="active", name=~`{unit_regex(t.watched_units)}`}} == 0'),
            for_s=t.down_for_s,
            severity="critical",
            summary=prose(f"""
                {UNIT} is not active on {INSTANCE}
                for {down_for}
            """),
            description=prose(f"""
                Run `systemctl status {UNIT}` and `journalctl -u {UNIT} -n 100` on
                {INSTANCE} to see why it stopped or failed. Fix the cause, then rerun
                {DEPLOY}, which starts it again.
            """),
            why=prose("""
                A long-running clawlan unit is not active. Oneshots are not watched (inactive between runs by
                design); a unit absent from a host has no series at all. The regex is in backquotes: PromQL keeps its
                backslashes.
            """),
            tuned_by=("monitor_alert_down_for_s",),
        ),
    )
    return AlertGroup("host", "The boxes: memory, swap, network, disks, units", rules)

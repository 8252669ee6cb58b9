"""Alerts about room: chats waiting for a slot, and chats running out of context.

Series: each backend's llama-server (job="model_server") and each frontend's HAProxy exporter (job="balancer").
"""

from __future__ import annotations

from roles.monitor.alerts.model import (
    DEPLOY,
    INSTANCE,
    VALUE,
    AlertGroup,
    AlertRule,
    AlertThresholds,
    label,
    number,
    prometheus_duration,
    prose,
    value_as,
)


def context_limits(thresholds: AlertThresholds) -> list[tuple[str, int]]:
    """(backend, tokens): the longest sequence a chat may reach in its slot before the context alert fires."""
    share = thresholds.context_full_percent / 100
    return [(instance, int(tokens * share)) for instance, tokens in thresholds.slot_context_tokens]


def _context_near_full(t: AlertThresholds) -> AlertRule:
    # One comparison per backend: slots differ in context between backends, and a PromQL literal cannot vary by
    # instance.
    limits = "\n".join(
        f'  {"or " if index else ""}llamacpp:n_tokens_max{{job="model_server", instance="{instance}"}} > {limit}'
        for index, (instance, limit) in enumerate(context_limits(t))
    )
    return AlertRule(
        name="ClawlanModelServerContextNearFull",
        expr=f'(\n{limits}\n) and changes(llamacpp:n_tokens_max{{job="model_server"}}[1h]) > 0',
        for_s=0,
        severity="warning",
        summary=prose(f"""
            A chat on {INSTANCE} used {VALUE} tokens, over {number(t.context_full_percent)} % of its slot's context
        """),
        description=prose(f"""
            Chats this long on {INSTANCE} are about to lose their beginning. Raise
            `model_server_context_tokens` (or lower `model_server_parallel_slots` to make room in RAM) and rerun
            {DEPLOY}; or start a new chat for a new topic.
        """),
        why=prose("""
            A chat filled its slot's context (KV cache) almost to the end within the last hour: longer chats get cut
            or shifted out of context. llama-server reports only the longest sequence since it started, so a new
            record within the hour is what this alert reads.
        """),
        tuned_by=("monitor_alert_context_full_percent", "model_server_context_tokens"),
    )


def group(t: AlertThresholds) -> AlertGroup:
    queue_for = prometheus_duration(t.queue_for_s)
    rules = (
        AlertRule(
            name="ClawlanModelServerQueueing",
            expr='llamacpp:requests_deferred{job="model_server"} > 0',
            for_s=t.queue_for_s,
            severity="warning",
            summary=prose(f"{VALUE} chats wait for a free model server slot on {INSTANCE} for {queue_for}"),
            description=prose(f"""
                Every slot on {INSTANCE} is busy and people wait before their first word. If it happens
                often, raise `model_server_parallel_slots` (each slot costs its context's KV cache in RAM; the deploy
                refuses a count that does not fit) and rerun {DEPLOY}, or add a
                backend.
            """),
            why=prose("Chats wait for a free slot: every slot is busy and requests queue inside the model server."),
            tuned_by=("monitor_alert_queue_for_s",),
        ),
        AlertRule(
            name="ClawlanGpuMemoryHigh",
            expr=(
                'node_drm_memory_gtt_used_bytes{job="node"} / node_drm_memory_gtt_size_bytes{job="node"} * 100\n'
                f"  > {number(t.gpu_memory_percent)}"
            ),
            for_s=300,
            severity="warning",
            summary=prose(f"""
                GPU {label("card")} on {INSTANCE} has {value_as("%.1f")} % of its GTT in use,
                above {number(t.gpu_memory_percent)} % for 5m
            """),
            description=prose(f"""
                The model's weights and every slot's KV cache live in GTT: when it is full, the model server fails to
                allocate or the kernel evicts. On {INSTANCE} read `journalctl -u clawlan-model-server -n 100`
                and the GTT's size (`cat /sys/class/drm/{label("card")}/device/mem_info_gtt_total`). Lower
                `model_server_context_tokens` or `model_server_parallel_slots` and rerun {DEPLOY}, or raise
                `model_server_gtt_gib`, rerun it and reboot the box (the GTT limit takes effect at boot).
            """),
            why=prose("""
                The seeds' "GPU memory over 85 % for 5 minutes". On unified memory (the reference box) the model lives
                in GTT, system memory the GPU maps, sized by the kernel's TTM limit; the VRAM carve-out is a few GiB
                the firmware reserves and says nothing about the model. A box without a GPU has no series: quiet.
            """),
            tuned_by=("monitor_alert_gpu_memory_percent",),
        ),
        # Without a llama-server backend there is no context to fill.
        *((_context_near_full(t),) if t.slot_context_tokens else ()),
        AlertRule(
            name="ClawlanBalancerQueueing",
            expr=f'haproxy_backend_current_queue{{job="balancer", proxy="{t.balancer_proxy}"}} > 0',
            for_s=t.queue_for_s,
            severity="warning",
            summary=prose(f"{VALUE} chats wait for a free backend slot at {INSTANCE}'s balancer for {queue_for}"),
            description=prose(f"""
                Every slot of every healthy backend is busy and people wait before their first word (a chat waits
                up to `mtls_balancer_queue_timeout_s`, then gets 503). If it happens often, raise
                `model_server_parallel_slots` where RAM allows, add a backend to the inventory, or bring back one that
                is out of the pool (ClawlanBackendOutOfPool); then rerun {DEPLOY}.
            """),
            why=prose("""
                Chats wait at the balancer: every backend's slots are busy. The balancer sends each backend no more
                chats than it has slots, so this is where people queue.
            """),
            tuned_by=("monitor_alert_queue_for_s",),
        ),
    )
    return AlertGroup("capacity", "Room: slots and context", rules)

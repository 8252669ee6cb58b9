"""The lab's inventory data, as the inventory files under inventory/ put it together: what every lab host shares, and a
frontend and a backend sized for the lab. inventory/lab.py is the default two-host lab; inventory/lab_scaleout.py adds
a second backend.
"""

from lab.image import ADMIN
from lab.paths import CACHE_DIR as _CACHE
from lab.paths import QWEN_MODEL as _MODEL
from lab.paths import QWEN_MODEL_SHA256 as _MODEL_SHA256
from lab.paths import STATE_DIR as _STATE
from roles.model_server.decode_floors import DECODE_FLOORS, LAVAPIPE_CLASS

SITE = {
    "site_state_dir": str(_STATE / "site"),  # the lab's CA and secrets; removed by `down`
    "site_cache_dir": str(_CACHE),  # the llama-cpp-python wheelhouse survives the lab: builds take minutes
    # A sudo-capable admin, as on a real site (inventory/site.py): the deploy, the checks and the tools work as root
    # through sudo, so the tests run the path a real site runs.
    "ssh_user": ADMIN,
    "_sudo": True,
    "ssh_key": str(_STATE / "id_ed25519"),  # made by `python -m lab up`, removed by `down`
    "ssh_known_hosts_file": str(_STATE / "known_hosts"),  # host keys read from the containers
    "ssh_strict_host_key_checking": "yes",
    # Prometheus' UI for this machine (the lab network's gateway, .1) and the frontends (.10-.15): another device on
    # the lab's LAN (the e2e tests put one at .30) gets nothing but the gateway and SSH.
    "monitor_client_networks": ["10.242.17.0/28"],
    # Alerts go to a webhook the e2e tests run on this machine (the lab network's gateway address), at test pace.
    "monitor_alert_webhook_url": "http://10.242.17.1:9099/alerts",
    "monitor_alert_watchdog_url": "http://10.242.17.1:9099/watchdog",
    "monitor_alert_group_wait_s": 1,
    "monitor_alert_group_interval_s": 5,
    # Monitoring at test pace: alerts the e2e tests wait for fire within seconds, not minutes.
    "monitor_scrape_interval_s": 5,
    "monitor_retention_days": 1,
    "monitor_probe_interval_s": 10,
    "monitor_probe_timeout_s": 60,  # a cold gateway prompt (after a model server restart) takes ~5 s here
    "monitor_alert_probe_failing_for_s": 20,
    "monitor_alert_down_for_s": 20,
    "monitor_alert_queue_for_s": 10,
    "monitor_alert_backend_out_for_s": 10,
    "monitor_alert_certificate_for_s": 10,
    # Latency suite targets for the lab: one shared CPU, the qwen3next lab model on lavapipe, and OpenClaw's prompt
    # in front of every gateway chat (~1,970 of Qwen's tokens, the default profile's). A gateway chat's TTFT is
    # ~0.5 s (a new session evaluates ~180 tokens), but OpenClaw now and then stalls for up to ~3 s on this machine;
    # a chat that misses the prompt cache evaluates ~1,940 tokens (3.4 s here), so 3.5 s still catches most of that,
    # and the latency suite's token counts catch the rest.
    "latency_ttft_p99_s": 3.5,
    "latency_inter_token_p99_s": 0.04,  # the 40 ms: above it a hop stalls (Nagle, delayed ACK)
    # Decode: the floor of the lab's slowest device class, lavapipe (the lab's own measurement, docs/operating.md,
    # "Decode floors"), stated here rather than left to "auto": lab_scaleout's second backend runs on the cpu class,
    # which has no floor for a real model, while the tiny model decodes faster there (~500 tokens/s) than on lavapipe.
    "latency_tokens_per_second": DECODE_FLOORS[LAVAPIPE_CLASS].tokens_per_second,
    # Two shared cores: OpenClaw stalls about one gap in 500 for 40-150 ms even when idle (docs/operating.md, Latency),
    # and the suite's runner, the probe, Prometheus and, since the backend has both cores for its builds, the model
    # server share the cores with it. The gateway's inter-token p99 had +37 to +51 % headroom to 40 ms with the
    # backend on one core of its own, +5 to +26 % (once -3 %) on both (2026-12-07, three and seven checks): 20 % keeps
    # a check from failing on that. A Nagle or delayed-ACK stall (40 ms or more on every ~20 ms gap) still fails at 48.
    "latency_noise_margin_percent": 20.0,
    # People at once through the gateway (make check-deep), each in a conversation of their own: as many as the lab
    # backend's 4 slots. With more people than slots, conversations take each other's slot and a turn re-evaluates
    # 600-1,400 tokens instead of ~120 (8 on 4 slots: TTFT p99 12.5x one chat's); a real site holds 8, and sizes
    # model_server_parallel_slots for them. The lab's one llama thread on lavapipe does every chat's prompt and
    # decoding, so its aggregate tokens/s barely grows, and its figures vary widely from run to run: at 4, TTFT p99
    # 2.3-5.8x one chat's, inter-token p99 0.11-1.1 s, tokens/s 0.78-1.29x (BENCHMARKS.md, People at once). So the
    # lab holds only what a collapse breaks, far outside that spread: with one slot warm after a start, 8 new
    # sessions at once had TTFT p99 45x one chat's and tokens/s 0.5x. A real site keeps the targets.
    "latency_at_once_chats": 4,
    "latency_at_once_ttft_p99_ratio": 10.0,
    "latency_at_once_tokens_per_second_ratio": 0.5,
    "latency_at_once_inter_token_p99_s": 2.0,
}


def frontend(name: str, address: str, debian: int = 13) -> tuple[str, dict]:
    return (
        name,
        {
            "ssh_hostname": address,
            # The lab makes these true (lab/core.py): a memory limit, and cores of this machine. Two cores: OpenClaw,
            # HAProxy, Prometheus and the latency suite's runner share them, as on a two-core box.
            "hw_memory_gib": 6,
            "hw_cpu_cores": 2,
            "hw_debian": debian,  # the lab builds the box from this release's image (lab/image.py)
            # Lab hosts share one kernel, whose /proc/swaps all see: one swapfile (the first backend's) is enough.
            "base_swap_size_mib": 0,
            **SITE,
        },
    )


def backend(
    name: str,
    address: str,
    swapfile: bool = True,
    memory_gib: float = 6,
    debian: int = 13,
    vulkan: bool = True,
    cores: int = 2,
) -> tuple[str, dict]:
    swap = {"base_swap_path": "/var/lib/swap/swapfile"} if swapfile else {"base_swap_size_mib": 0}
    return (
        name,
        {
            "ssh_hostname": address,
            "hw_memory_gib": memory_gib,
            # Both of this machine's cores, shared with the frontend, as the frontend's are: a build compiles on two
            # (one core took ~27 minutes for the Vulkan build), while llama-server keeps its one thread.
            "hw_cpu_cores": cores,
            "model_server_threads": 1,
            "hw_debian": debian,
            # The reference backend's path on Mesa's software GPU: the Vulkan build, device selection, the unit's
            # device sandbox and the proof that every layer runs on the device, for real; only slower than a GPU.
            **({"model_server_compute": "vulkan", "model_server_vulkan_driver": "lavapipe"} if vulkan else {}),
            **swap,  # a swapfile lives on an ext4 volume: swapon refuses the overlay root
            # The reference architecture at toy size with Qwen's tokenizer (lab/qwen_model.py), generated by
            # `python -m lab up`: 45.6 MB, almost all of it the embedding and output matrices of Qwen's 151936 tokens.
            "model_server_model_source": str(_MODEL),
            "model_server_model_sha256": _MODEL_SHA256,
            "model_server_model_size_gib": 0.043,
            "model_server_model_alias": "clawlan-qwen3next-tiny",
            "model_server_prompt_cache_mib": 256,
            # One full-attention layer (the other three are recurrent) x K,V x 2 heads x 16 x f16 = 128 bytes per token.
            "model_server_kv_cache_kib_per_token": 0.125,
            # Three gated-delta-net layers' states (4 heads x 16 x 16 x f32, and the convolution's): the server logs
            # 0.016 MiB per checkpoint.
            "model_server_recurrent_state_mib": 0.016,
            # The tiny model never stops on its own: short answers keep each lab chat to a second or two.
            "model_server_max_answer_tokens": 64,
            **SITE,
        },
    )

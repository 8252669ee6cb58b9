# Settings every appliance box shares, whatever the site. One line each: the value, its unit, why.
# A key lives in one place: here, or in an inventory file's host data when it differs per host.

# --- base: names ---------------------------------------------------------------------------------
base_dns_domain = "home.arpa"  # domain of appliance names; reserved for home networks (RFC 8375)
base_host_aliases = {"llm": "backend", "chat": "frontend"}  # service name -> group whose first host it pins
base_extra_hosts = {}  # other LAN machines to pin, name -> IP address (e.g. a NAS with the model)

# --- base: memory --------------------------------------------------------------------------------
base_thp_enabled = "always"  # transparent huge pages: llama.cpp never madvises, so only 'always' helps it
base_thp_defrag = "defer+madvise"  # never stall an allocation on compaction; khugepaged does it later
base_hugetlb_pool_mib = 0  # MiB of HugeTLB pages; llama.cpp cannot use them, so 0 leaves RAM to the model
base_system_reserve_gib = 4.0  # GiB kept for the OS and services in the memory budget
base_swap_size_mib = "auto"  # MiB, or 'auto' = ceil(sqrt(RAM GiB)) GiB capped at 20 % of RAM; 0 = none
base_swap_path = "/swapfile"  # the swapfile; its filesystem must support swap (ext4, xfs)
base_swappiness = 10  # 0-200: swap only under real pressure, never the model's working set

# --- base: network -------------------------------------------------------------------------------
base_tcp_keepalive_time_s = 60  # seconds idle before the first keepalive probe on a long stream
base_tcp_keepalive_intvl_s = 10  # seconds between probes
base_tcp_keepalive_probes = 6  # probes unanswered before the kernel drops the connection (~2 min)
base_ntp_servers = []  # time servers (names or IPs); empty keeps Debian's pool. TLS needs a true clock

# --- site and pki --------------------------------------------------------------------------------
site_state_dir = "~/.local/state/clawlan/site"  # control machine: site CA and secrets (0700); back it up
pki_organization = "clawlan"  # O= of every certificate
pki_ca_days = 3650  # days the site CA is valid
pki_cert_days = 365  # days a host certificate is valid
pki_renew_before_days = 30  # a deploy reissues certificates this many days before they expire
site_cache_dir = "~/.cache/clawlan"  # control machine: llama-cpp-python wheelhouse (costs a rebuild if lost)

# --- mtls: the TLS path between the boxes (site-wide: both ends must agree) ----------------------
mtls_port = 8443  # the backend's LAN port for the model; TLS 1.3, frontend client certificates only
mtls_read_timeout_s = 600  # seconds nginx waits for the model server (a cold 13k-token prompt takes ~25 s)
mtls_max_body_mib = 16  # MiB, largest request body
mtls_upstream_keepalive = 8  # idle connections kept open to the model server
mtls_egress_port = 18080  # frontend loopback port of the egress proxy the gateway talks to
mtls_connect_timeout_s = 30  # seconds to connect to the backend (the seeds' timeout)
mtls_connect_retries = 3  # failed connections retried by the egress proxy (the seeds' retries)

# --- monitor: node exporters, the latency probe, Prometheus and its alerts (site-wide) ------------
monitor_host = ""  # inventory name of the Prometheus host; "" = the first frontend (the box that is always on)
monitor_prometheus_port = 9090  # Prometheus UI/API on the monitor's LAN address
monitor_node_exporter_port = 9100  # node exporter on every host's LAN address; only the monitor may connect
monitor_probe_port = 9464  # the probe's /metrics on each frontend's LAN address; only the monitor may connect
monitor_client_networks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]  # who may open the Prometheus UI
monitor_scrape_interval_s = 15  # seconds between scrapes and rule evaluations
monitor_retention_days = 30  # days of history: compare a month before and after a change
monitor_probe_interval_s = 60  # seconds between probe rounds: ~1 % of a single-slot server's time
monitor_probe_timeout_s = 60  # seconds before a probe counts as failed (a cold prompt takes ~25 s)
monitor_probe_max_tokens = 16  # tokens per probe: enough gaps to measure, cheap to generate
monitor_alert_memory_used_percent = 85.0  # % memory in use that alerts (the seeds' threshold) ...
monitor_alert_memory_for_s = 300  # ... for this long (the seeds' 5 minutes)
monitor_alert_memory_available_floor_gib = 2.0  # GiB available below which the OOM killer is near: alert in 1 min
monitor_alert_swap_growth_for_s = 900  # seconds of growing swap use before alerting: the model is paged out
monitor_alert_packet_loss_percent = 1.0  # % of dropped packets or TCP retransmits that alerts (the seeds' 1 %)
monitor_alert_ttft_p99_s = 1.0  # seconds, probe time to first token p99 that alerts (the seeds' P99 > 1 s)
monitor_alert_tokens_per_second_floor = 20.0  # decode speed below which to alert (reference box: ~28-32)
monitor_alert_latency_for_s = 600  # seconds latency or speed must miss before alerting: no alert for one slow chat
monitor_alert_probe_failing_for_s = 120  # seconds of failing probes before alerting (two rounds)
monitor_alert_down_for_s = 120  # seconds an exporter or a clawlan unit may be down before alerting
monitor_alert_disk_free_percent = 10.0  # % free space under which a disk (the model's) alerts
monitor_target_ttft_p99_s = 0.7  # latency suite: warm TTFT p99 per path, seconds (reference box; lab.py sets its own)
monitor_target_inter_token_p99_s = 0.04  # latency suite: inter-token p99, seconds: more means a stalled hop
monitor_target_tokens_per_second = 25.0  # latency suite: decode speed floor (Qwen3-Next-80B-A3B Q4_K_M on Strix Halo)

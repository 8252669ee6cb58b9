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

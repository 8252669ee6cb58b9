"""The reference appliance: copy this file for your site and change what differs.

    pyinfra inventory/site.py deploys/full.py

Hosts are in exactly one of the groups ``frontend`` (the chat gateway) and ``backend`` (the model
server). Settings shared by every site live in ``inventory/group_data/``; a host's own data holds
only what differs per host. The whole inventory is checked when pyinfra loads it, before any host
is contacted; a problem is reported with the host and key it concerns.
"""

from roles.inventory.load import check_inventory

# Every box's SSH host key is checked against the site's own file; a box (or its replacement) is trusted once,
# deliberately, after its fingerprint is shown: `make enrol HOST=claw-back`. A changed key is refused until then.
_HOST_KEYS = {"ssh_known_hosts_file": "~/.config/clawlan/known_hosts", "ssh_strict_host_key_checking": "yes"}

frontend = [
    (
        "claw-front",
        {
            "ssh_hostname": "192.168.1.10",  # LAN address (IP); pinned in every box's /etc/hosts
            "hw_memory_gib": 16,  # installed RAM, GiB: Ryzen 5 3500U mini PC
            "hw_cpu_cores": 4,  # physical cores
            "hw_debian": 13,  # the Debian release installed (12 works too on a frontend)
            "ssh_user": "admin",  # a sudo-capable login; the deploy works as root through sudo
            "_sudo": True,
            **_HOST_KEYS,
        },
    ),
]

backend = [
    (
        "claw-back",
        {
            "ssh_hostname": "192.168.1.20",  # LAN address (IP)
            "hw_memory_gib": 128,  # installed RAM, GiB: Ryzen AI Max+ 395, unified memory
            "hw_cpu_cores": 16,  # physical cores
            "hw_debian": 13,  # Debian 13: the first with the kernel, Mesa and firmware the Radeon 8060S needs
            "model_server_compute": "vulkan",  # every layer on the Radeon 8060S through Mesa's RADV (docs/site.md)
            # The model: a path on this control machine (pushed) or an http(s) URL (downloaded by the backend),
            # pinned by the sha256 that `sha256sum` prints for it. Replace both with your file's.
            "model_server_model_source": "http://nas.home.arpa/models/Qwen3-Next-80B-A3B-Instruct-Q4_K_M.gguf",
            "model_server_model_sha256": "0" * 64,
            "ssh_user": "admin",
            "_sudo": True,
            **_HOST_KEYS,
        },
    ),
]

check_inventory(__file__)

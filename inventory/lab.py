"""The lab: two Debian 12 containers on this machine standing in for the appliance's two boxes.

    python -m lab up && pyinfra -y inventory/lab.py deploys/full.py

Same keys as inventory/site.py, with lab-sized hardware. `python -m lab up` creates the hosts at
these addresses, on a podman network it makes for them, with a fresh SSH key and recorded host keys.
"""

import os
from pathlib import Path

from roles.site import check_inventory

_STATE = Path(os.environ.get("CLAWLAN_LAB_STATE", Path(__file__).resolve().parent.parent / ".lab"))
_LAB = {
    "site_state_dir": str(_STATE / "site"),  # the lab's CA and secrets; removed by `down`
    "ssh_user": "root",
    "ssh_key": str(_STATE / "id_ed25519"),  # made by `python -m lab up`, removed by `down`
    "ssh_known_hosts_file": str(_STATE / "known_hosts"),  # host keys read from the containers
    "ssh_strict_host_key_checking": "yes",
}

frontend = [
    (
        "lab-front",
        {
            "ssh_hostname": "10.242.17.10",
            "hw_memory_gib": 4,  # GiB: what the sizing rules assume, not the container's view
            "hw_cpu_cores": 1,
            # Lab hosts share one kernel, whose /proc/swaps both see: one swapfile (the backend's) is enough.
            "base_swap_size_mib": 0,
            **_LAB,
        },
    ),
]

backend = [
    (
        "lab-back",
        {
            "ssh_hostname": "10.242.17.20",
            "hw_memory_gib": 6,
            "hw_cpu_cores": 1,
            "base_swap_path": "/var/lib/swap/swapfile",  # an ext4 volume: swapon refuses the overlay root
            "model_server_model_size_gib": 0.001,  # the tiny generated test model
            **_LAB,
        },
    ),
]

check_inventory(__file__)

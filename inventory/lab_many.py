"""Eight lab hosts for bench/noop_scaling.py: the base role's no-op re-run on 2, 4 and 8 hosts.

    python -m lab --inventory inventory/lab_many.py up && pyinfra -y inventory/lab_many.py deploys/base.py

One frontend and seven backends (the site needs both roles); only deploys/base.py is meant for it, so the lab stays
small: no model server, gateway or monitoring is installed.
"""

from lab.hosts import backend as _backend
from lab.hosts import frontend as _frontend
from roles.inventory.load import check_inventory

frontend = [_frontend("lab-front", "10.242.17.10")]
backend = [
    _backend("lab-back", "10.242.17.20"),
    # The lab's hosts share one kernel and its swap: the first backend's swapfile is the lab's.
    *(_backend(f"lab-back{n}", f"10.242.17.{19 + n}", swapfile=False) for n in range(2, 8)),
]

check_inventory(__file__)

"""The lab grown by a second backend: one frontend balancing two backends.

    python -m lab --inventory inventory/lab_scaleout.py up && pyinfra -y inventory/lab_scaleout.py deploys/full.py

The default lab's hosts (inventory/lab.py) plus lab-back2. Deploying inventory/lab.py again afterwards removes
lab-back2 from the site (pins, pool, scrape targets); `python -m lab down` removes its container.
"""

from lab.hosts import backend as _backend
from lab.hosts import frontend as _frontend
from roles.inventory.load import check_inventory

frontend = [_frontend("lab-front", "10.242.17.10")]
backend = [
    _backend("lab-back", "10.242.17.20"),
    # The lab's hosts share one kernel and its swap: the first backend's swapfile is the lab's. On the CPU: a mixed
    # site, as a first real site may be (a new GPU box beside an older one without a GPU).
    _backend("lab-back2", "10.242.17.21", swapfile=False, vulkan=False, cores=1),
]

check_inventory(__file__)

"""The lab: two Debian 13 containers on this machine standing in for the appliance's two boxes.

    python -m lab up && pyinfra -y inventory/lab.py deploys/full.py

Same keys as inventory/site.py, with lab-sized hardware (lab/hosts.py). `python -m lab up` creates the hosts at
these addresses, on a podman network it makes for them, with a fresh SSH key and recorded host keys.
"""

from lab.hosts import backend as _backend
from lab.hosts import frontend as _frontend
from roles.inventory.load import check_inventory

frontend = [_frontend("lab-front", "10.242.17.10")]
backend = [_backend("lab-back", "10.242.17.20")]

check_inventory(__file__)

"""The lab after its backend box was swapped: the replacement is at a new address, with less RAM.

    python -m lab --inventory inventory/lab_swapped.py ...   (tests/e2e/test_09_rebuild.py does the swap)

The same site as inventory/lab.py but for lab-back's line: what an operator edits after replacing the box. Enrol the
new box's host key (make enrol INVENTORY=inventory/lab_swapped.py HOST=lab-back), then deploy once.
"""

from lab.hosts import backend as _backend
from lab.hosts import frontend as _frontend
from roles.inventory.load import check_inventory

frontend = [_frontend("lab-front", "10.242.17.10")]
backend = [_backend("lab-back", "10.242.17.22", memory_gib=5)]

check_inventory(__file__)

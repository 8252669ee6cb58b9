"""pyinfra's configuration for this repository: pyinfra runs this file (config.py in the directory it is run from)
before it loads the inventory.

It makes pyinfra validate the whole inventory, --data overrides included, once it is loaded and before any host is
contacted, also for an inventory file that forgets its last line ``check_inventory(__file__)``. Both checks give the
same message (roles/inventory/).
"""

from pyinfra.context import ctx_state

from roles.inventory.load import check_before_connecting

if ctx_state.isset():  # run by the pyinfra CLI (not imported by something else)
    check_before_connecting(ctx_state.get())

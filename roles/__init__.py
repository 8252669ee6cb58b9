"""The appliance's roles, on three floors.

- ``roles/common/``: helpers below every role (settings types, the site's names, the TLS toolkit, files, units,
  packages, users, secrets, pip). They import no role.
- ``roles/<role>/``: one room per role: ``settings.py`` (its inventory keys; each default lives there once, with
  its reason), ``config.py`` (the resolved, frozen config and the preflight rules across settings), ``deploy.py``
  (the ``@deploy``), ``operations.py`` and ``facts.py``, and ``programs/`` (what runs on the hosts themselves).
  A role imports itself and ``common`` only, never another role (tests/unit/test_layout.py). A role with rules
  across its own settings declares them as its ``PREFLIGHT`` (roles/common/preflight.py).
- ``roles/site/``: where roles meet. What one role needs of another (a path, a port, a name) goes into its
  config here. ``roles/inventory/`` loads and validates the inventory and builds the ``Site``.

A fact about a finished host is stated once, as a control in tests/compliance; the e2e suite calls it.
"""

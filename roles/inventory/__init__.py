"""The inventory: ``load`` reads it as pyinfra does and builds the ``Site``, ``schema`` checks each host's keys,
``rules`` the rules across keys, roles and hosts."""

"""Programs this role installs on the hosts (run there, not by pyinfra)."""

"""The whole site as the roles see it: where roles meet. ``site`` builds each host's role configs from
``topology`` (the hosts and their names), ``control`` (the control machine's directories, locks and secret files),
``identities`` (the site CA's certificates) and ``exposure`` (what each box serves, and to whom)."""

# What this site sets differently from the defaults, for every host. Each default lives once, in its role's
# settings class (roles/<role>/settings.py, one line with its reason); docs/roles.md's settings tables are made from
# those (make docs). Add a key here only to change it, e.g.:
#
# base_ntp_servers = ["192.168.1.1"]  # the router's time server instead of Debian's pool
# base_extra_hosts = {"nas": "192.168.1.5"}  # other LAN machines pinned in /etc/hosts (site-wide)
# monitor_client_networks = ["192.168.1.0/24"]  # who may open the Prometheus UI
# pki_organization = "clawlan"  # O= of every certificate (site-wide)

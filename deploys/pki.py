"""Host keys and certificates only (e.g. to renew): pyinfra inventory/site.py deploys/pki.py"""

from pyinfra import host

from deploys._site import installed_packages, this_site
from roles.pki.deploy import pki

pki(this_site().pki_config(host.name), installed_packages=installed_packages())

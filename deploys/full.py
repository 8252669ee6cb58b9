"""The whole appliance: pyinfra inventory/site.py deploys/full.py"""

from pyinfra import host

from deploys._site import installed_packages, this_site
from roles.base.deploy import base
from roles.pki.deploy import pki

site = this_site()
installed = installed_packages()

base(site.base_config(host.name), installed_packages=installed)
pki(site.pki_config(host.name), installed_packages=installed)

"""The whole appliance: pyinfra inventory/site.py deploys/full.py"""

from pyinfra import host

from deploys._site import installed_packages, this_site
from roles.base.deploy import base

site = this_site()
base(site.base_config(host.name), installed_packages=installed_packages())

"""Base system on every host: pyinfra inventory/site.py deploys/base.py"""

from pyinfra import host

from deploys._site import installed_packages, this_site
from roles.base.deploy import base

base(this_site().base_config(host.name), installed_packages=installed_packages())

"""The whole appliance: pyinfra inventory/site.py deploys/full.py"""

from pyinfra import host

from deploys._site import installed_packages, this_site
from roles.base.deploy import base
from roles.firewall.deploy import firewall
from roles.gateway.deploy import gateway
from roles.model_server.deploy import model_server
from roles.monitor.alertmanager import alertmanager
from roles.monitor.node_exporter import node_exporter
from roles.monitor.probe import probe
from roles.monitor.prometheus import prometheus
from roles.mtls.deploy import egress, ingress
from roles.pki.deploy import pki

site = this_site()
installed = installed_packages()
role = site.topology.host(host.name).role

base(site.base_config(host.name), installed_packages=installed)
firewall(site.firewall_config(host.name), installed_packages=installed)
node_exporter(site.node_exporter_config(host.name), installed_packages=installed)
tls_changes = pki(site.pki_config(host.name), installed_packages=installed)
if role == "backend":
    model_server(site.model_server_config(host.name), installed_packages=installed)
    ingress(site.ingress_config(host.name), tls_changes=tls_changes, installed_packages=installed)
else:
    egress(site.egress_config(host.name), tls_changes=tls_changes, installed_packages=installed)
    secrets_changes = gateway(site.gateway_config(host.name), installed_packages=installed)
    probe(site.probe_config(host.name), secrets_changes, tls_changes, installed_packages=installed)
if host.name == site.topology.monitor_host.name:
    prometheus(site.prometheus_config(), monitor_name=host.name, installed_packages=installed)
    alertmanager(site.alertmanager_config(), installed_packages=installed)

"""Role mtls: the TLS path between the boxes, both ends nginx.

On the backend, ``ingress`` listens on the LAN address for frontend client certificates and proxies to
the model server on loopback. On the frontend, ``egress`` listens on loopback and carries local
requests to the backend over mutual TLS, holding the frontend's key so the gateway never does.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from roles.common.files import host_files
from roles.common.packages import install_packages
from roles.common.secrets import site_secret
from roles.common.templates import rendered
from roles.common.units import service
from roles.mtls.config import CONF, EGRESS_CONF, EgressConfig, IngressConfig


@deploy("mTLS ingress")
def ingress(config: IngressConfig, tls_changes=(), installed_packages: frozenset[str] = frozenset()):
    """``tls_changes``: the pki operations whose change (a new certificate or CA) needs a reload."""
    install_packages("Install nginx", ["nginx"], installed_packages)
    key = f"Bearer {site_secret(config.api_key_file)}"
    metrics_key = host_files(config.metrics_key_conf).secret(
        name=f"Write the model server's key for the monitor's /metrics requests ({config.metrics_key_conf}, root only)",
        content=f'proxy_set_header Authorization "{key}";\n',
        dest=config.metrics_key_conf,
    )
    _nginx_site(CONF, "mtls/ingress.conf.j2", config, (*tls_changes, metrics_key))


@deploy("mTLS egress")
def egress(config: EgressConfig, tls_changes=(), installed_packages: frozenset[str] = frozenset()):
    """``tls_changes``: the pki operations whose change (a new certificate or CA) needs a reload."""
    install_packages("Install nginx", ["nginx"], installed_packages)
    _nginx_site(EGRESS_CONF, "mtls/egress.conf.j2", config, tls_changes)


def _nginx_site(path: str, template: str, config, reload_changes):
    """nginx (installed by the caller) with ``path`` from ``template``; ``reload_changes``: the other operations
    whose change needs a reload."""
    default_site = files.link(
        name="Remove nginx's default site (it listens on every address)",
        path="/etc/nginx/sites-enabled/default",
        present=False,
    )
    conf = host_files(path).put(
        name=f"Write {path}",
        src=rendered(template, **config.__dict__),
        dest=path,
        mode="644",
        create_remote_dir=False,  # nginx's package made it
    )
    changes = (default_site, conf, *reload_changes)
    # A broken configuration stops the deploy here, while the running nginx keeps its old one.
    server.shell(name="Check the nginx configuration", commands=["nginx -t -q"], _if=any_changed(*changes))
    service(
        name="Run nginx (reloaded when its configuration or certificates changed)",
        unit="nginx.service",
        reload_on=changes,
    )

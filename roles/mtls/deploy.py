"""Role mtls: nginx on the backend's LAN address, TLS 1.3 with client certificates, in front of the model."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from roles.mtls.config import CONF, IngressConfig
from roles.packages import install_packages
from roles.templates import rendered


@deploy("mTLS ingress")
def ingress(config: IngressConfig, tls_changes=(), installed_packages: frozenset[str] = frozenset()):
    """``tls_changes``: the pki operations whose change (a new certificate or CA) needs a reload."""
    install_packages("Install nginx", ["nginx"], installed_packages)
    default_site = files.link(
        name="Remove nginx's default site (it listens on every address)",
        path="/etc/nginx/sites-enabled/default",
        present=False,
    )
    conf = files.put(
        name=f"Write {CONF}",
        src=rendered("mtls/ingress.conf.j2", **config.__dict__),
        dest=CONF,
        mode="644",
        create_remote_dir=False,  # nginx's package made it
    )
    changes = (default_site, conf, *tls_changes)
    # A broken configuration stops the deploy here, while the running nginx keeps its old one.
    server.shell(name="Check the nginx configuration", commands=["nginx -t -q"], _if=any_changed(*changes))
    systemd.service(
        name="Run nginx (reloaded when its configuration or certificates changed)",
        service="nginx.service",
        running=True,
        enabled=True,
        reloaded=any(op.will_change for op in changes),
    )

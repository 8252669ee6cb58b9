"""Role mtls: the TLS path between the boxes.

On each backend, ``ingress`` (nginx) listens on the LAN address for frontend client certificates and proxies to
the model server on loopback. On each frontend, ``egress`` (HAProxy) listens on loopback and balances local
requests across the backends over mutual TLS, holding the frontend's key so the gateway never does.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from roles.common.files import host_files
from roles.common.packages import install_packages
from roles.common.secrets import site_secret
from roles.common.templates import rendered
from roles.common.units import dropin_path, service
from roles.mtls.config import (
    BALANCER_CONF,
    BALANCER_UNIT,
    CONF,
    HARDENING,
    INGRESS_UNIT,
    OLD_EGRESS_CONF,
    EgressConfig,
    IngressConfig,
)


@deploy("mTLS ingress")
def ingress(config: IngressConfig, tls_changes=(), installed_packages: frozenset[str] = frozenset()):
    """``tls_changes``: the pki operations whose change (a new certificate or CA) needs a reload."""
    hardening = _hardening(INGRESS_UNIT)
    install_packages("Install nginx", ["nginx"], installed_packages)
    key = f"Bearer {site_secret(config.api_key_file)}"
    metrics_key = host_files(config.metrics_key_conf).secret(
        name=f"Write the model server's key for /metrics and health checks ({config.metrics_key_conf}, root only)",
        content=f'proxy_set_header Authorization "{key}";\n',
        dest=config.metrics_key_conf,
    )
    _nginx_site(CONF, "mtls/ingress.conf.j2", config, (*tls_changes, metrics_key), hardening)


@deploy("mTLS egress")
def egress(config: EgressConfig, tls_changes=(), installed_packages: frozenset[str] = frozenset()):
    """HAProxy balancing the gateway's requests across the backends. ``tls_changes``: the pki operations whose
    change (a new certificate or CA) needs a reload."""
    known = host_files(BALANCER_CONF, OLD_EGRESS_CONF)
    # A frontend set up before the balancer ran nginx on the egress port: free the port before HAProxy takes it.
    # Nothing else of the appliance runs in that nginx: it is stopped for good, not left idle and unhardened.
    old_egress = known.absent(name=f"Remove the old nginx egress proxy ({OLD_EGRESS_CONF})", path=OLD_EGRESS_CONF)
    server.shell(
        name="Stop and disable nginx, which the frontend no longer uses",
        commands=[f"systemctl disable --now {INGRESS_UNIT}"],
        _if=old_egress.did_change,
    )
    hardening = _hardening(BALANCER_UNIT)
    install_packages("Install HAProxy", ["haproxy"], installed_packages)
    conf = known.put(
        name=f"Write {BALANCER_CONF}",
        src=rendered("mtls/haproxy.cfg.j2", **config.__dict__),
        dest=BALANCER_CONF,
        mode="644",
        create_remote_dir=False,  # HAProxy's package made it
    )
    changes = (conf, *tls_changes)
    # A broken configuration stops the deploy here, while the running HAProxy keeps its old one.
    server.shell(
        name="Check the HAProxy configuration",
        commands=[f"haproxy -c -q -f {BALANCER_CONF}"],
        _if=any_changed(*changes),
    )
    # A reload starts new workers; the old ones finish the chats in flight. New hardening needs a restart.
    service(name="Run HAProxy (reloaded when its configuration or certificates changed)", unit=BALANCER_UNIT,
            reload_on=changes, restart_on=(hardening,), daemon_reload_on=(hardening,))  # fmt: skip


def _hardening(unit: str):
    """The drop-in that hardens Debian's ``unit``: written before the package is installed, so its first start is
    already sandboxed."""
    path = dropin_path(unit)
    return host_files(path).put(
        name=f"Harden {unit} (a drop-in: sandboxing, and a restart after a crash)",
        src=rendered(HARDENING[unit]),
        dest=path,
        mode="644",
    )


def _nginx_site(path: str, template: str, config, reload_changes, hardening):
    """nginx (installed by the caller) with ``path`` from ``template``; ``reload_changes``: the other operations
    whose change needs a reload; ``hardening``: its drop-in, whose change needs a restart."""
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
        unit=INGRESS_UNIT,
        reload_on=changes,
        restart_on=(hardening,),
        daemon_reload_on=(hardening,),
    )

"""Settings of the pki role: inventory keys ``pki_*``, one line each with the reason for the default."""

from __future__ import annotations

from dataclasses import dataclass

from roles.common.ca import CRL_DAYS
from roles.common.settings import setting
from roles.common.values.network import PrivateNetworks
from roles.common.values.numbers import WholeNumber
from roles.common.values.text import SubjectText


@dataclass(frozen=True)
class PkiSettings:
    organization: str = setting(
        "clawlan", "O= of every certificate; the backend admits clients by O, OU and CN.", SubjectText(),
        site_wide=True,
    )  # fmt: skip
    ca_days: int = setting(
        3650, "The site CA lives ten years: replacing it means reissuing every host.", WholeNumber(30, 36500)
    )
    cert_days: int = setting(
        365, "Host certificates last a year (under ca_days); a deploy renews those near expiry.", WholeNumber(2, 825)
    )
    renew_before_days: int = setting(
        30, "A deploy reissues a certificate this close to expiry (and the expiry alerts use it); under cert_days, at "
        "most half of crl_days.", WholeNumber(1, 365),
    )  # fmt: skip
    crl_days: int = setting(
        CRL_DAYS, "The revocation list lasts this long; a deploy re-signs it once half has passed (nginx refuses every "
        "client with an expired one, so an alert warns within renew_before_days).", WholeNumber(14, 3650),
        site_wide=True,
    )  # fmt: skip
    permitted_networks: tuple[str, ...] = setting(
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
        "Addresses a new site CA may vouch for (with names under base_dns_domain): trusting it vouches for no other.",
        PrivateNetworks(),
        site_wide=True,
    )  # fmt: skip

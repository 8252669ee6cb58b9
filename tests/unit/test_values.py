"""The value types: what each accepts and refuses, and that every setting declares one that fits its annotation."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from roles.common.settings import setting
from roles.common.values.containers import ListOf, Mapping, OrEmpty, Secret
from roles.common.values.core import ValueType, shown
from roles.common.values.network import DnsLabel, DnsName, HostName, LanIPv4, PrivateNetworks
from roles.common.values.numbers import Choice, Either, Flag, Number, Port, WholeNumber
from roles.common.values.paths import AbsPath, ControlPath, HttpsUrl, ModelSource, Url
from roles.common.values.text import Flags, Name, NodeVersion, Sha256, SubjectText, Text, UserName, Version
from roles.inventory.schema import SETTINGS

HOSTILE = ("a\nb", "a\rb", "a\x00b", "a\tb", "a\u2028b", "a\x85b", "$(id)", "`id`", "a'b", 'a"b', "a;b", "a b")

ACCEPTED = [
    (WholeNumber(0, 10), 0),
    (WholeNumber(0, 10), 10),
    (Port(), 65535),
    (Number(0, 1), 0.5),
    (Number(0, 1), 1),
    (Flag(), False),
    (Choice("auto", "never"), "auto"),
    (Either(WholeNumber(1, 4), Choice("auto")), 3),
    (Either(WholeNumber(1, 4), Choice("auto")), "auto"),
    (Text(), "any text, with 'quotes' and ünïcode"),
    (SubjectText(), "Example Org (Home) Ltd."),
    (Name(), "qwen3-next_80b.Q4"),
    (UserName(), "admin"),
    (Sha256(), "ab" * 32),
    (Flags(), "-DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES=86;89"),
    (Flags(), ""),
    (Version("semver"), "2026.9.6"),
    (Version("semver"), "1.2.3-beta.1"),
    (Version("pep440"), "0.3.36"),
    (Version("pep440"), "1.0rc1"),
    (NodeVersion(), "24.19.0"),
    (DnsLabel(), "llm"),
    (DnsName(), "printer.office.lan"),
    (DnsName(), "nas"),
    (LanIPv4(), "192.168.1.10"),
    (LanIPv4(), "8.8.8.8"),  # a public address may be on a LAN
    (HostName(), "ntp.home.arpa"),
    (HostName(), "10.0.0.1"),
    (PrivateNetworks(), ["10.0.0.0/8", "192.168.1.0/24"]),
    (PrivateNetworks(), ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]),  # the defaults: RFC 1918's blocks
    (PrivateNetworks(), ["10.242.17.0/28", "172.31.255.255/32"]),
    (AbsPath(("/var/lib/swap", "/swapfile")), "/swapfile"),
    (AbsPath(("/var/lib/swap", "/swapfile")), "/var/lib/swap/swapfile"),
    (ControlPath(), "~/.local/state/clawlan/site"),
    (ControlPath(), "/home/Jane Doe/clawlan"),
    (Url(), "https://registry.npmjs.org/"),
    (Url(), "http://127.0.0.1:4873/"),  # a model mirror on the host itself
    (HttpsUrl(), "https://npm.home.arpa:4873/"),  # a registry mirror
    (Url(), "http://10.0.0.5:8080/models/qwen.gguf?token=a&b=c"),
    (ModelSource(), "http://nas.home.arpa/models/Qwen3-Q4_K_M.gguf"),
    (ModelSource(), "/srv/models/qwen.gguf"),
    (ListOf(HostName()), ["ntp.home.arpa", "10.0.0.1"]),
    (Mapping(DnsName(), LanIPv4()), {"nas": "10.0.0.5"}),
    (OrEmpty(DnsLabel(), "none"), ""),
    (Secret(Text()), "pa ss"),
]

REFUSED = [
    (WholeNumber(0, 10), 11),
    (WholeNumber(0, 10), -1),
    (WholeNumber(0, 10), True),
    (WholeNumber(0, 10), 1.0),
    (WholeNumber(0, 10), "1"),
    (WholeNumber(0, 10), 10**5000),  # also: the message must not fail to show it
    (Port(), 0),
    (Port(), 65536),
    (Number(0, 1), float("nan")),
    (Number(0, 1e9), float("inf")),
    (Number(0, 1), False),
    (Number(0, 1), None),
    (Flag(), 1),
    (Flag(), "true"),
    (Choice("auto", "never"), "Auto"),
    (Choice("auto", "never"), True),
    (Either(WholeNumber(1, 4), Choice("auto")), 0),
    (Either(WholeNumber(1, 4), Choice("auto")), "big"),
    (Text(), "x" * 201),
    (SubjectText(), ""),
    (SubjectText(), "Acme, Inc."),
    (SubjectText(), "O=evil"),
    (SubjectText(), "a/b"),
    (SubjectText(), "a\\b"),
    (SubjectText(), "Société"),
    (SubjectText(), " padded"),
    (Name(), "-flag"),
    (Name(), "x" * 65),
    (UserName(), "root; rm"),
    (Sha256(), "AB" * 32),
    (Sha256(), "ab" * 32 + "\n"),
    (Flags(), "-DX='a b'"),
    (Flags(), "-DX=$(id)"),
    (Version("semver"), "latest"),
    (Version("semver"), "^1.2.3"),
    (Version("pep440"), ">=0.3"),
    (NodeVersion(), "22.11.0"),
    (NodeVersion(), "٢٤.١٩.٠"),  # Arabic-Indic digits: int() reads them, pip would not
    (DnsLabel(), "llm\n"),
    (DnsLabel(), "LLM"),
    (DnsLabel(), "a.b"),
    (DnsLabel(), "-a"),
    (DnsName(), "home.arpa."),
    (DnsName(), "10.0.0.5"),
    (DnsName(), "a..b"),
    (DnsName(), "Home_Net"),
    (LanIPv4(), "::1"),
    (LanIPv4(), "fd00::1"),
    (LanIPv4(), "127.0.0.2"),
    (LanIPv4(), "0.0.0.0"),
    (LanIPv4(), "0.1.2.3"),
    (LanIPv4(), "224.0.0.1"),
    (LanIPv4(), "255.255.255.255"),
    (LanIPv4(), "169.254.1.1"),
    (LanIPv4(), "240.0.0.1"),
    (LanIPv4(), "010.0.0.1"),
    (LanIPv4(), 167772161),  # ipaddress takes an int: an inventory must not
    (LanIPv4(), "nas.lan"),
    (HostName(), "127.0.0.1"),
    (HostName(), "a b"),
    (PrivateNetworks(), []),
    (PrivateNetworks(), ["lan"]),
    (PrivateNetworks(), ["10.0.0.1/8"]),  # host bits set
    (PrivateNetworks(), ["fe80::/10"]),
    (PrivateNetworks(), [167772160]),
    (PrivateNetworks(), "10.0.0.0/8"),
    (PrivateNetworks(), ["0.0.0.0/0"]),
    (PrivateNetworks(), ["10.0.0.0/8", "8.8.8.0/24"]),  # public
    (PrivateNetworks(), ["10.0.0.0/7"]),  # 10.0.0.0/8 and the public 11.0.0.0/8
    (PrivateNetworks(), ["172.0.0.0/8"]),  # broader than 172.16.0.0/12
    (PrivateNetworks(), ["100.64.0.0/10"]),  # carrier-grade NAT's, not a LAN's
    (PrivateNetworks(), ["169.254.0.0/16"]),  # link-local
    (PrivateNetworks(), ["::/0"]),
    (AbsPath(("/var/lib/swap", "/swapfile")), "/etc/passwd"),
    (AbsPath(("/var/lib/swap", "/swapfile")), "/swapfile2"),
    (AbsPath(("/var/lib/swap", "/swapfile")), "/var/lib/swap/../../etc/shadow"),
    (AbsPath(("/var/lib/swap", "/swapfile")), "/var/lib/swap//x"),
    (AbsPath(("/var/lib/swap", "/swapfile")), "/var/lib/swap/"),
    (AbsPath(("/var/lib/swap", "/swapfile")), "swapfile"),
    (AbsPath(), "/srv/a b"),
    (AbsPath(), "/srv/a\\040b"),
    (ControlPath(), "relative/dir"),
    (ControlPath(), "~/../etc"),
    (ControlPath(), ""),
    (Url(), "ftp://nas/x"),
    (HttpsUrl(), "http://registry.npmjs.org/"),  # registries over https only
    (HttpsUrl(), "https://npm.lan/$(touch x)"),
    (Url(), "registry.npmjs.org"),
    (Url(), "http://[::1]/x"),
    (Url(), "http://nas/x.gguf$(id)"),
    (Url(), "http://user:secret@nas/x"),
    (Url(), "http://10.0.0.1:99999/"),
    (Url(), "http://999.1.1.1/"),
    (Url(), "http:///x"),
    (Url(), "http://nas/é"),
    (ModelSource(), "models/qwen.gguf"),
    (ModelSource(), "http://nas/models/"),
    (ModelSource(), "http://nas/models/q%20wen.gguf"),
    (ListOf(HostName(), max_items=2), ["a", "b", "c"]),
    (ListOf(HostName()), [5]),
    (Mapping(DnsName(), LanIPv4()), ["nas"]),
    (Mapping(DnsName(), LanIPv4()), {"nas": "nas.lan"}),
    (Mapping(DnsName(), LanIPv4()), {1: "10.0.0.5"}),
    (OrEmpty(DnsLabel(), "none"), " "),
]


@pytest.mark.parametrize("value_type, value", ACCEPTED, ids=[f"{t!r}-{shown(v)}" for t, v in ACCEPTED])
def test_accepted(value_type, value):
    assert value_type(value) is None


@pytest.mark.parametrize("value_type, value", REFUSED, ids=[f"{t!r}-{shown(v)}" for t, v in REFUSED])
def test_refused_with_one_line(value_type, value):
    message = value_type(value)
    assert message and "\n" not in message and len(message) < 600


@pytest.mark.parametrize("value_type", [Text(), DnsName(), Url(), AbsPath(), Name(), SubjectText(), ControlPath()])
@pytest.mark.parametrize("value", HOSTILE)
def test_text_types_refuse_line_breaks_and_control_characters(value_type, value):
    if value_type(value) is None:  # what a type lets through must be harmless: one line, no NUL
        assert value.isprintable()


def test_a_secret_is_never_shown():
    assert "hunter2" not in Secret(Text(max_length=5))("hunter2")


def test_ipv6_is_refused_with_a_clear_message():
    assert "IPv6 addresses are not supported" in LanIPv4()("fd00::10")
    assert "IPv6 addresses are not supported" in PrivateNetworks()(["fd00::/8"])


@pytest.mark.parametrize(
    "network, why",
    [
        ("0.0.0.0/0", "is every address"),
        ("8.8.8.0/24", "is not a private LAN range"),
        ("192.168.0.0/15", "holds public addresses beside the private block 192.168.0.0/16"),
        ("169.254.0.0/16", "is link-local"),
    ],
)
def test_a_network_that_is_not_the_lans_own_is_refused_saying_why(network, why):
    message = PrivateNetworks()(["10.0.0.0/8", network])
    assert message.startswith(f"{network} {why}") and "10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16" in message


def test_every_value_type_describes_itself_on_one_line():
    for value_type, _ in ACCEPTED + REFUSED:
        assert value_type.describe and "\n" not in value_type.describe
        assert str(value_type) == value_type.describe


def settings_fields():
    for prefix, cls in SETTINGS.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            yield f"{prefix}_{field.name}", field, hints[field.name]


UNSET_DEFAULTS = {"model_server_model_source", "model_server_model_sha256"}  # required on the backend, no default


@pytest.mark.parametrize(
    "key, field, annotation", list(settings_fields()), ids=lambda x: x if isinstance(x, str) else "-"
)
def test_every_setting_has_a_value_type_that_fits_its_annotation(key, field, annotation):
    value_type = field.metadata["check"]
    assert isinstance(value_type, ValueType), f"{key} has no value type"
    assert value_type.annotation == annotation, f"{key}: {value_type!r} reads {value_type.annotation}, not {annotation}"
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    assert key in UNSET_DEFAULTS or value_type(default) is None, f"{key}: the default {default!r} is refused"


def test_a_setting_without_a_value_type_is_refused_at_import():
    with pytest.raises(TypeError, match="value type"):
        setting(1, "a number with no type")
    with pytest.raises(TypeError, match="value type"):
        setting(1, "a bare function is no value type", lambda value: None)

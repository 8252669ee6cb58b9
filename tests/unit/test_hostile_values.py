"""Property tests: a hostile value for any inventory key is refused before any host is contacted, with the host and
the key named, or it is accepted and every file the deploys write renders safely. Never a traceback.

For every setting of every settings class, the host keys and pyinfra's connection keys, Hypothesis draws values
of three kinds: hostile ones (text with line breaks, quotes, $(...), backticks, NUL, Unicode line separators, very
long text; huge, negative, NaN and infinite numbers, booleans, None, lists, mappings, and what pyinfra's --data
makes of hostile text), valid values with an injection spliced in, and valid values (which must render, unless a
rule across settings refuses them, under some key). Each goes on both hosts of the valid two-box site of
tests/support/sites.py (an address on the backend only).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections import Counter
from functools import cache

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyinfra_cli.util import parse_cli_arg

from roles.common.connection import value_type as pyinfra_value_type
from roles.common.settings import InventoryError
from roles.common.values.containers import ListOf, Mapping, OrEmpty, Secret, Typed
from roles.common.values.core import ValueType
from roles.common.values.network import PRIVATE_BLOCKS, DnsLabel, DnsName, HostName, LanIPv4, PrivateNetworks
from roles.common.values.numbers import Choice, Either, Flag, Number, WholeNumber
from roles.common.values.paths import AbsPath, ControlPath, ModelSource, Url
from roles.common.values.text import _VERSIONS, NodeVersion, Pattern, SubjectText, Text, Version
from roles.inventory.load import build_site
from roles.inventory.schema import HOST_NAME, HOST_VALUES, SETTINGS
from roles.model_server.deploy import unit_text
from roles.model_server.settings import LAVAPIPE, LLAMA_CPP_PYTHON, LLAMA_SERVER, RADV, VULKAN
from tests.support.alert_rules import rules_document
from tests.support.site_files import site_files
from tests.support.sites import good_hosts, on_both_hosts

# A few seconds in all: every key gets its own small runs (derandomized, so a run is repeatable).
PER_KEY = settings(
    max_examples=6,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
VALID_PER_KEY = settings(PER_KEY, max_examples=3)

INJECTIONS = (
    "\n", "\r\n", "\r", "\x00", "\t", "\x0b", "\x1b[2J", "\u2028", "\u2029", "\x85", "\u200b", '"', "'", "`id`",
    "$(id)", "${PATH}", "; reboot", " && reboot", "| sh", " ", "#", "%h", "\\", "\\n", "../", "/../../etc/shadow",
    "{{ 7*7 }}", "}", "LD_PRELOAD=/tmp/x.so", "\nLD_PRELOAD=/tmp/x.so", "\nExecStartPre=/bin/sh -c id", "é", "𝟗",
)  # fmt: skip

hostile_text = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=24),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Nd"]), min_size=1, max_size=8),
    st.just("a" * 5000),
    st.just("x." * 200 + "lan"),
)
hostile_scalar = st.one_of(
    hostile_text,
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 2**63, 10**4000, -(10**4000)]),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e308]),
    st.builds(parse_cli_arg, hostile_text),  # what pyinfra's --data key=TEXT makes of the text
)
hostile = st.one_of(
    hostile_scalar,
    st.lists(hostile_scalar, max_size=3),
    st.dictionaries(hostile_scalar.filter(lambda k: isinstance(k, (str, int, bool, float, type(None)))), hostile_scalar,
                    max_size=2),
)  # fmt: skip


def _labels() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


def _dns_name() -> st.SearchStrategy[str]:
    return st.lists(_labels(), min_size=1, max_size=4).map(".".join).filter(lambda name: DnsName()(name) is None)


def _lan_ipv4() -> st.SearchStrategy[str]:
    return st.ip_addresses(v=4).map(str).filter(lambda a: LanIPv4()(a) is None)


def _path(roots: tuple[str, ...]) -> st.SearchStrategy[str]:
    part = st.from_regex(r"[A-Za-z0-9._+,:@=-]{1,12}", fullmatch=True).filter(lambda p: p not in (".", ".."))
    return st.builds(lambda root, parts: "/".join([root.rstrip("/"), *parts]) or "/", st.sampled_from(roots),
                     st.lists(part, max_size=3))  # fmt: skip


def _url() -> st.SearchStrategy[str]:
    host = st.one_of(_dns_name(), _lan_ipv4())
    port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
    tail = st.from_regex(r"(/[A-Za-z0-9._~+=&,%-]{0,10}){0,3}(\?[A-Za-z0-9=&]{0,8})?", fullmatch=True)
    return st.builds(lambda scheme, h, p, t: f"{scheme}://{h}{p}{t}", st.sampled_from(["http", "https"]), host, port,
                     tail)  # fmt: skip


@cache
def valid(value_type: ValueType) -> st.SearchStrategy:
    """Values ``value_type`` accepts (drawn widely: long names, odd but allowed characters, range ends)."""
    match value_type:
        case WholeNumber(low=low, high=high):
            strategy = st.one_of(st.integers(low, high), st.sampled_from([low, high]))
        case Number(low=low, high=high):
            strategy = st.one_of(
                st.floats(low, high), st.integers(int(low) + 1, int(high)), st.sampled_from([low, high])
            )
        case Flag():
            strategy = st.booleans()
        case Choice(options=options):
            strategy = st.sampled_from(options)
        case Either(arms=arms):
            strategy = st.one_of(*(valid(arm) for arm in arms))
        case OrEmpty(inner=inner):
            strategy = st.one_of(st.just(""), valid(inner))
        case Secret(inner=inner):
            strategy = valid(inner)
        case NodeVersion():
            strategy = st.sampled_from(["24.16.0", "24.19.0", "26.1.0", "27.0.3"])
        case Version(scheme=scheme):
            strategy = st.from_regex(_VERSIONS[scheme][0], fullmatch=True)
        case Pattern(regex=regex):
            strategy = st.from_regex(regex, fullmatch=True)
        case SubjectText():
            strategy = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9 ._&()!?*@:~^|{}%-]{0,20}[A-Za-z0-9])?", fullmatch=True)
        case DnsLabel():
            strategy = _labels()
        case DnsName():
            strategy = _dns_name()
        case LanIPv4():
            strategy = _lan_ipv4()
        case HostName():
            strategy = st.one_of(_dns_name(), _lan_ipv4())
        case PrivateNetworks():
            # Inside the private blocks, from a whole block to one address: random addresses would almost never be.
            network = st.sampled_from(PRIVATE_BLOCKS).flatmap(
                lambda block: st.builds(
                    lambda address, size: str(ipaddress.ip_network(f"{address}/{size}", strict=False)),
                    st.ip_addresses(network=block), st.integers(block.prefixlen, 32),
                )
            )  # fmt: skip
            strategy = st.one_of(
                st.lists(network, min_size=1, max_size=3),
                st.lists(network, max_size=2).map(lambda networks: [*networks, "10.0.0.0/8"]),  # holds the hosts
            )
        case AbsPath(roots=roots):
            strategy = _path(roots)
        case ControlPath():
            strategy = st.builds(lambda head, tail: head + tail, st.sampled_from(["/", "~/"]),
                                 st.from_regex(r"[A-Za-z0-9 ._-]{0,20}", fullmatch=True))  # fmt: skip
        case Url():
            strategy = _url()
        case ModelSource():
            name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,12}\.gguf", fullmatch=True)
            strategy = st.builds(lambda base, n: f"{base.rstrip('/')}/{n}", st.one_of(_url(), _path(("/",))), name)
        case ListOf(item=item):
            strategy = st.lists(valid(item), max_size=3)
        case Mapping(keys=keys, values=items):
            strategy = st.dictionaries(valid(keys), valid(items), max_size=3)
        case Text(max_length=length):
            strategy = st.text(max_size=min(length, 30)).filter(str.isprintable)
        case _:
            raise AssertionError(f"no strategy for {value_type!r}")
    return strategy.filter(lambda value: value_type(value) is None)


def spliced(value_type: ValueType) -> st.SearchStrategy:
    """A valid value with an injection spliced in: the near misses a check must still catch."""

    def splice(value, injection, where):
        if isinstance(value, str):
            cut = where % (len(value) + 1)
            return value[:cut] + injection + value[cut:]
        if isinstance(value, (list, tuple)):
            return [*value, injection]
        if isinstance(value, dict):
            return {**value, injection: next(iter(value.values()), injection)}
        return injection

    return st.builds(splice, valid(value_type), st.sampled_from(INJECTIONS), st.integers(0, 64))


def hostile_for(value_type: ValueType) -> st.SearchStrategy:
    if isinstance(value_type, Typed):  # pyinfra's own, passed on as they are: only hostile values
        return hostile
    return st.one_of(hostile, spliced(value_type))


def all_setting_types() -> dict[str, ValueType]:
    return {
        f"{prefix}_{field.name}": field.metadata["check"]
        for prefix, cls in SETTINGS.items()
        for field in dataclasses.fields(cls)
    }


PYINFRA_KEYS = ("ssh_port", "ssh_user", "ssh_key", "ssh_known_hosts_file", "ssh_strict_host_key_checking",
                "ssh_password", "_sudo", "_sudo_user", "_env", "_shell_executable", "_chdir")  # fmt: skip
KEYS = {**all_setting_types(), **HOST_VALUES, **{key: pyinfra_value_type(key) for key in PYINFRA_KEYS}}


# What a rendered file may look like ------------------------------------------------------------------------------

SPECIALS = set("\"'`$\\;|&<>(){}%#!*?[]~^")
VARIABLE = {  # files whose line count follows the values (retries, extra hosts, optional lines): checked by shape
    "/etc/hosts (block)": re.compile(r"\d{1,3}(\.\d{1,3}){3}\t[a-z0-9.-]+( [a-z0-9.-]+)*"),
    "/etc/fstab (line)": re.compile(r"/[A-Za-z0-9._+,:@=/-]* none swap sw 0 0"),
    "/etc/systemd/timesyncd.conf.d/clawlan.conf": re.compile(r"#.*|\[Time\]|NTP=[a-z0-9.-]+( [a-z0-9.-]+)*"),
    "/etc/clawlan/model-server.conf": re.compile(
        r"#.*|[A-Z_]+=[A-Za-z0-9._/+-]*|LLAMA_SERVER_ARGS=--[a-z-]+( [A-Za-z0-9._/+-]+)*"
    ),
}
SLOTS = re.compile(r"--slots \d+ ")
NGINX_SERVER = re.compile(r"    server [a-z0-9.-]+:\d+ max_fails=0;")
ADMITTED_SUBJECT = re.compile(r'    "CN=[a-z0-9.-]+,OU=(frontend|monitor),O=[^"\\$;\n]+" (frontend|monitor);')


def specials(line: str) -> Counter:
    return Counter(c for c in line if c in SPECIALS)


@cache
def baseline(engine: str = LLAMA_SERVER) -> dict[str, str]:
    """The valid site's files; with llama-cpp-python, Prometheus has no model server to scrape or alert on."""
    hosts = good_hosts()
    hosts["back"][1]["model_server_engine"] = engine
    return site_files(build_site(hosts))


@cache
def engine_unit_lines() -> set[str]:
    """The model server unit's lines for the valid site, under either engine, and on the GPU with either driver."""
    site = build_site(good_hosts())
    model = site.model_server_config(site.topology.backend.name)
    engines = [dataclasses.replace(model, engine=engine) for engine in (LLAMA_SERVER, LLAMA_CPP_PYTHON)]
    gpus = [dataclasses.replace(model, compute=VULKAN, vulkan_driver=driver) for driver in (RADV, LAVAPIPE)]
    return {line for config in (*engines, *gpus) for line in unit_text(config).split("\n")}


def assert_renders_safely(site) -> None:
    """Each file as the template makes it for the valid site: the same lines, with no quote, $, backslash,
    semicolon... that the template's line does not have (files whose shape follows the values: checked by shape)."""
    base = baseline(site.settings[site.topology.backend.name].model_server.engine)
    for name, text in site_files(site).items():
        host, path = name.split(":", 1)
        name = f"{'front' if site.topology.host(host).role == 'frontend' else 'back'}:{path}"  # the valid site's host
        lines = text.split("\n")
        assert all(line.replace("\t", "").isprintable() for line in lines), f"{name}: a control character"
        if path.endswith(".json"):
            json.loads(text)
            continue
        if path.endswith(".yml"):
            yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if path.endswith("/clawlan.rules.yml"):  # its texts wrap with the values' lengths: checked as what it means
            assert yaml.safe_load(text) == rules_document(site.prometheus_config().thresholds), name
            continue
        if path in VARIABLE:
            assert all(VARIABLE[path].fullmatch(line) for line in lines if line), f"{name}: {text!r}"
            continue
        if path.endswith("clawlan-model-server.service"):  # the engine, compute, mlock and GPU switches change it,
            # and the warm-up's slot count, a whole number
            extra = {"LimitMEMLOCK=infinity", "PrivateDevices=no", "PrivateDevices=yes"}
            known = {*base[name].split("\n"), *extra, *engine_unit_lines()}
            assert {SLOTS.sub("--slots N ", line) for line in lines} <= {SLOTS.sub("--slots N ", k) for k in known}, (
                name
            )
            continue
        expected = base.get(name, "").split("\n")
        assert len(lines) == len(expected), f"{name}: {len(lines)} lines, the template makes {len(expected)}"
        for line, model in zip(lines, expected, strict=True):
            if ADMITTED_SUBJECT.fullmatch(model):
                assert ADMITTED_SUBJECT.fullmatch(line), f"{name}: {line!r}"
            else:
                assert specials(line) == specials(model), f"{name}: {line!r} (template line {model!r})"


def printable_all_through(value) -> bool:
    if isinstance(value, str):
        return value.isprintable()
    if isinstance(value, (list, tuple)):
        return all(printable_all_through(item) for item in value)
    if isinstance(value, dict):
        return all(printable_all_through(k) and printable_all_through(item) for k, item in value.items())
    return True


def check(hosts, names: set[str], key: str, value, accepted: bool) -> None:
    """The property: refused with host and key named, or built and rendered safely; nothing else ever raised."""
    try:
        site = build_site(hosts)
    except InventoryError as error:
        named = {(p.host, p.key) for p in error.problems}
        if not accepted:  # refused by its own check: the message says where
            assert named & {(name, key) for name in names | {"*"}}, f"{key}={value!r}: {sorted(named)}"
        assert all("\n" not in p.message for p in error.problems)
        return
    assert accepted, f"{key}={value!r} passed the inventory check but not its value type"
    assert printable_all_through(value)
    assert_renders_safely(site)


@pytest.mark.parametrize("key", sorted(KEYS))
@PER_KEY
@given(data=st.data())
def test_a_hostile_value_is_refused_by_host_and_key_or_rendered_safely(key, data):
    value_type = KEYS[key]
    value = data.draw(hostile_for(value_type), label=key)
    check(on_both_hosts(key, value), {"front", "back"}, key, value, accepted=value_type(value) is None)


@pytest.mark.parametrize("key", sorted(k for k, t in KEYS.items() if not isinstance(t, Typed)))
@VALID_PER_KEY
@given(data=st.data())
def test_a_valid_value_renders_safely(key, data):
    """Odd but valid values (range ends, long names, every character a type allows) reach the files unharmed;
    one that another rule refuses (a port two services share, a model that does not fit) is named as usual."""
    value = data.draw(valid(KEYS[key]), label=key)
    check(on_both_hosts(key, value), {"front", "back"}, key, value, accepted=True)


@PER_KEY
@given(name=st.one_of(hostile_text, _labels()))
def test_a_hostile_host_name_is_refused_or_is_a_dns_label(name):
    hosts = good_hosts()
    if name in hosts:
        return
    hosts[name] = hosts.pop("front")
    check(hosts, {name}, "name", name, accepted=HOST_NAME(name) is None)


@PER_KEY
@given(data=st.data())
def test_the_value_types_never_raise(data):
    value_type = data.draw(st.sampled_from(sorted(set(KEYS.values()), key=repr)))
    message = value_type(data.draw(hostile))
    assert message is None or ("\n" not in message and len(message) < 1000)


def test_the_baseline_passes_its_own_checks():
    assert_renders_safely(build_site(good_hosts()))

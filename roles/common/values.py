"""The kinds of value an inventory may hold, each one a check that says what it accepts and what it refuses.

Inventory values end up in files and commands on the hosts, written as root. So every setting declares a value
type (``setting()`` refuses a field without one) and the host keys use the same types: a value is accepted only when
it cannot break out of the file or command it goes into. A value type is a small frozen object:

- called with a value, it returns None when the value is acceptable, else one line saying what is wrong;
- ``annotation`` is the Python type it accepts, as a settings field annotates it (a test holds the two equal);
- ``describe`` is a one-line description of what it accepts, for people (README's settings tables print it).

The checks never raise: any value, however odd (NaN, a 10,000-digit number, a list of dicts), gets a message.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
import typing
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

SHOWN_LENGTH = 80


def shown(value: Any) -> str:
    """``repr`` of a value for a message, cut short; never raises (repr of a huge int does, by default)."""
    try:
        text = repr(value)
    except Exception:  # ValueError: too many digits; RecursionError: a self-containing list
        return f"a value too large to show ({type(value).__name__})"
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(number: float) -> str:
    """A bound as people write it: 16777216, 0.001, 4096."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


class ValueType:
    """A value type: ``type(value)`` is None or the problem; ``annotation``; ``describe``."""

    @property
    def annotation(self) -> Any:
        raise NotImplementedError

    @property
    def describe(self) -> str:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """A short noun for the kind of value ("DNS name"), for the descriptions of lists and mappings of them."""
        return self.describe

    def has_type(self, value: Any) -> bool:
        """Whether ``value`` is of the Python type this value type reads (its content is checked after)."""
        return isinstance(value, self.annotation)

    def problem(self, value: Any) -> str | None:
        """The content check, for a value of the right Python type."""
        return None

    def __call__(self, value: Any) -> str | None:
        if not self.has_type(value):
            return f"expected {self.describe}, got {shown(value)}"
        return self.problem(value)

    def __str__(self) -> str:
        return self.describe


# Numbers and switches -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WholeNumber(ValueType):
    """An integer in a closed range: not a bool, not a float (not even 2.0)."""

    low: int
    high: int

    annotation = int

    @property
    def describe(self) -> str:
        return f"a whole number from {_plain(self.low)} to {_plain(self.high)}"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)  # bool is an int to Python, not to people

    def problem(self, value: int) -> str | None:
        if self.low <= value <= self.high:
            return None
        return f"must be between {_plain(self.low)} and {_plain(self.high)}, got {shown(value)}"


@dataclass(frozen=True)
class Port(WholeNumber):
    """A TCP port, 1 to 65535 (port clashes across roles on one host are refused by the inventory check)."""

    low: int = 1
    high: int = 65535

    @property
    def describe(self) -> str:
        return "a TCP port, 1 to 65535"


@dataclass(frozen=True)
class Number(ValueType):
    """Finite: NaN and infinity are refused (NaN passes every comparison as false, so a range alone lets it in)."""

    low: float
    high: float

    annotation = float

    @property
    def describe(self) -> str:
        return f"a number from {_plain(self.low)} to {_plain(self.high)}"

    def has_type(self, value: Any) -> bool:
        return _is_number(value)

    def problem(self, value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {shown(value)}"
        if self.low <= value <= self.high:
            return None
        return f"must be between {_plain(self.low)} and {_plain(self.high)}, got {shown(value)}"


@dataclass(frozen=True)
class Flag(ValueType):
    """true or false, nothing that merely looks like it ("yes", 1)."""

    annotation = bool

    @property
    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Choice(ValueType):
    """One of a fixed set of words."""

    options: tuple[str, ...]

    def __init__(self, *options: str):
        object.__setattr__(self, "options", options)

    @property
    def annotation(self) -> Any:
        return Literal[self.options]

    @property
    def describe(self) -> str:
        if len(self.options) == 1:
            return repr(self.options[0])
        return "one of " + ", ".join(repr(option) for option in self.options)

    @property
    def name(self) -> str:
        return " or ".join(repr(option) for option in self.options)

    def has_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def problem(self, value: str) -> str | None:
        return None if value in self.options else f"expected {' or '.join(map(repr, self.options))}, got {shown(value)}"


@dataclass(frozen=True)
class Either(ValueType):
    """One of several value types, e.g. a number or 'auto': the first whose Python type fits judges the value."""

    arms: tuple[ValueType, ...]

    def __init__(self, *arms: ValueType):
        object.__setattr__(self, "arms", arms)

    @property
    def annotation(self) -> Any:
        return typing.Union[tuple(arm.annotation for arm in self.arms)]  # noqa: UP007 (built from a tuple)

    @property
    def describe(self) -> str:
        return " or ".join(arm.describe for arm in self.arms)

    def has_type(self, value: Any) -> bool:
        return any(arm.has_type(value) for arm in self.arms)

    def problem(self, value: Any) -> str | None:
        fitting = [arm for arm in self.arms if arm.has_type(value)]
        problems = [arm(value) for arm in fitting]
        if any(p is None for p in problems):
            return None
        if len(fitting) == 1 and not isinstance(fitting[0], Choice):
            return problems[0]  # e.g. the range of the number arm
        return f"expected {self.describe}, got {shown(value)}"


# Text -----------------------------------------------------------------------------------------------------------


def _control_problem(value: str) -> str | None:
    """Line breaks (also the Unicode ones), NUL, escapes, format characters: what breaks a line-based file."""
    if value.isprintable():
        return None
    bad = next(c for c in value if not c.isprintable())
    return f"must not contain control characters or line breaks (found {bad!r}), got {shown(value)}"


@dataclass(frozen=True)
class Text(ValueType):
    """Free text: printable characters only (str.isprintable: no line breaks, tabs, NUL or other control or format
    characters), of bounded length."""

    max_length: int = 200

    annotation = str

    @property
    def describe(self) -> str:
        return f"text of at most {self.max_length} printable characters (no line breaks or control characters)"

    def problem(self, value: str) -> str | None:
        if len(value) > self.max_length:
            return f"must be at most {self.max_length} characters, got {len(value)}"
        return _control_problem(value)


_SUBJECT_REFUSED = "\"'`,=/\\+;<>#$"


@dataclass(frozen=True)
class SubjectText(ValueType):
    """A certificate subject field (O=): nginx matches the subject as text (RFC 2253, which escapes these
    characters and every non-ASCII byte), so only what needs no escaping is accepted."""

    annotation = str

    @property
    def describe(self) -> str:
        return (
            "a certificate subject field: 1 to 64 printable ASCII characters, no quotes, commas, =, /, \\, +, ;, "
            "<, >, #, $ or backticks, no leading or trailing space"
        )

    def problem(self, value: str) -> str | None:
        if not 1 <= len(value) <= 64:
            return f"must be 1 to 64 characters, got {len(value)}"
        if not (value.isascii() and value.isprintable()):
            return f"must be printable ASCII (no control characters or non-ASCII letters), got {shown(value)}"
        bad = sorted(set(value) & set(_SUBJECT_REFUSED))
        if bad:
            return f"must not contain {' '.join(bad)} (certificate subjects are matched as text), got {shown(value)}"
        if value != value.strip():
            return f"must not start or end with a space, got {shown(value)}"
        return None


@dataclass(frozen=True)
class Pattern(ValueType):
    """Text that matches one regular expression, whole (ASCII only: \\d would also match other scripts' digits)."""

    regex: str
    what: str  # what it is, for people: "a plain name (letters, digits, . _ -)"
    max_length: int = 64

    annotation = str

    @property
    def describe(self) -> str:
        return f"{self.what}, at most {self.max_length} characters"

    def problem(self, value: str) -> str | None:
        if len(value) <= self.max_length and re.fullmatch(self.regex, value, re.ASCII):
            return None
        return f"must be {self.what}, got {shown(value)}"


@dataclass(frozen=True)
class EmailAddress(Pattern):
    """An e-mail address, plain: no display name, quotes, spaces or anything a mail header could be split on."""

    regex: str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
    what: str = "an e-mail address like alerts@example.org"
    max_length: int = 254


@dataclass(frozen=True)
class Name(Pattern):
    """A plain name: a model id, a chat format."""

    regex: str = r"[A-Za-z0-9][A-Za-z0-9._-]*"
    what: str = "a plain name (letters, digits, . _ -, starting with a letter or digit)"


@dataclass(frozen=True)
class UserName(Pattern):
    """A login name as useradd accepts it."""

    regex: str = r"[A-Za-z_][A-Za-z0-9_.-]*"
    what: str = "a login name (a letter or _ first, then letters, digits, . _ -)"
    max_length: int = 32


@dataclass(frozen=True)
class DebPackage(Pattern):
    """A Debian package name, as apt-get takes it: no options, spaces or shell characters."""

    regex: str = r"[a-z0-9][a-z0-9+.-]+"
    what: str = "a Debian package name (lowercase letters, digits, + . -)"
    max_length: int = 100

    @property
    def name(self) -> str:
        return "Debian package name (lowercase letters, digits, + . -)"


@dataclass(frozen=True)
class Sha256(Pattern):
    """A sha256 digest as sha256sum prints it."""

    regex: str = r"[0-9a-f]{64}"
    what: str = "64 lowercase hex digits (sha256sum's output)"

    @property
    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class Flags(Pattern):
    """Build flags (CMAKE_ARGS): words that need no quoting, so no quote is accepted."""

    regex: str = r"[A-Za-z0-9_=.,:;/+ -]*"
    what: str = (
        "build flags: words of letters, digits and _ = . , : ; / + - separated by spaces (no quotes, $, backticks "
        "or control characters); may be empty"
    )
    max_length: int = 1000


_VERSIONS = {
    "semver": (
        r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?",
        "an exact version like 2026.9.6 (a pin, not a range or a tag)",
    ),
    "pep440": (
        r"[0-9]+(\.[0-9]+)+((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?",
        "an exact version like 0.3.36 (a pin, not a range)",
    ),
}


@dataclass(frozen=True)
class Version(ValueType):
    """A version pin: "semver" (npm: 1.2.3 or 1.2.3-beta.1) or "pep440" (PyPI: 0.3.36, 1.0rc1, 1.0.post1)."""

    scheme: Literal["semver", "pep440"] = "semver"

    annotation = str

    @property
    def describe(self) -> str:
        return _VERSIONS[self.scheme][1]

    def problem(self, value: str) -> str | None:
        regex, what = _VERSIONS[self.scheme]
        if len(value) <= 64 and re.fullmatch(regex, value, re.ASCII):
            return None
        return f"must be {what}, got {shown(value)}"


# openclaw's package.json: "node": ">=24.16.0 <25 || >=26.1.0"
_NODE_SUPPORTED = "Node.js >=24.16 <25 or >=26.1 (what openclaw declares)"


@dataclass(frozen=True)
class NodeVersion(ValueType):
    """An exact Node.js version that openclaw supports (its package.json's engines range)."""

    annotation = str

    @property
    def describe(self) -> str:
        return f"an exact Node.js version like 24.19.0: {_NODE_SUPPORTED}"

    def problem(self, value: str) -> str | None:
        match = re.fullmatch(r"([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})", value, re.ASCII)
        if not match:
            return f"must be an exact version like 24.19.0, got {shown(value)}"
        major, minor, _ = map(int, match.groups())
        if (major == 24 and minor >= 16) or (major == 26 and minor >= 1) or major > 26:
            return None
        return f"{value} is too old or unsupported: {_NODE_SUPPORTED}"


# Names and addresses --------------------------------------------------------------------------------------------

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"


@dataclass(frozen=True)
class DnsLabel(ValueType):
    """One DNS label (a short host name or an alias): lowercase letters, digits and -."""

    annotation = str

    @property
    def name(self) -> str:
        return "DNS label"

    @property
    def describe(self) -> str:
        return "a DNS label: 1 to 63 lowercase letters, digits and -, not starting or ending with -"

    def problem(self, value: str) -> str | None:
        return None if re.fullmatch(_LABEL, value, re.ASCII) else f"{shown(value)} is not a DNS label ({self.describe})"


@dataclass(frozen=True)
class DnsName(ValueType):
    """A DNS name: labels joined by dots, at most 253 characters."""

    annotation = str

    @property
    def name(self) -> str:
        return "DNS name"

    @property
    def describe(self) -> str:
        return "a DNS name: DNS labels joined by dots (lowercase letters, digits, -), at most 253 characters"

    def problem(self, value: str) -> str | None:
        labels = value.split(".")
        if len(value) > 253 or not all(re.fullmatch(_LABEL, label, re.ASCII) for label in labels):
            return f"{shown(value)} is not a valid DNS name ({self.describe})"
        if labels[-1].isdigit():
            return f"{shown(value)} is not a valid DNS name (its last label is a number: an address, not a name)"
        return None


_IPV6 = "IPv6 addresses are not supported (clawlan writes IPv4 into /etc/hosts, nginx and Prometheus): use IPv4"


@dataclass(frozen=True)
class LanIPv4(ValueType):
    """An IPv4 address a host on the LAN can be reached at."""

    annotation = str

    @property
    def name(self) -> str:
        return "LAN IPv4 address"

    @property
    def describe(self) -> str:
        return (
            "an IPv4 address usable on a LAN, like 192.168.1.10 (not loopback, link-local, multicast, broadcast, "
            "0.0.0.0/8 or reserved; IPv6 is not supported)"
        )

    def problem(self, value: str) -> str | None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return f"must be an IPv4 address like 192.168.1.10, got {shown(value)}"
        if address.version == 6:
            return f"{value}: {_IPV6}"
        refused = (
            (address.is_loopback, "a loopback address: no other host reaches it"),
            (address in ipaddress.ip_network("0.0.0.0/8"), "in 0.0.0.0/8 ('this network'), no host's address"),
            (address.is_multicast, "a multicast address"),
            (address == ipaddress.ip_address("255.255.255.255"), "the broadcast address"),
            (address.is_link_local, "link-local (169.254.0.0/16): made up by each host, never pinned"),
            (address.is_reserved, "reserved (240.0.0.0/4)"),
        )
        reason = next((reason for bad, reason in refused if bad), None)
        return f"{value} is {reason}; give the host's LAN address" if reason else None


@dataclass(frozen=True)
class HostName(ValueType):
    """A host as clients reach it: a DNS name or an IPv4 address (a time server, a URL's host)."""

    annotation = str

    @property
    def name(self) -> str:
        return "DNS name or IPv4 address"

    @property
    def describe(self) -> str:
        return "a DNS name or an IPv4 address (IPv6 is not supported)"

    def problem(self, value: str) -> str | None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return DnsName()(value) and f"{shown(value)} is neither a DNS name nor an IPv4 address"
        return LanIPv4()(value)


@dataclass(frozen=True)
class Networks(ValueType):
    """IPv4 networks in CIDR form, at least one."""

    annotation = tuple[str, ...]

    @property
    def describe(self) -> str:
        return "a non-empty list of IPv4 networks like 192.168.0.0/16 (IPv6 is not supported)"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)

    def problem(self, value: tuple[str, ...]) -> str | None:
        for network in value:
            try:
                parsed = ipaddress.ip_network(network) if network.isprintable() and " " not in network else None
            except ValueError:
                parsed = None
            if parsed is None:
                return f"{shown(network)} is not a network (like 192.168.0.0/16)"
            if parsed.version == 6:
                return f"{network}: {_IPV6}"
        return None if value else "must name at least one network, or nobody can reach the service"


# Paths and URLs -------------------------------------------------------------------------------------------------

_PATH_CHARACTER = r"[A-Za-z0-9._+,:@=-]"
_FILE_NAME = r"[A-Za-z0-9][A-Za-z0-9._+-]*"


@dataclass(frozen=True)
class AbsPath(ValueType):
    """An absolute path on a host, or on the control machine with ``roots=("/",)``.

    Normalised (no ``.``, ``..``, ``//`` or trailing ``/``) and of plain characters only, so it is one word in an
    fstab line, a unit file or a command, whatever quotes (or none) surround it there.
    """

    roots: tuple[str, ...] = ("/",)

    annotation = str

    @property
    def describe(self) -> str:
        where = "" if self.roots == ("/",) else f" under {', '.join(self.roots)}"
        return (
            f"an absolute path{where}: normalised (no . or .. or //), of letters, digits and . _ + , : @ = - only "
            "(no spaces, quotes, backslashes or control characters)"
        )

    def problem(self, value: str) -> str | None:
        if not value.startswith("/"):
            return f"must be an absolute path, got {shown(value)}"
        if not re.fullmatch(rf"(/{_PATH_CHARACTER}+)+|/", value, re.ASCII):
            if any(part in (".", "..") for part in value.split("/")) or "//" in value or value.endswith("/"):
                return f"must be a normalised path (no . or .. or // or trailing /), got {shown(value)}"
            return (
                "must contain only letters, digits and . _ + , : @ = - between slashes (no spaces, quotes, "
                f"backslashes or control characters), got {shown(value)}"
            )
        if any(part in (".", "..") for part in value.split("/")):
            return f"must be a normalised path (no . or ..), got {shown(value)}"
        if len(value) > 1024:
            return f"must be at most 1024 characters, got {len(value)}"
        if not any(value == root or value.startswith(root.rstrip("/") + "/") for root in self.roots):
            return f"must be under {', '.join(self.roots)}, got {shown(value)}"
        return None


@dataclass(frozen=True)
class ControlPath(ValueType):
    """A directory or file on the control machine (never on a host): absolute or under ``~``."""

    annotation = str

    @property
    def describe(self) -> str:
        return "a path on the control machine: absolute or starting with ~/, printable (no control characters), no .."

    def problem(self, value: str) -> str | None:
        if not (value.startswith("/") or value == "~" or value.startswith("~/")):
            return f"must be an absolute path or start with ~/, got {shown(value)}"
        if ".." in value.split("/"):
            return f"must not contain .., got {shown(value)}"
        if len(value) > 1024:
            return f"must be at most 1024 characters, got {len(value)}"
        return _control_problem(value)


_URL_REFUSED = set(" \"'`$\\;(){}<>|^[]")


@dataclass(frozen=True)
class Url(ValueType):
    """An http(s) URL, of characters that mean nothing to a shell, nginx or systemd even unquoted."""

    annotation = str

    @property
    def describe(self) -> str:
        return (
            "an http:// or https:// URL naming a host (a DNS name or an IPv4 address), without credentials, spaces, "
            "quotes, backticks, $ ; ( ) { } < > | ^ \\ or control characters"
        )

    def problem(self, value: str) -> str | None:
        if not re.match(r"https?://", value):
            return f"must be an http:// or https:// URL, got {shown(value)}"
        if value[value.index("//") + 2 :].startswith("["):
            return f"{shown(value)}: {_IPV6}"
        if len(value) > 2048:
            return f"must be at most 2048 characters, got {len(value)}"
        if not (value.isascii() and value.isprintable()) or _URL_REFUSED & set(value):
            return (
                "must not contain spaces, quotes, backticks, $ ; ( ) { } < > | ^ \\, control characters or non-ASCII "
                f"letters (percent-encode them), got {shown(value)}"
            )
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as error:
            return f"is not a valid URL ({error}), got {shown(value)}"
        if "@" in parts.netloc:
            return f"must not carry credentials (user@ or user:password@), got {shown(value)}"
        if not parts.hostname:
            return f"names no host, got {shown(value)}"
        try:
            ipaddress.IPv4Address(parts.hostname)  # any IPv4 address: a mirror on loopback is fine
        except ValueError:
            problem = DnsName()(parts.hostname)
            if problem:
                return f"host {problem}"
        if port == 0:
            return f"port 0 is no port, got {shown(value)}"
        return None


class HttpsUrl(Url):
    """A registry's URL: https only, of characters that mean nothing to a shell, nginx or systemd even unquoted."""

    @property
    def describe(self) -> str:
        return super().describe.replace("an http:// or https:// URL", "an https:// URL")

    def problem(self, value: str) -> str | None:
        if not value.startswith("https://"):
            return f"must be an https:// URL (registries are reached over https only), got {shown(value)}"
        return super().problem(value)


def file_name(location: str) -> str:
    """The file name a model source (a control-machine path or an http(s) URL) gives the model on the host."""
    return posixpath.basename(urlsplit(location).path) if "://" in location else posixpath.basename(location)


@dataclass(frozen=True)
class ModelSource(ValueType):
    """Where a file comes from: a path on the control machine, or an http(s) URL; its name becomes a file name on
    the host, so that name must be plain."""

    annotation = str

    @property
    def describe(self) -> str:
        return (
            "an http:// or https:// URL, or an absolute path on the control machine (both as for URLs and paths), "
            "ending in a plain file name (letters, digits, . _ + -)"
        )

    def problem(self, value: str) -> str | None:
        if value.startswith(("http://", "https://")):
            problem = Url()(value)
        elif value.startswith("/"):
            problem = AbsPath()(value)
        else:
            return f"must be an absolute path on the control machine or an http(s) URL, got {shown(value)}"
        if problem:
            return problem
        name = file_name(value)
        if not re.fullmatch(_FILE_NAME, name, re.ASCII) or len(name) > 255:
            return f"must end in a plain file name (letters, digits, . _ + -), got {shown(name)}"
        return None


# Collections ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListOf(ValueType):
    """A list of values of one type, of bounded length."""

    item: ValueType
    max_items: int = 64

    @property
    def annotation(self) -> Any:
        return tuple[self.item.annotation, ...]

    @property
    def describe(self) -> str:
        return f"a list of at most {self.max_items} items, each a {self.item.name}"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, (list, tuple))

    def problem(self, value: tuple) -> str | None:
        if len(value) > self.max_items:
            return f"must have at most {self.max_items} items, got {len(value)}"
        for index, item in enumerate(value, 1):
            problem = self.item(item)
            if problem:
                return f"item {index}: {problem}"
        return None


@dataclass(frozen=True)
class Mapping(ValueType):
    """A mapping of one value type to another, of bounded size."""

    keys: ValueType
    values: ValueType
    max_items: int = 64

    @property
    def annotation(self) -> Any:
        return dict[self.keys.annotation, self.values.annotation]

    @property
    def describe(self) -> str:
        return f"a mapping of {self.keys.name} to {self.values.name}, at most {self.max_items} entries"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, MappingABC)

    def problem(self, value: MappingABC) -> str | None:
        if len(value) > self.max_items:
            return f"must have at most {self.max_items} entries, got {len(value)}"
        for key, item in value.items():
            problem = self.keys(key)
            if problem:
                return f"name {shown(key)}: {problem}"
            problem = self.values(item)
            if problem:
                return f"{key!r}: {problem}"
        return None


@dataclass(frozen=True)
class OrEmpty(ValueType):
    """A text value type, or "" for "not set" (what the empty string means is in ``meaning``)."""

    inner: ValueType
    meaning: str

    annotation = str

    @property
    def describe(self) -> str:
        return f"{self.inner.describe}; or empty: {self.meaning}"

    def problem(self, value: str) -> str | None:
        return None if value == "" else self.inner(value)


@dataclass(frozen=True)
class Secret(ValueType):
    """A secret (a password): checked like ``inner``, but a message never shows the value."""

    inner: ValueType

    @property
    def annotation(self) -> Any:
        return self.inner.annotation

    @property
    def describe(self) -> str:
        return f"{self.inner.describe} (a secret)"

    def has_type(self, value: Any) -> bool:
        return self.inner.has_type(value)

    def __call__(self, value: Any) -> str | None:
        return (
            None if self.inner(value) is None else f"must be {self.inner.describe} (the value is a secret: not shown)"
        )


@dataclass(frozen=True)
class Typed(ValueType):
    """Anything of a Python type, checked by type only: for pyinfra's own rarely used keys (callables, mappings passed
    on as they are), where pyinfra itself decides what the value means."""

    python_type: Any

    @property
    def annotation(self) -> Any:
        return self.python_type

    @property
    def describe(self) -> str:
        return f"a value of type {getattr(self.python_type, '__name__', self.python_type)} (passed to pyinfra as is)"

    def has_type(self, value: Any) -> bool:
        from typeguard import TypeCheckError, check_type

        try:
            check_type(value, self.python_type)
        except TypeCheckError:
            return False
        except Exception:  # typeguard cannot check this annotation: pyinfra will, at connect time
            return True
        return True

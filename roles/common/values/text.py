"""Text: free text, certificate subjects, patterns (names, hashes, flags), versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from roles.common.values.core import ValueType, shown


def control_problem(value: str) -> str | None:
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
        return control_problem(value)


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

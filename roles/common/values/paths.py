"""Paths and URLs: on a host, on the control machine, on the web; where the model comes from."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from roles.common.values.core import ValueType, shown
from roles.common.values.network import NO_IPV6, DnsName
from roles.common.values.text import control_problem

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
        return control_problem(value)


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
            return f"{shown(value)}: {NO_IPV6}"
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

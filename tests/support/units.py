"""Reading a rendered systemd unit in tests."""


def directives(text: str) -> list[tuple[str, str]]:
    """The [Service] section's assignments, in order."""
    found, section = [], None
    for line in text.splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.append((key, value))
    return found

"""Site-wide settings that belong to no role: inventory keys ``site_*``."""

from __future__ import annotations

from dataclasses import dataclass

from roles.settings import setting


@dataclass(frozen=True)
class SiteSettings:
    state_dir: str = setting(
        "~/.local/state/clawlan/site",
        "Control-machine directory (0700, outside git) for the site CA and secrets: back it up.",
        lambda value: None if value.strip() else "must not be empty",
    )
    cache_dir: str = setting(
        "~/.cache/clawlan", "Control-machine cache of built wheels; deleting it only costs a rebuild."
    )

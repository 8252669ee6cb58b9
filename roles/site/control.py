"""The control machine, the one that deploys: where it keeps the site CA and the secrets, the wheels it builds, and
the locks of what the hosts install."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roles.common.locks import REPOSITORY_LOCKS, Lock, read_lock
from roles.site.settings import SiteSettings


@dataclass(frozen=True)
class ControlMachine:
    state_dir: Path  # 0700, outside git: the site CA and the secrets
    cache_dir: Path
    locks_dir: Path

    @classmethod
    def of(cls, settings: SiteSettings) -> ControlMachine:
        locks_dir = Path(settings.locks_dir).expanduser() if settings.locks_dir else REPOSITORY_LOCKS
        return cls(Path(settings.state_dir).expanduser(), Path(settings.cache_dir).expanduser(), locks_dir)

    def lock(self, package: str, version: str) -> Lock:
        """Raises LockMissing; the inventory check has reported a missing lock before any config is built."""
        return read_lock(self.locks_dir, package, version)

    @property
    def wheelhouse_dir(self) -> Path:
        return self.cache_dir / "wheelhouse"

    def backups_dir(self, host: str) -> Path:
        return self.state_dir / "backups" / host

    @property
    def model_server_api_key_file(self) -> Path:
        return self.state_dir / "secrets" / "model-server-api-key"

    @property
    def gateway_token_file(self) -> Path:
        return self.state_dir / "secrets" / "gateway-token"

    @property
    def alert_smtp_password_file(self) -> Path:
        """The mail relay's password: put there by a person (0600), never in the inventory."""
        return self.state_dir / "secrets" / "alert-smtp-password"

    @property
    def monitor_web_password_file(self) -> Path:
        """The password of Prometheus' and Alertmanager's UI and API (user ``clawlan``): made on first use, 0600."""
        return self.state_dir / "secrets" / "monitor-password"

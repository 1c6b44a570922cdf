"""One frozen Settings, built once from flags, `registry.toml` and JPR_* variables.

Precedence: command-line flag, then environment variable, then the data
directory's registry.toml, then the default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


CONFIG_FILE = "registry.toml"
DATABASE_FILE = "registry.db"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("jpr-data")
    listen: str = "127.0.0.1:50051"
    database_url: str = ""  # empty: the SQLite file in the data directory
    database_password_file: str = ""  # a mounted secret holding the database password
    lookup_database_url: str = ""  # optional read replica for Lookup/LookupBatch (same password file)
    registry_name: str = ""
    workers: int = 4
    tokenize_per_second: float = 500.0  # per member and replica, in elements; 0: unlimited
    tokenize_burst: int = 20_000
    lookups_per_second: float = 500.0  # per member and replica, in applicants; 0: unlimited
    lookups_burst: int = 5_000
    max_concurrent_calls: int = 1000  # calls in progress at once (streams included); beyond: RESOURCE_EXHAUSTED
    max_streams: int = 16  # long-lived calls (health watches, reflection, change watches) open at once, a thread each
    max_streams_per_caller: int = 4  # of those, what one caller (role and name) may hold
    keepalive_seconds: float = 60.0  # ping a connection idle this long; close it if no answer in 20 s
    min_client_ping_seconds: float = 10.0  # a client pinging more often gets GOAWAY (too_many_pings)
    serious_term_days: int = 3 * 365
    severe_term_days: int = 5 * 365
    early_removal_after_days: int = 365
    retention_days: int = 3 * 365  # after a subject's last listing or decision ends, its tokens are unlinked
    notice_days: int = 0  # between acceptance and ACTIVE; lookups answer REVIEW meanwhile
    max_clock_skew_seconds: int = 300
    expiry_interval_seconds: int = 60
    follow_interval_seconds: float = 0.2  # how often a replica reads other replicas' changes
    max_lag_seconds: float = 30.0  # lookups refuse (UNAVAILABLE) when the view is older than this
    log_level: str = "INFO"

    @property
    def effective_database_url(self) -> str:
        if not self.database_url:
            return f"sqlite+pysqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"
        return self._with_password(self.database_url)

    @property
    def effective_lookup_database_url(self) -> str:
        """Where lookups read: a read replica when one is configured, else the primary."""
        return self._with_password(self.lookup_database_url) if self.lookup_database_url else self.effective_database_url

    def _with_password(self, url: str) -> str:
        if not self.database_password_file:
            return url
        # The password stays out of the URL, the environment and `ps`: it is read from a secret file.
        from sqlalchemy import make_url  # here, not at the top: platform commands never load SQLAlchemy

        password = Path(self.database_password_file).read_text(encoding="utf-8").strip()
        return make_url(url).set(password=password).render_as_string(hide_password=False)

    def path(self, name: str) -> Path:
        return self.data_dir / name


_ENV_PREFIX = "JPR_"


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the Settings; unknown keys in registry.toml are an error, not ignored."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    env = {f.name: environ[_ENV_PREFIX + f.name.upper()] for f in fields(Settings) if _ENV_PREFIX + f.name.upper() in environ}
    data_dir = Path(flags.get("data_dir") or env.get("data_dir") or Settings.data_dir)
    merged: dict[str, Any] = {**_read_toml(data_dir / CONFIG_FILE), **env, **flags, "data_dir": data_dir}
    return Settings(**{f.name: _coerce(f.type, merged[f.name]) for f in fields(Settings) if f.name in merged})


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return data


def _coerce(kind: Any, value: Any) -> Any:
    if kind in ("int", int):
        return int(value)
    if kind in ("float", float):
        return float(value)
    if kind in ("Path", Path):
        return Path(value)
    return str(value)

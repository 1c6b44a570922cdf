"""One frozen Settings, built once from flags, `registry.toml` and JPR_* variables.

Precedence: command-line flag, then environment variable, then the data
directory's registry.toml, then the default. ALLOWED holds what each setting may
be; a value outside it stops the registry at start with an error naming where the
value came from (docs/operations.md lists every variable and its range).
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from registry.domain.terms import MAX_TERM_DAYS

CONFIG_FILE = "registry.toml"
DATABASE_FILE = "registry.db"
ENV_PREFIX = "JPR_"
# JPR_* variables that are not settings: the member and admin commands read them (JPR_CREDENTIALS and
# JPR_ENDPOINT: registry/cli/connect.py; JPR_ISSUER: registry/cli/admin.py).
COMMAND_VARIABLES = ("JPR_CREDENTIALS", "JPR_ENDPOINT", "JPR_ISSUER")
# Read by the tests and benchmarks only: not configuration, so not in the README's table.
TEST_VARIABLES = ("JPR_TEST_POSTGRES_URL", "JPR_TEST_INSTALL")
# An unknown JPR_* variable is warned about; these are not.
OTHER_VARIABLES = COMMAND_VARIABLES + TEST_VARIABLES

log = logging.getLogger("jpr.settings")


class SettingsError(ValueError):
    """A setting the registry will not start with; the message says where it was given."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("jpr-data")
    listen: str = "127.0.0.1:50051"
    metrics_listen: str = ""  # HOST:PORT serving Prometheus metrics over plain HTTP; empty: none
    database_url: str = ""  # empty: the SQLite file in the data directory
    database_password_file: str = ""  # a mounted secret holding the database password
    lookup_database_url: str = ""  # optional read replica for Lookup/LookupBatch (same password file)
    registry_name: str = ""
    workers: int = 4
    processes: int = 0  # `jpr serve` processes sharing the address, each with its own index; 0: one per core
    tokenize_per_second: float = 500.0  # per member, shared by all replicas, in elements; 0: unlimited
    tokenize_burst: int = 20_000
    lookups_per_second: float = 500.0  # per member, shared by all replicas, in applicants; 0: unlimited
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
    checkpoint_interval_seconds: float = 1.0  # how often the transparency log integrates new leaves and signs a checkpoint
    follow_interval_seconds: float = 0.2  # how often a replica reads other replicas' changes
    # How often the lookup index is kept in DATA_DIR/index.snapshot (and at stop), so that a restart reads it
    # back instead of the whole database (registry/store/index_snapshot.py); 0: never written nor read.
    index_snapshot_seconds: int = 600
    max_lag_seconds: float = 30.0  # lookups refuse (UNAVAILABLE) when the view is older than this
    # The flood guard (registry/domain/flood.py): a listing matched this far out of line is quarantined.
    flood_window_minutes: int = 60
    flood_min_matches: int = 50  # strong matches within the window; 0 turns the guard off
    flood_min_platforms: int = 3  # distinct members among them
    flood_factor: float = 10.0  # times the baseline: the listing's own hourly rate, the median listing's, or 1
    flood_history_hours: int = 24  # the hours before the window that make a listing's own rate
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object a line (registry/server/log_format.py)

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

    @property
    def effective_processes(self) -> int:
        """How many processes `jpr serve` starts: `processes`, or one per core this process may run on."""
        return self.processes or min(len(os.sched_getaffinity(0)), MAX_PROCESSES)

    def path(self, name: str) -> Path:
        return self.data_dir / name


def variable(name: str) -> str:
    """The environment variable of a setting: JPR_WORKERS for workers."""
    return ENV_PREFIX + name.upper()


# Each setting's variable and the setting it sets: what the loader reads.
SETTING_VARIABLES: dict[str, str] = {variable(f.name): f.name for f in fields(Settings)}
# Every JPR_* variable the registry and its commands read: the README's configuration table lists
# each (tests/unit/test_documented_settings.py compares the two).
VARIABLES: tuple[str, ...] = (*SETTING_VARIABLES, *COMMAND_VARIABLES)


class Rule:
    """What one setting may be."""

    refusal = "is not allowed"

    @property
    def refers(self) -> bool:
        """Whether the values allowed depend on another setting's."""
        return False

    def allows(self, value: Any, settings: Settings) -> bool:
        raise NotImplementedError

    def describe(self, settings: Settings) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Rule):
    """From low to high, both included unless `above` (low refused) or `below` (high refused).
    An end may be another setting's name: that setting's value."""

    low: float | str
    high: float | str | None = None
    unit: str = ""
    above: bool = False
    below: bool = False
    refusal = "is out of range"

    @property
    def refers(self) -> bool:
        return isinstance(self.low, str) or isinstance(self.high, str)

    def allows(self, value: Any, settings: Settings) -> bool:
        low, high = _end(self.low, settings), _end(self.high, settings)
        over_low = low < value if self.above else low <= value
        under_high = high is None or (value < high if self.below else value <= high)
        return over_low and under_high

    def describe(self, settings: Settings) -> str:
        low, high = _shown(self.low, settings), _shown(self.high, settings)
        if self.high is not None and not (self.above or self.below):
            text = f"{low} to {high}"
        else:
            lower = f"more than {low}" if self.above else f"at least {low}"
            upper = "" if self.high is None else f" and {'less than' if self.below else 'at most'} {high}"
            text = lower + upper
        return f"{text} {self.unit}".rstrip()


@dataclass(frozen=True)
class OneOf(Rule):
    choices: tuple[str, ...]

    def allows(self, value: Any, settings: Settings) -> bool:
        return value in self.choices

    def describe(self, settings: Settings) -> str:
        return f"one of {', '.join(self.choices)}"


class Address(Rule):
    """HOST:PORT, as gRPC binds it (`[::]:50051` for every IPv6 address); port 0 picks a free one."""

    def allows(self, value: Any, settings: Settings) -> bool:
        host, colon, port = str(value).rpartition(":")
        return bool(host and colon and port.isascii() and port.isdigit() and int(port) <= 65535)

    def describe(self, settings: Settings) -> str:
        return "HOST:PORT with a port 0 to 65535"


_WILDCARDS = frozenset({"", "0.0.0.0", "[::]", "::"})


class MetricsAddress(Address):
    """Empty (no metrics), or HOST:PORT other than the gRPC address: the plain-HTTP metrics must never
    share the port that speaks TLS to members (port 0 on both picks two free ports). With several
    processes, process i serves its own metrics at PORT+i: none of those may be the gRPC port either."""

    refusal = "is not allowed"

    @property
    def refers(self) -> bool:
        return True

    def allows(self, value: Any, settings: Settings) -> bool:
        if value == "":
            return True
        return super().allows(value, settings) and all(
            port <= 65535 and not _same_port(address, settings.listen) for address, port in _metrics_ports(str(value), settings)
        )

    def describe(self, settings: Settings) -> str:
        text = f"empty (no metrics) or {super().describe(settings)}, not the gRPC address listen ({settings.listen})"
        given, count = settings.metrics_listen, settings.effective_processes
        if not super().allows(given, settings) or _same_port(given, settings.listen):
            return text
        return f"{text}; with {count} processes, ports PORT to PORT+{count - 1} serve metrics, one a process"


def metrics_address(address: str, process: int) -> str:
    """Where process `process` (0, 1, ...) of `jpr serve` serves its metrics: PORT+process (port 0: a free one each)."""
    host, _, port = address.rpartition(":")
    return f"{host}:{int(port) + process if int(port) else 0}"


def _metrics_ports(address: str, settings: Settings) -> list[tuple[str, int]]:
    each = (metrics_address(address, process) for process in range(settings.effective_processes))
    return [(every, int(every.rpartition(":")[2])) for every in each]


def _same_port(address: str, other: str) -> bool:
    host, _, port = address.rpartition(":")
    other_host, _, other_port = other.rpartition(":")
    hosts_meet = host == other_host or host in _WILDCARDS or other_host in _WILDCARDS
    return int(port) == int(other_port) != 0 and hosts_meet


@dataclass(frozen=True)
class Anything(Rule):
    """No check: a path or a URL is tried when it is used, and that error names it."""

    what: str

    def allows(self, value: Any, settings: Settings) -> bool:
        return True

    def describe(self, settings: Settings) -> str:
        return self.what


def _end(end: float | str | None, settings: Settings) -> Any:
    return getattr(settings, end) if isinstance(end, str) else end


def _shown(end: float | str | None, settings: Settings) -> str:
    return f"{end} ({getattr(settings, end)})" if isinstance(end, str) else str(end)


MAX_PROCESSES = 64  # each holds its own lookup index: memory, not cores, is what runs out first
A_DAY = 86_400  # caps periods in seconds: gRPC holds them as 32-bit milliseconds (under 25 days)
# What every setting may be, one entry per field (tests/unit/test_settings.py checks none is missing).
# Day spans are capped by the longest term, so no date computed from them can overflow.
ALLOWED: dict[str, Rule] = {
    "data_dir": Anything("any directory"),
    "listen": Address(),
    "metrics_listen": MetricsAddress(),
    "database_url": Anything("any SQLAlchemy URL; empty: the SQLite file in the data directory"),
    "database_password_file": Anything("any file; empty: the password, if any, is in the URL"),
    "lookup_database_url": Anything("any SQLAlchemy URL; empty: the database"),
    "registry_name": Anything("any name; empty: the one in registry.toml"),
    "workers": Range(1, 256),  # each also holds a database connection
    "processes": Range(0, MAX_PROCESSES),  # 0: one per core
    "tokenize_per_second": Range(0, unit="per second"),  # 0: unlimited
    "tokenize_burst": Range(1),
    "lookups_per_second": Range(0, unit="per second"),  # 0: unlimited
    "lookups_burst": Range(1),
    "max_concurrent_calls": Range(1),
    "max_streams": Range(1),
    "max_streams_per_caller": Range(1, "max_streams"),  # more than the replica's total is a limit that never applies
    # gRPC takes whole milliseconds; pinging an idle connection more than once a second is a load of its own.
    "keepalive_seconds": Range(1, A_DAY, "seconds"),
    "min_client_ping_seconds": Range(0, A_DAY, "seconds", above=True),
    "serious_term_days": Range(1, MAX_TERM_DAYS, "days"),  # 0 or less: a listing that ended when it was made
    "severe_term_days": Range(1, MAX_TERM_DAYS, "days"),
    "early_removal_after_days": Range(0, MAX_TERM_DAYS, "days"),  # 0: credit repair may lift a listing at once
    # 0 would unlink a subject within the hour its last listing ends or its report is rejected: a report
    # of the same person the next day could not be joined to it, nor an access request answered.
    "retention_days": Range(1, MAX_TERM_DAYS, "days"),
    "notice_days": Range(0, 365, "days"),
    "max_clock_skew_seconds": Range(0, A_DAY, "seconds"),
    "expiry_interval_seconds": Range(1, A_DAY, "seconds"),
    # Members wait this long at most for a checkpoint covering their receipt; the issue promises one every few seconds.
    "checkpoint_interval_seconds": Range(0, 10, "seconds", above=True),
    # Polling no more often than the lag allowed would let the view go stale between two polls.
    "follow_interval_seconds": Range(0, "max_lag_seconds", "seconds", above=True, below=True),
    "index_snapshot_seconds": Range(0, A_DAY, "seconds"),
    "max_lag_seconds": Range(0, A_DAY, "seconds", above=True),
    "flood_window_minutes": Range(1, 24 * 60, "minutes"),
    "flood_min_matches": Range(0, 10**9),  # 0: no flood guard
    "flood_min_platforms": Range(1, 1000),
    "flood_factor": Range(1, 10**6, above=True),
    "flood_history_hours": Range(1, 24 * 90, "hours"),
    "log_level": OneOf(("DEBUG", "INFO", "WARNING", "ERROR")),
    "log_format": OneOf(("text", "json")),
}


@dataclass(frozen=True)
class _Given:
    value: Any
    origin: str  # in the words the user typed: `--workers`, `JPR_WORKERS`, `jpr-data/registry.toml: workers`


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the Settings; a value outside ALLOWED, or an unknown key in registry.toml, is a SettingsError."""
    environ = os.environ if environ is None else environ
    _warn_unknown_variables(environ)
    names = [f.name for f in fields(Settings)]
    given = {name: _Given(environ[var], var) for var, name in SETTING_VARIABLES.items() if var in environ}
    given |= {name: _Given(value, "--" + name.replace("_", "-")) for name, value in (flags or {}).items() if value is not None}
    data_dir = given.get("data_dir", _Given(Settings.data_dir, "the default data_dir"))  # registry.toml cannot move it
    given = {**_read_toml(Path(data_dir.value) / CONFIG_FILE), **given, "data_dir": data_dir}
    settings = Settings(**{f.name: _parsed(str(f.type), given[f.name]) for f in fields(Settings) if f.name in given})
    for name in sorted(names, key=lambda name: ALLOWED[name].refers):  # what others refer to is checked first
        _check(settings, name, given.get(name))
    return settings


def _read_toml(path: Path) -> dict[str, _Given]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: {error}") from None
    unknown = sorted(set(data) - set(ALLOWED))
    if unknown:
        named = ", ".join(key + _closest(key, ALLOWED) for key in unknown)
        raise SettingsError(f"{path}: unknown setting(s) {named}; known: {', '.join(sorted(ALLOWED))}")
    return {key: _Given(value, f"{path}: {key}") for key, value in data.items()}


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):  # not 2.5 or true from registry.toml
        raise ValueError(value)
    return int(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):  # inf and nan: no range means them
        raise ValueError(value)
    return number


# A field's type (its annotation's text) -> how a given value becomes one, and what it must look like.
_PARSERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "int": (_integer, "an integer"),
    "float": (_number, "a number"),
    "Path": (Path, "a path"),
    "str": (str, "text"),
}


def _parsed(kind: str, given: _Given) -> Any:
    parse, expected = _PARSERS[kind]
    try:
        return parse(given.value)
    except (TypeError, ValueError):
        raise SettingsError(f"{given.origin}={given.value!r} is not {expected}") from None


def _check(settings: Settings, name: str, given: _Given | None) -> None:
    rule = ALLOWED[name]
    value = getattr(settings, name)
    if not rule.allows(value, settings):
        # A default is refused only when another setting it depends on was changed (max_streams).
        where = f"{given.origin}={given.value}" if given else f"the default {name}={value}"
        raise SettingsError(f"{where} {rule.refusal}: {name} must be {rule.describe(settings)}")


def _warn_unknown_variables(environ: Mapping[str, str]) -> None:
    known = [*VARIABLES, *TEST_VARIABLES]
    for name in sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known):
        log.warning("%s is not a JPR setting and is ignored%s", name, _closest(name, known))


def _closest(name: str, known: Iterable[str]) -> str:
    """"` (did you mean X?)` for a misspelt name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""

"""The one module that knows the environment.

Every environment variable flightdeck reads is named here with its default; `get()` is the value in
force (an unset or empty variable means its default). The environment is read, never written: child
processes that need a setting (dbt) are handed it explicitly (`dbt_env()`). The same code runs in dev,
test and prod: only the environment differs.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DATA_DIR = "FLIGHTDECK_DATA_DIR"
DUCKDB_PATH = "FLIGHTDECK_DUCKDB_PATH"
DUCKDB_MEMORY_LIMIT = "FLIGHTDECK_DUCKDB_MEMORY_LIMIT"
DUCKDB_LOCK_WAIT = "FLIGHTDECK_DUCKDB_LOCK_WAIT_SECONDS"
WAREHOUSE = "FLIGHTDECK_WAREHOUSE"
DUCKLAKE_CATALOG = "FLIGHTDECK_DUCKLAKE_CATALOG"
DUCKLAKE_DATA_PATH = "FLIGHTDECK_DUCKLAKE_DATA_PATH"
WAREHOUSE_WRITERS = "FLIGHTDECK_WAREHOUSE_WRITERS"
DUCKLAKE_RETENTION_DAYS = "FLIGHTDECK_DUCKLAKE_SNAPSHOT_RETENTION_DAYS"
DUCKLAKE_MAINTENANCE_TIME = "FLIGHTDECK_DUCKLAKE_MAINTENANCE_TIME"
STREAM_URL = "FLIGHTDECK_STREAM_URL"
STREAM_KEY = "FLIGHTDECK_STREAM_KEY"
STREAM_BATCH_SIZE = "FLIGHTDECK_STREAM_BATCH_SIZE"
STREAM_CLAIM_IDLE_SECONDS = "FLIGHTDECK_STREAM_CLAIM_IDLE_SECONDS"
REFERENCE_DB_URL = "FLIGHTDECK_REFERENCE_DB_URL"
PARTITION_START = "FLIGHTDECK_PARTITION_START"
PARTITION_END = "FLIGHTDECK_PARTITION_END"
MAX_QUARANTINE_RATE = "FLIGHTDECK_MAX_QUARANTINE_RATE"
MIN_VOLUME_FRACTION = "FLIGHTDECK_MIN_VOLUME_FRACTION"
UI_URL = "FLIGHTDECK_UI_URL"
SMTP_HOST = "FLIGHTDECK_SMTP_HOST"
SMTP_PORT = "FLIGHTDECK_SMTP_PORT"
SMTP_USER = "FLIGHTDECK_SMTP_USER"
SMTP_PASSWORD = "FLIGHTDECK_SMTP_PASSWORD"
SMTP_STARTTLS = "FLIGHTDECK_SMTP_STARTTLS"
ALERT_EMAIL_FROM = "FLIGHTDECK_ALERT_EMAIL_FROM"
ALERT_EMAIL_TO = "FLIGHTDECK_ALERT_EMAIL_TO"
ALERT_WEBHOOK_URL = "FLIGHTDECK_ALERT_WEBHOOK_URL"
ALERT_THROTTLE_SECONDS = "FLIGHTDECK_ALERT_THROTTLE_SECONDS"
WEATHER_API_URL = "FLIGHTDECK_WEATHER_API_URL"
WEATHER_CONNECT_TIMEOUT = "FLIGHTDECK_WEATHER_CONNECT_TIMEOUT_SECONDS"
WEATHER_READ_TIMEOUT = "FLIGHTDECK_WEATHER_READ_TIMEOUT_SECONDS"
WEATHER_MAX_ATTEMPTS = "FLIGHTDECK_WEATHER_MAX_ATTEMPTS"
WEATHER_BACKOFF_INITIAL = "FLIGHTDECK_WEATHER_BACKOFF_INITIAL_SECONDS"
WEATHER_BACKOFF_MAX = "FLIGHTDECK_WEATHER_BACKOFF_MAX_SECONDS"
WEATHER_MAX_TOTAL = "FLIGHTDECK_WEATHER_MAX_TOTAL_SECONDS"
WEATHER_BREAKER_THRESHOLD = "FLIGHTDECK_WEATHER_BREAKER_FAILURES"
WEATHER_BREAKER_COOLDOWN = "FLIGHTDECK_WEATHER_BREAKER_COOLDOWN_SECONDS"
WEATHER_MAX_QUARANTINE_RATE = "FLIGHTDECK_WEATHER_MAX_QUARANTINE_RATE"
WEATHER_PULL_TIME = "FLIGHTDECK_WEATHER_PULL_TIME"
BREAKER_STATE_PATH = "FLIGHTDECK_BREAKER_STATE_PATH"
EXECUTOR = "FLIGHTDECK_EXECUTOR"
CELERY_BROKER_URL = "FLIGHTDECK_CELERY_BROKER_URL"
CELERY_BACKEND_URL = "FLIGHTDECK_CELERY_BACKEND_URL"
STEP_TIMEOUT = "FLIGHTDECK_STEP_TIMEOUT_SECONDS"
MAX_FILE_MB = "FLIGHTDECK_MAX_FILE_MB"
LANDING_SETTLE_SECONDS = "FLIGHTDECK_LANDING_SETTLE_SECONDS"
MARK_FAILED_PARTITIONS = "FLIGHTDECK_MARK_FAILED_PARTITIONS"
# The switches of internals/ (private or undocumented Dagster and dbt behaviour), each default on.
DBT_WITHOUT_CORE = "FLIGHTDECK_DBT_WITHOUT_CORE"
WARM_DBT = "FLIGHTDECK_WARM_DBT"
GC_PAUSE = "FLIGHTDECK_GC_PAUSE"
DBT_SERVER_IDLE = "FLIGHTDECK_DBT_SERVER_IDLE_SECONDS"
BATCHED_EVENT_LOG = "FLIGHTDECK_BATCHED_EVENT_LOG"
# Set by flightdeck itself for its child processes (dbt's window, the warm dbt server) or by its tests.
INTERNAL = {
    "FLIGHTDECK_WINDOW_MIN_DATE",
    "FLIGHTDECK_WINDOW_MAX_DATE",
    "FLIGHTDECK_RUN_ID",
    "FLIGHTDECK_DBT_WARM_SOCKET",
    "FLIGHTDECK_DUCKLAKE_ATTACH",
    "FLIGHTDECK_DUCKDB_EXTENSION_DIRECTORY",
    "FLIGHTDECK_CRASH_TEST_MARKER",
    "FLIGHTDECK_CRASH_TEST_PUBLISH_MARKER",
}


def defaults() -> dict[str, str]:
    """Default of every setting, derived from FLIGHTDECK_DATA_DIR where it is a path."""
    return dict(_defaults_for(os.environ.get(DATA_DIR) or ""))


@functools.cache
def _defaults_for(data_dir: str) -> dict[str, str]:
    """Computed once per data dir: `get()` falls back to it on every read of an unset setting."""
    data = Path(data_dir or PROJECT_ROOT / "data").resolve()
    return {
        DATA_DIR: str(data),
        DUCKDB_PATH: str(data / "warehouse.duckdb"),
        DUCKDB_MEMORY_LIMIT: "1GB",
        # How long a run waits for the DuckDB file while a process outside flightdeck (a notebook, the
        # duckdb shell) holds it; flightdeck's own writers queue on the writer lock instead.
        DUCKDB_LOCK_WAIT: "30",
        # duckdb: the one DuckDB file above; ducklake: a DuckLake on a PostgreSQL catalog (flightdeck/lake.py).
        WAREHOUSE: "duckdb",
        DUCKLAKE_CATALOG: "",
        DUCKLAKE_DATA_PATH: str(data / "lake"),
        # Steps that write at once on a DuckLake (dbt's one at a time); the DuckDB file allows one writer.
        WAREHOUSE_WRITERS: "4",
        # The lake's nightly maintenance expires snapshots older than this (time travel reaches this far).
        DUCKLAKE_RETENTION_DAYS: "7",
        # When it runs, New York time: the deployment's quietest hour (compaction rewrites files).
        DUCKLAKE_MAINTENANCE_TIME: "04:00",
        # The live flight events (Redis Streams, read through the consumer group "flightdeck").
        STREAM_URL: "redis://127.0.0.1:6379/0",
        STREAM_KEY: "flightdeck:flight_events",
        STREAM_BATCH_SIZE: "10000",
        # An entry a consumer took and left unacknowledged this long (its run died) is taken over.
        STREAM_CLAIM_IDLE_SECONDS: "60",
        REFERENCE_DB_URL: f"sqlite:///{data / 'reference.sqlite'}",
        PARTITION_START: "2013-01-01",
        # Exclusive end: the default range is exactly the 365 days of 2013.
        PARTITION_END: "2014-01-01",
        MAX_QUARANTINE_RATE: "0.01",
        MIN_VOLUME_FRACTION: "0.5",
        UI_URL: "http://127.0.0.1:3000",
        # Alert channels are off while their host / URL is empty.
        SMTP_HOST: "",
        SMTP_PORT: "25",
        SMTP_USER: "",
        SMTP_PASSWORD: "",
        SMTP_STARTTLS: "false",
        ALERT_EMAIL_FROM: "flightdeck@localhost",
        ALERT_EMAIL_TO: "",
        ALERT_WEBHOOK_URL: "",
        ALERT_THROTTLE_SECONDS: "3600",
        WEATHER_API_URL: "http://127.0.0.1:8765",
        WEATHER_CONNECT_TIMEOUT: "3",
        WEATHER_READ_TIMEOUT: "10",
        WEATHER_MAX_ATTEMPTS: "5",
        WEATHER_BACKOFF_INITIAL: "0.5",
        WEATHER_BACKOFF_MAX: "8",
        WEATHER_MAX_TOTAL: "60",
        WEATHER_BREAKER_THRESHOLD: "5",
        WEATHER_BREAKER_COOLDOWN: "60",
        # One hour in 72 is 1.4%: the flights threshold would reject any day with one bad reading.
        WEATHER_MAX_QUARANTINE_RATE: "0.05",
        # When the weather_daily schedule pulls the previous day (UTC): once the API has published it.
        WEATHER_PULL_TIME: "06:00",
        # Shared by every run and process, so it lives beside the data, not in a run's memory.
        BREAKER_STATE_PATH: str(data / "state" / "circuit_breakers.sqlite"),
        EXECUTOR: "in_process",
        CELERY_BROKER_URL: "pyamqp://guest:guest@127.0.0.1:5672//",
        CELERY_BACKEND_URL: "rpc://",
        # A whole 10x year loads in under a minute; half an hour means something hangs.
        STEP_TIMEOUT: "1800",
        # Uncompressed size a landing file may have (a decompression bomb stops here, memory bounded).
        MAX_FILE_MB: "2048",
        # A file must be quiet this long before the landing sensor reads it (writers without temp names).
        LANDING_SETTLE_SECONDS: "2",
        MARK_FAILED_PARTITIONS: "true",
        DBT_WITHOUT_CORE: "true",
        WARM_DBT: "true",
        # On the lake: how long the host's dbt server waits for a run's next dbt command before it exits.
        DBT_SERVER_IDLE: "900",
        GC_PAUSE: "true",
        BATCHED_EVENT_LOG: "true",
    }


def private_files() -> None:
    """What flightdeck writes (warehouse, reference database, quarantine copies, breaker state) is
    readable by its own user only: the process creates files 0600 and folders 0700."""
    os.umask(0o077)


def get(name: str) -> str:
    return os.environ.get(name) or _defaults_for(os.environ.get(DATA_DIR) or "")[name]


def flag(name: str) -> bool:
    return get(name).strip().lower() in ("1", "true", "yes", "on")


def dbt_env() -> dict[str, str]:
    """What dbt's profile (dbt_project/profiles.yml) reads from its environment."""
    env = {name: get(name) for name in (DUCKDB_PATH, DUCKDB_MEMORY_LIMIT, WAREHOUSE)}
    if lake_enabled():
        from flightdeck import lake

        env |= {
            "FLIGHTDECK_DUCKLAKE_ATTACH": "ducklake:postgres:" + lake.catalog_dsn(get(DUCKLAKE_CATALOG)),
            DUCKLAKE_DATA_PATH: lake.data_path(get(DUCKLAKE_DATA_PATH)),
            # Laid out here too: a run whose first step is dbt's (the marts alone) has not connected yet.
            "FLIGHTDECK_DUCKDB_EXTENSION_DIRECTORY": str(lake.extension_directory(duckdb_extension_dir())),
        }
    return env


def dbt_server_idle_seconds() -> float:
    """How long the host's dbt server outlives its last command (internals/dbt_launcher.py, ensure_server);
    0 where runs use no server: on the DuckDB file, where one run writes at a time and its own warm dbt
    imports on CPU its load leaves idle, or with the warm dbt switched off."""
    if not (lake_enabled() and flag(WARM_DBT)):
        return 0
    return float(get(DBT_SERVER_IDLE))


def lake_enabled() -> bool:
    return get(WAREHOUSE).strip().lower() == "ducklake"


def duckdb_extension_dir() -> Path:
    """Where the DuckDB extensions of the installed packages are laid out (flightdeck/lake.py)."""
    return data_dir() / "state" / "duckdb_extensions"


def data_dir() -> Path:
    return Path(get(DATA_DIR))


def landing_dir() -> Path:
    return data_dir() / "landing"


def quarantine_dir() -> Path:
    return data_dir() / "quarantine"


# -- Validation: every setting checked once, when definitions load, before anything is written. --------


class SettingsError(ValueError):
    """One or more FLIGHTDECK_* settings are invalid; the message names each, its value and what is allowed."""


def _number(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False):
    bounds = [f"{'>' if low_open else '>='} {low:g}"] if low is not None else []
    bounds += [f"<= {high:g}"] if high is not None else []
    allowed = f"a{'n integer' if kind is int else ' number'}" + (f" {' and '.join(bounds)}" if bounds else "")

    def check(value: str) -> str | None:
        try:
            number = kind(value)
        except ValueError:
            return allowed
        finite = number == number and abs(number) != float("inf")
        above = low is None or number > low or (number == low and not low_open)
        below = high is None or number <= high
        return None if finite and above and below else allowed

    return check


def _date(value: str) -> str | None:
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            dt.date.fromisoformat(value)
            return None
        except ValueError:
            pass
    return "a date YYYY-MM-DD"


def _time_of_day(value: str) -> str | None:
    if re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value.strip()):
        return None
    return "a time of day HH:MM (24-hour)"


def _memory_limit(value: str) -> str | None:
    # DuckDB's memory_limit syntax: a number and a unit, or a percentage of the machine's memory.
    units = r"(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB|K|M|G|T|BYTES?|KILOBYTES?|MEGABYTES?|GIGABYTES?|TERABYTES?|%)"
    if re.fullmatch(rf"[0-9]+(\.[0-9]+)?\s*{units}", value.strip(), re.IGNORECASE):
        return None
    return "a DuckDB memory limit such as 1GB, 512MB or 50%"


def _url(*schemes: str):
    def check(value: str) -> str | None:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return f"a URL ({', '.join(schemes)})"
        if (
            parts.scheme not in schemes
            or "://" not in value
            or (parts.scheme.startswith("http") and not parts.netloc)
        ):
            return f"a URL ({', '.join(schemes)}://host...)"
        return None

    return check


def _database_url(value: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value)
        return None
    except (ArgumentError, ValueError):
        return "an SQLAlchemy database URL such as sqlite:///path or postgresql://user@host/db"


def _lake_catalog(value: str) -> str | None:
    from flightdeck.lake import LakeConfigError, catalog_dsn

    try:
        catalog_dsn(value)
        return None
    except LakeConfigError:
        return "a PostgreSQL connection string: dbname=... host=... user=..., or postgresql://user@host/db"


def _choice(*allowed: str):
    return lambda value: None if value.strip().lower() in allowed else f"one of {', '.join(allowed)}"


def _emails(value: str) -> str | None:
    bad = [a for a in (x.strip() for x in value.split(",")) if a and not re.fullmatch(r"[^@\s]+@[^@\s]+", a)]
    return "comma-separated e-mail addresses" if bad else None


_BOOL = _choice("true", "false", "1", "0", "yes", "no", "on", "off")
_SECONDS = _number(float, 0)
_POSITIVE_SECONDS = _number(float, 0, low_open=True)
_RATE = _number(float, 0, 1)
_PORT = _number(int, 1, 65535)
CHECKS: dict[str, Callable[[str], str | None]] = {
    DUCKDB_MEMORY_LIMIT: _memory_limit,
    DUCKDB_LOCK_WAIT: _SECONDS,
    WAREHOUSE: _choice("duckdb", "ducklake"),
    DUCKLAKE_CATALOG: _lake_catalog,
    WAREHOUSE_WRITERS: _number(int, 1, 64),
    DUCKLAKE_RETENTION_DAYS: _number(float, 0),
    DUCKLAKE_MAINTENANCE_TIME: _time_of_day,
    STREAM_URL: _url("redis", "rediss", "unix"),
    STREAM_BATCH_SIZE: _number(int, 1, 1_000_000),
    STREAM_CLAIM_IDLE_SECONDS: _number(float, 0),
    REFERENCE_DB_URL: _database_url,
    PARTITION_START: _date,
    PARTITION_END: _date,
    MAX_QUARANTINE_RATE: _RATE,
    MIN_VOLUME_FRACTION: _RATE,
    UI_URL: _url("http", "https"),
    SMTP_PORT: _PORT,
    SMTP_STARTTLS: _BOOL,
    ALERT_EMAIL_FROM: _emails,
    ALERT_EMAIL_TO: _emails,
    ALERT_WEBHOOK_URL: _url("http", "https"),
    ALERT_THROTTLE_SECONDS: _SECONDS,
    WEATHER_API_URL: _url("http", "https"),
    WEATHER_CONNECT_TIMEOUT: _POSITIVE_SECONDS,
    WEATHER_READ_TIMEOUT: _POSITIVE_SECONDS,
    WEATHER_MAX_ATTEMPTS: _number(int, 1),
    WEATHER_BACKOFF_INITIAL: _SECONDS,
    WEATHER_BACKOFF_MAX: _SECONDS,
    WEATHER_MAX_TOTAL: _POSITIVE_SECONDS,
    WEATHER_BREAKER_THRESHOLD: _number(int, 1),
    WEATHER_BREAKER_COOLDOWN: _SECONDS,
    WEATHER_MAX_QUARANTINE_RATE: _RATE,
    WEATHER_PULL_TIME: _time_of_day,
    EXECUTOR: _choice("in_process", "celery"),
    CELERY_BROKER_URL: _url("pyamqp", "amqp", "amqps", "redis", "rediss", "sqla+postgresql", "memory"),
    CELERY_BACKEND_URL: _url("rpc", "redis", "rediss", "db+postgresql", "db+sqlite", "cache+memory"),
    STEP_TIMEOUT: _POSITIVE_SECONDS,
    MAX_FILE_MB: _number(float, 0, low_open=True),
    LANDING_SETTLE_SECONDS: _SECONDS,
    MARK_FAILED_PARTITIONS: _BOOL,
    DBT_WITHOUT_CORE: _BOOL,
    WARM_DBT: _BOOL,
    DBT_SERVER_IDLE: _SECONDS,
    GC_PAUSE: _BOOL,
    BATCHED_EVENT_LOG: _BOOL,
}
# Settings whose value may hold a credential: shown redacted in any message.
SECRET_URLS = {
    STREAM_URL,
    REFERENCE_DB_URL,
    WEATHER_API_URL,
    ALERT_WEBHOOK_URL,
    CELERY_BROKER_URL,
    CELERY_BACKEND_URL,
}
SECRETS = {SMTP_PASSWORD}
_SECRET_PARAMS = re.compile(r"(pass|secret|token|key|auth|sig|credential|session)", re.IGNORECASE)


def redact_url(value: str) -> str:
    """`value` with any password and any secret-looking query parameter replaced by ***; a value that
    does not parse as a URL is withheld whole (it may be a secret typed into the wrong place)."""
    try:
        parts = urlsplit(value)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}" if user else host
        query = urlencode(
            [(k, "***" if _SECRET_PARAMS.search(k) else v) for k, v in parse_qsl(parts.query, True)], safe="*"
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return f"<withheld: {len(value)} characters>"


def shown(name: str, value: str) -> str:
    if name in SECRETS:
        return "***"
    if name == DUCKLAKE_CATALOG:
        from flightdeck.lake import redact

        return redact(value)
    return redact_url(value) if name in SECRET_URLS else value


def validate(environ: dict[str, str] | None = None) -> None:
    """Check every FLIGHTDECK_* setting; raise SettingsError naming each bad one (and unknown names)."""
    environ = os.environ if environ is None else environ
    default = defaults()
    known = set(default) | {SMTP_PASSWORD} | INTERNAL
    problems = []
    for name in sorted(n for n in environ if n.startswith("FLIGHTDECK_")):
        value = environ[name]
        if name not in known and not name.startswith("FLIGHTDECK_TEST_"):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            problems.append(
                f"{name} is not a flightdeck setting" + (f" (did you mean {close[0]}?)" if close else "")
            )
        elif value.strip() and name in CHECKS and (allowed := CHECKS[name](value)):
            problems.append(f"{name}={shown(name, value)!r}: expected {allowed}")
    start = environ.get(PARTITION_START) or default[PARTITION_START]
    end = environ.get(PARTITION_END) or default[PARTITION_END]
    if not _date(start) and not _date(end) and end <= start:
        problems.append(
            f"{PARTITION_END}={end!r} must be after {PARTITION_START}={start!r} (the end is exclusive)"
        )
    warehouse = (environ.get(WAREHOUSE) or default[WAREHOUSE]).strip().lower()
    if warehouse == "ducklake" and not (environ.get(DUCKLAKE_CATALOG) or "").strip():
        problems.append(
            f"{WAREHOUSE}=ducklake needs {DUCKLAKE_CATALOG}, the catalog's PostgreSQL connection string"
        )
    if problems:
        raise SettingsError("invalid flightdeck settings:\n  " + "\n  ".join(problems))

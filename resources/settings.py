"""The one module that knows the environment.

Every environment variable flightdeck reads is named here with its default. `apply_defaults()` fills
in the ones that are unset, so resources can be fed by `dg.EnvVar` everywhere and the same code runs in
dev, test and prod: only the environment differs.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DATA_DIR = "FLIGHTDECK_DATA_DIR"
DUCKDB_PATH = "FLIGHTDECK_DUCKDB_PATH"
DUCKDB_MEMORY_LIMIT = "FLIGHTDECK_DUCKDB_MEMORY_LIMIT"
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
BREAKER_STATE_PATH = "FLIGHTDECK_BREAKER_STATE_PATH"
EXECUTOR = "FLIGHTDECK_EXECUTOR"
CELERY_BROKER_URL = "FLIGHTDECK_CELERY_BROKER_URL"
CELERY_BACKEND_URL = "FLIGHTDECK_CELERY_BACKEND_URL"
STEP_TIMEOUT = "FLIGHTDECK_STEP_TIMEOUT_SECONDS"
MAX_FILE_MB = "FLIGHTDECK_MAX_FILE_MB"


def _data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR) or PROJECT_ROOT / "data").resolve()


def defaults() -> dict[str, str]:
    """Default of every setting, derived from FLIGHTDECK_DATA_DIR where it is a path."""
    data = _data_dir()
    return {
        DATA_DIR: str(data),
        DUCKDB_PATH: str(data / "warehouse.duckdb"),
        DUCKDB_MEMORY_LIMIT: "1GB",
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
        # Shared by every run and process, so it lives beside the data, not in a run's memory.
        BREAKER_STATE_PATH: str(data / "state" / "circuit_breakers.sqlite"),
        EXECUTOR: "in_process",
        CELERY_BROKER_URL: "pyamqp://guest:guest@127.0.0.1:5672//",
        CELERY_BACKEND_URL: "rpc://",
        # A whole 10x year loads in under a minute; half an hour means something hangs.
        STEP_TIMEOUT: "1800",
        # Uncompressed size a landing file may have (a decompression bomb stops here, memory bounded).
        MAX_FILE_MB: "2048",
    }


def private_files() -> None:
    """What flightdeck writes (warehouse, reference database, quarantine copies, breaker state) is
    readable by its own user only: the process creates files 0600 and folders 0700."""
    os.umask(0o077)


def apply_defaults() -> None:
    """Set every unset (or empty) setting to its default; explicit values always win."""
    for name, value in defaults().items():
        if not os.environ.get(name):
            os.environ[name] = value


def get(name: str) -> str:
    apply_defaults()
    return os.environ[name]


def data_dir() -> Path:
    return Path(get(DATA_DIR))


def landing_dir() -> Path:
    return data_dir() / "landing"


def quarantine_dir() -> Path:
    return data_dir() / "quarantine"

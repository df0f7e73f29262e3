"""Every resource, built from the settings, in one place."""

import os

import dagster as dg

from flightdeck import settings
from resources.alerting import AlertChannels
from resources.dbt import build_dbt_resource
from resources.flight_event_stream import FlightEventStream
from resources.landing import LandingArea
from resources.reference_db import ReferenceDatabase
from resources.warehouse import DuckDBWarehouse
from resources.weather_api import WeatherApiClient


def _env(name: str) -> str | dg.EnvVar:
    """A set variable stays an EnvVar (its value, perhaps a credential, is not baked into the
    definitions the UI shows); an unset one is its default."""
    return dg.EnvVar(name) if os.environ.get(name) else settings.get(name)


def _int(name: str) -> int | dg.EnvVar:
    return dg.EnvVar.int(name) if os.environ.get(name) else int(settings.get(name))


def _float(name: str) -> float:
    return float(settings.get(name))  # dg.EnvVar has .int() but no float form


def build_resources() -> dict[str, object]:
    return {
        "weather_api": WeatherApiClient(
            base_url=_env(settings.WEATHER_API_URL),
            connect_timeout_seconds=_float(settings.WEATHER_CONNECT_TIMEOUT),
            read_timeout_seconds=_float(settings.WEATHER_READ_TIMEOUT),
            max_attempts=_int(settings.WEATHER_MAX_ATTEMPTS),
            backoff_initial_seconds=_float(settings.WEATHER_BACKOFF_INITIAL),
            backoff_max_seconds=_float(settings.WEATHER_BACKOFF_MAX),
            max_total_seconds=_float(settings.WEATHER_MAX_TOTAL),
            breaker_failure_threshold=_int(settings.WEATHER_BREAKER_THRESHOLD),
            breaker_cooldown_seconds=_float(settings.WEATHER_BREAKER_COOLDOWN),
            breaker_state_path=_env(settings.BREAKER_STATE_PATH),
        ),
        "warehouse": DuckDBWarehouse(
            path=_env(settings.DUCKDB_PATH),
            memory_limit=_env(settings.DUCKDB_MEMORY_LIMIT),
            lock_wait_seconds=_float(settings.DUCKDB_LOCK_WAIT),
            kind=_env(settings.WAREHOUSE),
            lake_data_path=_env(settings.DUCKLAKE_DATA_PATH),
            writers=_int(settings.WAREHOUSE_WRITERS),
        ),
        "landing": LandingArea(data_dir=_env(settings.DATA_DIR)),
        "flight_event_stream": FlightEventStream(
            url=_env(settings.STREAM_URL),
            key=_env(settings.STREAM_KEY),
            claim_idle_seconds=_float(settings.STREAM_CLAIM_IDLE_SECONDS),
        ),
        "reference_db": ReferenceDatabase(url=_env(settings.REFERENCE_DB_URL)),
        "dbt": build_dbt_resource(),
        "alert_channels": AlertChannels(
            smtp_host=_env(settings.SMTP_HOST),
            smtp_port=_int(settings.SMTP_PORT),
            smtp_user=_env(settings.SMTP_USER),
            smtp_password=_env(settings.SMTP_PASSWORD),
            smtp_starttls=settings.flag(settings.SMTP_STARTTLS),  # no EnvVar.bool
            email_from=_env(settings.ALERT_EMAIL_FROM),
            email_to=_env(settings.ALERT_EMAIL_TO),
            webhook_url=_env(settings.ALERT_WEBHOOK_URL),
        ),
    }

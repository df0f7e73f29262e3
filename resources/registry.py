"""Every resource, built from the environment (EnvVar), in one place."""

import dagster as dg

from resources import settings
from resources.alerting import AlertChannels
from resources.dbt import build_dbt_resource
from resources.landing import LandingArea
from resources.reference_db import ReferenceDatabase
from resources.warehouse import DuckDBWarehouse
from resources.weather_api import WeatherApiClient


def _float(name: str) -> float:
    return float(settings.get(name))  # dg.EnvVar has .int() but no float form


def build_resources() -> dict[str, object]:
    settings.apply_defaults()
    return {
        "weather_api": WeatherApiClient(
            base_url=dg.EnvVar(settings.WEATHER_API_URL),
            connect_timeout_seconds=_float(settings.WEATHER_CONNECT_TIMEOUT),
            read_timeout_seconds=_float(settings.WEATHER_READ_TIMEOUT),
            max_attempts=dg.EnvVar.int(settings.WEATHER_MAX_ATTEMPTS),
            backoff_initial_seconds=_float(settings.WEATHER_BACKOFF_INITIAL),
            backoff_max_seconds=_float(settings.WEATHER_BACKOFF_MAX),
            max_total_seconds=_float(settings.WEATHER_MAX_TOTAL),
            breaker_failure_threshold=dg.EnvVar.int(settings.WEATHER_BREAKER_THRESHOLD),
            breaker_cooldown_seconds=_float(settings.WEATHER_BREAKER_COOLDOWN),
            breaker_state_path=dg.EnvVar(settings.BREAKER_STATE_PATH),
        ),
        "warehouse": DuckDBWarehouse(
            path=dg.EnvVar(settings.DUCKDB_PATH), memory_limit=dg.EnvVar(settings.DUCKDB_MEMORY_LIMIT)
        ),
        "landing": LandingArea(data_dir=dg.EnvVar(settings.DATA_DIR)),
        "reference_db": ReferenceDatabase(url=dg.EnvVar(settings.REFERENCE_DB_URL)),
        "dbt": build_dbt_resource(),
        "alert_channels": AlertChannels(
            smtp_host=dg.EnvVar(settings.SMTP_HOST),
            smtp_port=dg.EnvVar.int(settings.SMTP_PORT),
            smtp_user=dg.EnvVar(settings.SMTP_USER),
            smtp_password=dg.EnvVar(settings.SMTP_PASSWORD),
            smtp_starttls=settings.get(settings.SMTP_STARTTLS).lower()
            in ("1", "true", "yes"),  # no EnvVar.bool
            email_from=dg.EnvVar(settings.ALERT_EMAIL_FROM),
            email_to=dg.EnvVar(settings.ALERT_EMAIL_TO),
            webhook_url=dg.EnvVar(settings.ALERT_WEBHOOK_URL),
        ),
    }

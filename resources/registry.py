"""Every resource, built from the environment (EnvVar), in one place."""

import dagster as dg

from resources import settings
from resources.alerting import AlertChannels
from resources.dbt import build_dbt_resource
from resources.landing import LandingArea
from resources.reference_db import ReferenceDatabase
from resources.warehouse import DuckDBWarehouse


def build_resources() -> dict[str, object]:
    settings.apply_defaults()
    return {
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

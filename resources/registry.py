"""Every resource, built from the environment (EnvVar), in one place."""

import dagster as dg

from resources import settings
from resources.dbt import build_dbt_resource
from resources.landing import LandingArea
from resources.reference_db import ReferenceDatabase
from resources.warehouse import DuckDBWarehouse


def build_resources() -> dict[str, object]:
    settings.apply_defaults()
    return {
        "warehouse": DuckDBWarehouse(path=dg.EnvVar(settings.DUCKDB_PATH)),
        "landing": LandingArea(data_dir=dg.EnvVar(settings.DATA_DIR)),
        "reference_db": ReferenceDatabase(url=dg.EnvVar(settings.REFERENCE_DB_URL)),
        "dbt": build_dbt_resource(),
    }

"""flightdeck's Dagster definitions: composition only; every piece lives in its own module."""

import dagster as dg

from assets.dbt_models import daily_dbt_models
from assets.raw_flights import raw_flights
from assets.reference import REFERENCE_ASSETS
from jobs.pipelines import flights_pipeline_job, reference_job
from jobs.schedules import reference_nightly_schedule
from resources.registry import build_resources
from sensors.landing_sensor import flights_landing_sensor

defs = dg.Definitions(
    assets=[raw_flights, *REFERENCE_ASSETS, daily_dbt_models],
    jobs=[flights_pipeline_job, reference_job],
    schedules=[reference_nightly_schedule],
    sensors=[flights_landing_sensor],
    resources=build_resources(),
    # One process per run: DuckDB has a single writer anyway, and each extra step process costs ~3.7 s.
    executor=dg.in_process_executor,
)

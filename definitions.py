"""flightdeck's Dagster definitions: composition only; every piece lives in its own module."""

from internals import gc_pause

gc_pause.pause()  # while the imports below build what every process keeps (internals/gc_pause.py)

from flightdeck import settings

# Every FLIGHTDECK_* setting is checked here, once, in every process that loads the definitions (the
# CLI, a run, the code server): a bad value fails before any run starts or anything is written.
settings.validate()

from internals import dbt_launcher, enabled

if enabled("warm_dbt"):  # in a process that executes a run: dbt imports while the definitions load
    dbt_launcher.start_early(str(settings.DBT_PROJECT_DIR), settings.dbt_server_idle_seconds())

import dagster as dg

from assets.common.daily_raw import raw_key
from assets.common.partition_outcomes import all_partitions_loaded_check
from assets.common.policies import with_freshness
from assets.dbt_models import daily_dbt_models
from assets.flight_events import raw_flight_events
from assets.flights import LANDING_ASSETS
from assets.ops import pipeline_health
from assets.reference import REFERENCE_ASSETS
from assets.weather import raw_weather
from flightdeck.datasets import DAILY_DATASETS
from jobs.lake_maintenance import lake_maintenance_job
from jobs.lake_rollback import lake_rollback_job
from jobs.pipelines import (
    LANDING_JOBS,
    flight_events_job,
    live_marts_job,
    marts_rebuild_job,
    ops_job,
    reference_job,
    weather_pipeline_job,
)
from jobs.schedules import (
    lake_maintenance_schedule,
    ops_nightly_schedule,
    reference_nightly_schedule,
    weather_daily_schedule,
)
from resources.executor import build_executor
from resources.registry import build_resources
from sensors.alert_sensors import run_failure_alert_sensor, run_recovery_alert_sensor
from sensors.flight_events_sensor import flight_events_sensor
from sensors.health_alert_sensor import health_alert_sensor
from sensors.landing_sensor import LANDING_SENSORS
from sensors.live_flight_status_sensor import live_flight_status_sensor
from sensors.reference_change_sensor import reference_change_sensor
from sensors.writer_pool_sensor import writer_pool_sensor

settings.private_files()  # every process that runs flightdeck's code: runs, sensors, the CLI

# Each daily dataset's last word on a run's partitions, after everything downstream of it in the run.
partition_outcome_checks = [
    all_partitions_loaded_check(raw_key(dataset), dataset, [daily_dbt_models]) for dataset in DAILY_DATASETS
]

defs = dg.Definitions(
    assets=[
        *LANDING_ASSETS,
        raw_weather,
        *REFERENCE_ASSETS,
        daily_dbt_models,
        pipeline_health,
        raw_flight_events,
    ],
    asset_checks=partition_outcome_checks,
    jobs=[
        *LANDING_JOBS.values(),
        weather_pipeline_job,
        reference_job,
        marts_rebuild_job,
        ops_job,
        lake_maintenance_job,
        lake_rollback_job,
        flight_events_job,
        live_marts_job,
    ],
    schedules=[
        reference_nightly_schedule,
        ops_nightly_schedule,
        weather_daily_schedule,
        lake_maintenance_schedule,
    ],
    sensors=[
        *LANDING_SENSORS,
        reference_change_sensor,
        run_failure_alert_sensor,
        run_recovery_alert_sensor,
        health_alert_sensor,
        flight_events_sensor,
        live_flight_status_sensor,
        writer_pool_sensor,
    ],
    resources=build_resources(),
    executor=build_executor(),  # in-process by default; Celery workers when FLIGHTDECK_EXECUTOR=celery
).map_asset_specs(func=with_freshness)  # global policies, applied once

gc_pause.freeze()

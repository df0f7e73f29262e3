"""Schedules: nightly pulls and refreshes, running by default so `dagster dev` starts them."""

import dagster as dg

from flightdeck import settings
from jobs.lake_maintenance import lake_maintenance_job
from jobs.pipelines import ops_job, reference_job, weather_pipeline_job


def nightly(name: str, job, hour: int, minute: int, description: str) -> dg.ScheduleDefinition:
    """A schedule running `job` every night at hour:minute New York time."""
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=f"{minute} {hour} * * *",
        execution_timezone="America/New_York",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )


# The reference database is pulled nightly; unchanged tables keep their data version.
reference_nightly_schedule = nightly(
    "reference_nightly",
    reference_job,
    2,
    0,
    "Snapshot the reference tables every night at 02:00 New York time.",
)
ops_nightly_schedule = nightly(
    "ops_nightly", ops_job, 3, 30, "Recompute ops/pipeline_health every night at 03:30 New York time."
)
# Runs by default only where there is a lake to maintain, at FLIGHTDECK_DUCKLAKE_MAINTENANCE_TIME.
MAINTENANCE_HOUR, MAINTENANCE_MINUTE = (
    int(part) for part in settings.get(settings.DUCKLAKE_MAINTENANCE_TIME).split(":")
)
lake_maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_nightly",
    job=lake_maintenance_job,
    cron_schedule=f"{MAINTENANCE_MINUTE} {MAINTENANCE_HOUR} * * *",
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.RUNNING
    if settings.lake_enabled()
    else dg.DefaultScheduleStatus.STOPPED,
    description=f"Maintain the DuckLake every night at {MAINTENANCE_HOUR:02d}:{MAINTENANCE_MINUTE:02d} "
    "New York time (FLIGHTDECK_WAREHOUSE=ducklake, FLIGHTDECK_DUCKLAKE_MAINTENANCE_TIME).",
)

# Weather is pulled, not pushed: the previous (complete) day's partition, at FLIGHTDECK_WEATHER_PULL_TIME.
# The time of day follows the partitions' time zone (UTC), as build_schedule_from_partitioned_job takes
# no other.
PULL_HOUR, PULL_MINUTE = (int(part) for part in settings.get(settings.WEATHER_PULL_TIME).split(":"))
weather_daily_schedule = dg.build_schedule_from_partitioned_job(
    weather_pipeline_job,
    name="weather_daily",
    hour_of_day=PULL_HOUR,
    minute_of_hour=PULL_MINUTE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Pull yesterday's weather at {PULL_HOUR:02d}:{PULL_MINUTE:02d} UTC "
    "(FLIGHTDECK_WEATHER_PULL_TIME) and update the marts for that day.",
)

"""Schedules: nightly pulls and refreshes, running by default so `dagster dev` starts them."""

import dagster as dg

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

# Weather is pulled, not pushed: the previous (complete) day's partition. The time of day follows the
# partitions' time zone (UTC), as build_schedule_from_partitioned_job takes no other.
weather_daily_schedule = dg.build_schedule_from_partitioned_job(
    weather_pipeline_job,
    name="weather_daily",
    hour_of_day=6,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Pull yesterday's weather at 06:00 UTC and update the marts for that day.",
)

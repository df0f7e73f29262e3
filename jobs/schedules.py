"""Schedules for sources that are pulled rather than pushed."""

import dagster as dg

from jobs.pipelines import ops_job, reference_job

# The reference database is pulled nightly; unchanged tables keep their data version.
reference_nightly_schedule = dg.ScheduleDefinition(
    name="reference_nightly",
    job=reference_job,
    cron_schedule="0 2 * * *",
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Snapshot the reference tables every night at 02:00 New York time.",
)

ops_nightly_schedule = dg.ScheduleDefinition(
    name="ops_nightly",
    job=ops_job,
    cron_schedule="30 3 * * *",
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Recompute ops/pipeline_health every night at 03:30 New York time.",
)

"""Bring marts/live_flight_status up to date after each micro-batch of live flight events.

A micro-batch (raw/flight_events) records the flight dates it added events for; this sensor requests one
ranged run of the daily marts over those dates (the marts' write-audit-publish replaces exactly that
window). The batch layer builds the same mart when a day's file lands, and marks the day reconciled.
"""

import datetime as dt

import dagster as dg

from assets.common.partitions import DAILY_PARTITIONS
from assets.flight_events import RAW_FLIGHT_EVENTS_KEY
from jobs import tags as dagster_tags
from jobs.pipelines import live_marts_job
from sensors import EVERY_DAEMON_LOOP_SECONDS


@dg.asset_sensor(
    asset_key=RAW_FLIGHT_EVENTS_KEY,
    job=live_marts_job,
    minimum_interval_seconds=EVERY_DAEMON_LOOP_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a ranged run of the marts over the flight dates each micro-batch of live events touched.",
)
def live_flight_status_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    metadata = asset_event.asset_materialization.metadata
    days = sorted(
        dt.date.fromisoformat(d)
        for d in (metadata["flight_dates"].value if "flight_dates" in metadata else [])
    )
    keys = set(DAILY_PARTITIONS.get_partition_keys())
    days = [
        d for d in days if d.isoformat() in keys
    ]  # an event for a day outside the partitions is kept in raw only
    if not days:
        return dg.SkipReason("the micro-batch added no events for a daily partition")
    return dg.RunRequest(
        run_key=f"live-flight-status:{asset_event.run_id}",
        tags={
            dagster_tags.PARTITION_RANGE_START: days[0].isoformat(),
            dagster_tags.PARTITION_RANGE_END: days[-1].isoformat(),
            "flightdeck/trigger": "flight_events",
        },
    )

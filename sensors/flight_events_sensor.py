"""Turn pending live flight events into micro-batch runs of raw/flight_events.

Each tick asks the consumer group how much is waiting (undelivered, or delivered and never
acknowledged); when something is and no micro-batch run is queued or running, it requests one. Broker
down: the tick skips naming the broker and why, the next attempts back off (up to BACKOFF_CAP_SECONDS),
an alert is raised once per outage (ops.alerts, throttled by its key), and consumption resumes by
itself when the broker answers again. Nothing else depends on the broker.
"""

import json
import time

import dagster as dg
import redis

from flightdeck import settings
from jobs.pipelines import flight_events_job
from resources.alert_log import raise_alert, throttle_seconds
from resources.alerting import Alert, AlertChannels
from resources.flight_event_stream import FlightEventStream
from resources.warehouse import DuckDBWarehouse
from sensors import EVERY_DAEMON_LOOP_SECONDS

BACKOFF_CAP_SECONDS = 60.0
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def broker_down_alert(url: str, error: str) -> Alert:
    return Alert(
        kind="stream_down",
        dedupe_key="stream_down",
        summary="the live flight event broker is not reachable",
        details={"job": flight_events_job.name, "error": f"{settings.redact_url(url)}: {error}"},
    )


@dg.sensor(
    job=flight_events_job,
    minimum_interval_seconds=EVERY_DAEMON_LOOP_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a micro-batch of raw/flight_events when the broker holds events not yet loaded.",
)
def flight_events_sensor(
    context: dg.SensorEvaluationContext,
    flight_event_stream: FlightEventStream,
    warehouse: DuckDBWarehouse,
    alert_channels: AlertChannels,
):
    cursor = json.loads(context.cursor or "{}")
    if time.time() < cursor.get("retry_at", 0):
        return dg.SkipReason(f"the broker was down; next attempt in {cursor['retry_at'] - time.time():.0f} s")
    try:
        state = flight_event_stream.state()
    except redis.RedisError as exc:
        failures = cursor.get("failures", 0) + 1
        delay = min(BACKOFF_CAP_SECONDS, 5.0 * 2 ** (failures - 1))
        if failures == 1:  # once per outage (and throttled by its key in ops.alerts)
            with warehouse.connect() as con:
                raise_alert(
                    con,
                    alert_channels,
                    broker_down_alert(flight_event_stream.url, str(exc)),
                    throttle_seconds(),
                )
        context.update_cursor(json.dumps({"failures": failures, "retry_at": time.time() + delay}))
        return dg.SkipReason(
            f"the live flight event broker {settings.redact_url(flight_event_stream.url)} is not reachable "
            f"({type(exc).__name__}: {exc}); trying again in {delay:.0f} s"
        )
    if cursor.get("failures"):
        context.log.info("the live flight event broker answers again")
    context.update_cursor(json.dumps({}))
    if not state.has_work:
        return dg.SkipReason(f"no flight events waiting in {flight_event_stream.key}")
    active = context.instance.get_runs(
        dg.RunsFilter(job_name=flight_events_job.name, statuses=ACTIVE), limit=1
    )
    if active:
        return dg.SkipReason(f"a micro-batch is in progress (run {active[0].run_id})")
    # No run key: the same entries left pending by a killed run are asked for again once it is over;
    # the active-run check above keeps one micro-batch at a time.
    return dg.RunRequest(
        tags={"flightdeck/stream_lag": str(state.lag), "flightdeck/stream_pending": str(state.pending)},
    )

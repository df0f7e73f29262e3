"""Run-status sensors that raise alerts: a failed run, and the recovery after it."""

import dagster as dg

from resources.alert_log import (
    alerted_for_run,
    mark_recovered,
    open_failure_for,
    raise_alert,
    redeliver_failed,
    run_url,
    throttle_seconds,
)
from resources.alerting import Alert, AlertChannels
from resources.warehouse import DuckDBWarehouse

PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
BACKFILL_TAG = "dagster/backfill"
# The job every asset selection outside a named job runs as (UI, `dagster asset materialize`, `dg launch`).
IMPLICIT_ASSET_JOB = "__ASSET_JOB"


def partition_of(run: dg.DagsterRun) -> str:
    if PARTITION_TAG in run.tags:
        return run.tags[PARTITION_TAG]
    if all(tag in run.tags for tag in RANGE_TAGS):
        return "...".join(run.tags[tag] for tag in RANGE_TAGS)
    return ""


def unmaterialized_assets(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetKey]:
    """Assets the run planned to materialize but did not: what the failure left stale."""

    def keys(event_type: dg.DagsterEventType) -> set[dg.AssetKey]:
        records = instance.get_records_for_run(run_id=run_id, of_type=event_type, limit=10_000).records
        return {record.event_log_entry.dagster_event.asset_key for record in records}

    planned = keys(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return sorted(planned - keys(dg.DagsterEventType.ASSET_MATERIALIZATION), key=lambda k: k.to_user_string())


def is_flightdeck_run(run: dg.DagsterRun, repository: dg.RepositoryDefinition | None) -> bool:
    """Whether `run` executed this project's jobs or assets, whatever launched it.

    The sensors watch every code location (`monitor_all_code_locations`): a run launched by
    `dagster asset materialize` or `dg launch` has no code location at all, and a second code server of
    this project is another location. Runs of other projects on the same instance are left alone.
    """
    if repository is None:  # evaluated outside a code location (a test's hand-built context)
        return True
    if run.job_name in {job.name for job in repository.get_all_jobs()} - {IMPLICIT_ASSET_JOB}:
        return True
    ours = repository.asset_graph.get_all_asset_keys()
    checks = {check.asset_key for check in run.asset_check_selection or ()}
    return bool((set(run.asset_selection or ()) | checks) & ours)


def failure_alert(context: dg.RunFailureSensorContext) -> Alert:
    run = context.dagster_run
    steps = context.get_step_failure_events()
    errors = [
        (
            event.step_key or "",
            event.event_specific_data.error.message.strip() if event.event_specific_data.error else "",
        )
        for event in steps
    ]
    error = "; ".join(message for _, message in errors) or (context.failure_event.message or "run failed")
    assets = ", ".join(key.to_user_string() for key in unmaterialized_assets(context.instance, run.run_id))
    partition = partition_of(run)
    # One alert per backfill (a 365-partition backfill failing everywhere is one message), otherwise per
    # job and partition; repeats within the throttle window are recorded but not sent.
    group = run.tags.get(BACKFILL_TAG) or partition
    return Alert(
        kind="run_failure",
        dedupe_key=f"run_failure:{run.job_name}:{group}",
        summary=f"run of {run.job_name} failed" + (f" for {partition}" if partition else ""),
        details={
            "job": run.job_name,
            "asset": assets,
            "partition": partition,
            "backfill": run.tags.get(BACKFILL_TAG, ""),
            "step": ", ".join(step for step, _ in errors),
            "error": error[:2000],
            "run_url": run_url(run.run_id),
            "run_id": run.run_id,
        },
    )


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,  # CLI runs have no location; see is_flightdeck_run
    description="Alerts (email, webhook, ops.alerts) when any flightdeck run fails; throttled per job/partition/backfill.",
)
def run_failure_alert_sensor(
    context: dg.RunFailureSensorContext, alert_channels: AlertChannels, warehouse: DuckDBWarehouse
):
    if not is_flightdeck_run(context.dagster_run, context.repository_def):
        return
    alert = failure_alert(context)
    context.log.error(alert.text())
    # A locked warehouse raises here; the tick fails and Dagster evaluates this run again next tick.
    with warehouse.connect() as con:
        # Every code location of this project runs this sensor over every run: the first one alerts.
        # The warehouse's single-writer lock makes the check and the insert one step across processes.
        if alerted_for_run(con, context.dagster_run.run_id):
            return
        status = raise_alert(con, alert_channels, alert, throttle_seconds())
        redeliver_failed(con, alert_channels)
    context.log.info(f"alert {alert.dedupe_key}: {status}")


@dg.run_status_sensor(
    name="run_recovery_alert_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,
    description="Announces once that a job which had failed succeeded again.",
)
def run_recovery_alert_sensor(
    context: dg.RunStatusSensorContext, alert_channels: AlertChannels, warehouse: DuckDBWarehouse
):
    run = context.dagster_run
    if not is_flightdeck_run(run, context.repository_def):
        return
    # A locked warehouse raises here; the tick fails and Dagster evaluates this run again next tick.
    with warehouse.connect() as con:
        if not open_failure_for(con, run.job_name):
            return
        alert = Alert(
            kind="recovery",
            dedupe_key=f"recovery:{run.job_name}:{run.run_id}",
            summary=f"{run.job_name} recovered",
            details={"job": run.job_name, "partition": partition_of(run), "run_url": run_url(run.run_id)},
        )
        raise_alert(con, alert_channels, alert, throttle_seconds=0)
        mark_recovered(con, run.job_name)

"""Alerts beyond a plain run failure, from the instance's own history, one sensor and one cursor:

- check_failure / volume_anomaly: a failed ERROR-severity asset check (a validation gate, a dbt test);
- sla_breach: a finished run that took longer than its job's SLA, or a run killed by its timeout;
- high_error_rate: more than 30% of a job's last 10 finished runs failed;
- freshness: an asset older than its FreshnessPolicy's fail window.
Every alert goes through ops.alerts with throttling (the same key is sent once per window), so a
backfill that fails a check on every partition sends one message.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import dagster as dg

from assets.common.freshness import FAIL, asset_freshness
from assets.common.load_checks import VOLUME
from assets.ops import FINISHED as FINISHED_STATUSES
from flightdeck.sla import JOB_SLA_SECONDS
from internals.check_history import failed_check_executions
from resources.alert_log import raise_alert, run_url, throttle_seconds
from resources.alerting import Alert, AlertChannels
from resources.warehouse import DuckDBWarehouse
from sensors.alert_sensors import partition_of

FINISHED = sorted(FINISHED_STATUSES, key=lambda status: status.value)  # the run states pipeline health counts
ERROR_RATE_RUNS = 10
ERROR_RATE_THRESHOLD = 0.30
TIMEOUT_MARKER = "maximum runtime"  # what run monitoring writes when dagster/max_runtime kills a run


def check_failure_alerts(instance: dg.DagsterInstance, asset_graph, after_id: int) -> tuple[list[Alert], int]:
    """Failed ERROR-severity check executions with an id above `after_id` (ids grow across checks)."""
    alerts, last = [], after_id
    for check_key in sorted(asset_graph.asset_check_keys, key=str):
        history = failed_check_executions(instance, check_key, limit=100)
        for execution in reversed(history):
            if execution.id <= after_id:
                continue
            last = max(last, execution.id)
            evaluation = execution.evaluation
            if evaluation is None or evaluation.severity != dg.AssetCheckSeverity.ERROR:
                continue
            asset = check_key.asset_key.to_user_string()
            kind = "volume_anomaly" if check_key.name == VOLUME else "check_failure"
            alerts.append(
                Alert(
                    kind=kind,
                    dedupe_key=f"{kind}:{asset}:{check_key.name}",
                    summary=f"check {check_key.name} failed on {asset}",
                    details={
                        "asset": asset,
                        "partition": execution.partition or "",
                        "check": check_key.name,
                        "error": evaluation.description or "",
                        "run_url": run_url(execution.run_id),
                    },
                )
            )
    return alerts, last


def killed_by_timeout(instance: dg.DagsterInstance, run_id: str) -> str | None:
    for record in instance.get_records_for_run(
        run_id=run_id,
        of_type={dg.DagsterEventType.RUN_CANCELING, dg.DagsterEventType.RUN_FAILURE},
        limit=20,
    ).records:
        message = record.event_log_entry.message or ""
        if TIMEOUT_MARKER in message.lower():
            return message
    return None


def sla_alert(instance: dg.DagsterInstance, record) -> Alert | None:
    run = record.dagster_run
    sla = JOB_SLA_SECONDS.get(run.job_name)
    duration = record.end_time - record.start_time if record.start_time and record.end_time else None
    timeout = killed_by_timeout(instance, run.run_id) if run.status != dg.DagsterRunStatus.SUCCESS else None
    if not timeout and (sla is None or duration is None or duration <= sla):
        return None
    error = timeout or f"took {duration:.2f} s, SLA {sla:g} s"
    return Alert(
        kind="sla_breach",
        dedupe_key=f"sla_breach:{run.job_name}:{run.run_id}",
        summary=f"{run.job_name} " + ("was killed by its timeout" if timeout else "breached its SLA"),
        details={
            "job": run.job_name,
            "partition": partition_of(run),
            "error": error,
            "run_url": run_url(run.run_id),
        },
    )


def error_rate_alert(instance: dg.DagsterInstance, job: str) -> Alert | None:
    runs = instance.get_run_records(dg.RunsFilter(job_name=job, statuses=FINISHED), limit=ERROR_RATE_RUNS)
    if len(runs) < ERROR_RATE_RUNS:
        return None
    failed = sum(r.dagster_run.status != dg.DagsterRunStatus.SUCCESS for r in runs)
    if failed / len(runs) <= ERROR_RATE_THRESHOLD:
        return None
    return Alert(
        kind="high_error_rate",
        dedupe_key=f"high_error_rate:{job}",
        summary=f"{job}: {failed} of its last {len(runs)} runs failed",
        details={
            "job": job,
            "error": f"error rate {failed / len(runs):.0%} > {ERROR_RATE_THRESHOLD:.0%}",
            "run_url": run_url(runs[0].dagster_run.run_id),
        },
    )


def freshness_alerts(instance: dg.DagsterInstance, asset_graph, now: float) -> list[Alert]:
    return [
        Alert(
            kind="freshness",
            dedupe_key=f"freshness:{f.asset}",
            summary=f"{f.asset} is stale: last updated {f.age_hours:.1f} h ago (limit {f.fail_after_hours:.0f} h)",
            details={"asset": f.asset, "error": "freshness policy failed"},
        )
        for f in asset_freshness(instance, asset_graph, now)
        if f.state == FAIL
    ]


def evaluate(
    instance: dg.DagsterInstance, asset_graph, cursor: str | None, now: float
) -> tuple[list[Alert], str]:
    """The alerts due since `cursor`, and the new cursor. Pure apart from reading the instance."""
    state = json.loads(cursor) if cursor else {"check_execution_id": 0, "runs_updated_after": now - 3600}
    alerts, state["check_execution_id"] = check_failure_alerts(
        instance, asset_graph, state["check_execution_id"]
    )
    finished = instance.get_run_records(
        dg.RunsFilter(
            statuses=FINISHED,
            updated_after=dt.datetime.fromtimestamp(state["runs_updated_after"], dt.UTC),
        ),
        order_by="update_timestamp",
        ascending=True,
    )
    finished = [r for r in finished if not r.dagster_run.job_name.startswith("__")]
    alerts += [alert for record in finished if (alert := sla_alert(instance, record))]
    alerts += [
        alert
        for job in sorted({r.dagster_run.job_name for r in finished})
        if (alert := error_rate_alert(instance, job))
    ]
    alerts += freshness_alerts(instance, asset_graph, now)
    if finished:
        state["runs_updated_after"] = max(r.update_timestamp.timestamp() for r in finished)
    return alerts, json.dumps(state)


@dg.sensor(
    name="health_alert_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts on failed checks, volume anomalies, SLA breaches, high error rates and stale assets.",
)
def health_alert_sensor(
    context: dg.SensorEvaluationContext, alert_channels: AlertChannels, warehouse: DuckDBWarehouse
):
    alerts, cursor = evaluate(
        context.instance, context.repository_def.asset_graph, context.cursor, time.time()
    )
    if alerts:
        # A locked warehouse raises here; the cursor is not advanced and the next tick tries again.
        with warehouse.connect() as con:
            for alert in alerts:
                context.log.warning(alert.text())
                raise_alert(con, alert_channels, alert, throttle_seconds())
    return dg.SensorResult(
        cursor=cursor, skip_reason=None if alerts else dg.SkipReason("nothing to alert on")
    )

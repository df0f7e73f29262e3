"""ops/pipeline_health: how the pipelines have been doing, from the Dagster instance's own history."""

import datetime as dt
import time

import dagster as dg
import pandas as pd

from assets.common.freshness import FAIL, asset_freshness
from assets.common.history import materializations
from assets.common.policies import OWNERS, TRANSIENT_RETRY, retry_only_transient
from assets.flights import RAW_FLIGHTS_KEY
from flightdeck.health_metrics import RunSample, job_health
from flightdeck.sla import JOB_SLA_SECONDS
from flightdeck.warehouse_ddl import ensure_history_table
from resources.warehouse import WRITER_POOL, DuckDBWarehouse, WarehouseLockedError

WINDOW_DAYS = 7
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def run_samples(instance: dg.DagsterInstance, since: dt.datetime) -> list[RunSample]:
    samples = []
    for record in instance.get_run_records(dg.RunsFilter(created_after=since)):
        run = record.dagster_run
        if run.job_name.startswith("__") and run.job_name != "__ASSET_JOB":
            continue
        duration = record.end_time - record.start_time if record.start_time and record.end_time else None
        samples.append(
            RunSample(
                run.job_name, run.status == dg.DagsterRunStatus.SUCCESS, run.status in FINISHED, duration
            )
        )
    return samples


def rows_processed(instance: dg.DagsterInstance, since: dt.datetime) -> dict[str, object]:
    """Rows loaded and quarantined by raw/flights runs in the window, and the latest partition loaded.

    A ranged run records one materialization per partition with the run's totals, so totals are
    counted once per run.
    """
    per_run: dict[str, tuple[int, int]] = {}
    last_partition = None
    for record in materializations(instance, RAW_FLIGHTS_KEY):
        if record.timestamp < since.timestamp():
            continue
        metadata = record.asset_materialization.metadata
        per_run[record.run_id] = (
            int(metadata["rows_loaded"].value) if "rows_loaded" in metadata else 0,
            int(metadata["rows_quarantined"].value) if "rows_quarantined" in metadata else 0,
        )
        if record.partition_key and (last_partition is None or record.partition_key > last_partition):
            last_partition = record.partition_key
    return {
        "rows_loaded": sum(loaded for loaded, _ in per_run.values()),
        "rows_quarantined": sum(quarantined for _, quarantined in per_run.values()),
        "last_partition_loaded": last_partition or "",
    }


@dg.asset(
    key=["ops", "pipeline_health"],
    description=(
        f"Per job over the last {WINDOW_DAYS} days, from the Dagster instance's run history: runs, success and "
        "error rate, duration p50/p95/p99, SLA compliance; rows loaded and quarantined by raw/flights; "
        "each asset's freshness state. Written to ops.pipeline_health and ops.asset_freshness (one row "
        "per job / asset per refresh, history kept)."
    ),
    group_name="ops",
    kinds={"duckdb", "dagster"},
    owners=OWNERS,
    pool=WRITER_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def pipeline_health(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=WINDOW_DAYS)
    samples = run_samples(context.instance, since)  # the running refresh itself counts once finished
    jobs = sorted({s.job for s in samples})
    health = [job_health(job, [s for s in samples if s.job == job], JOB_SLA_SECONDS.get(job)) for job in jobs]
    rows = rows_processed(context.instance, since)
    freshness = pd.DataFrame(
        [
            f.__dict__
            for f in asset_freshness(context.instance, context.repository_def.asset_graph, time.time())
        ]
    ).assign(computed_at=pd.Timestamp.now(tz="UTC"))
    frame = pd.DataFrame([h.__dict__ for h in health]).assign(
        window_days=WINDOW_DAYS, computed_at=pd.Timestamp.now(tz="UTC"), **rows
    )
    with (
        retry_only_transient(WarehouseLockedError),
        warehouse.writer(context),
        warehouse.connect() as con,
    ):
        con.register("health", frame)
        ensure_history_table(con, "pipeline_health", like="health")
        con.execute("INSERT INTO ops.pipeline_health BY NAME SELECT * FROM health")
        con.register("freshness", freshness)
        ensure_history_table(con, "asset_freshness", like="freshness")
        con.execute("INSERT INTO ops.asset_freshness BY NAME SELECT * FROM freshness")
    metadata: dict[str, object] = {
        "health": dg.MetadataValue.md(
            frame.drop(columns=["computed_at"]).to_markdown(index=False, floatfmt=".3g")
        ),
        "freshness": dg.MetadataValue.md(
            freshness[["asset", "state", "age_hours", "fail_after_hours"]].to_markdown(
                index=False, floatfmt=".3g"
            )
        ),
        "assets_stale": int((freshness["state"] == FAIL).sum()),
        **rows,
    }
    for h in health:
        for name in ("runs", "success_rate", "error_rate", "p50_s", "p95_s", "p99_s", "sla_compliance"):
            value = getattr(h, name)
            if value is not None:
                metadata[f"{h.job}/{name}"] = float(value)
    return dg.MaterializeResult(metadata=metadata)

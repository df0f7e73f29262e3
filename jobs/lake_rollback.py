"""Undo a run's publish of the marts on a DuckLake: every mart that publish replaced goes back to the
snapshot before it, in one transaction (flightdeck/lake.py, rollback_publish).

Write-audit-publish already keeps a failed build from being published; this is for a build that passed
its tests and was wrong anyway (a bad file that looked right). Each publish on the lake is one snapshot
whose commit names its run (dbt_project/macros/publish_marts.sql), so the run id is all a user gives. A
later publish of the same marts is not undone silently: the job refuses, naming it (undo newest first).
Re-running the days after the fix publishes them again. Nothing to undo on the DuckDB file, which keeps
no snapshots.

    dagster job launch -j lake_rollback -f definitions.py \
      --config-json '{"ops": {"rollback_marts": {"config": {"run_id": "<the run>"}}}}'
"""

import dagster as dg

from flightdeck import lake
from resources.warehouse import WRITER_POOL, DuckDBWarehouse


class RollbackConfig(dg.Config):
    run_id: str  # the run whose publish of the marts to undo


@dg.op(pool=WRITER_POOL)
def rollback_marts(
    context: dg.OpExecutionContext, config: RollbackConfig, warehouse: DuckDBWarehouse
) -> dg.Output[None]:
    if not warehouse.is_lake:
        raise dg.Failure(
            "the warehouse is the DuckDB file (FLIGHTDECK_WAREHOUSE=duckdb): it keeps no snapshots"
        )
    # Under the publish lock: no build publishes while the marts go back.
    with warehouse.publish_lock(context), warehouse.connect() as con:
        try:
            undone = lake.rollback_publish(con, config.run_id, context.run_id)
        except lake.RollbackRefused as exc:
            raise dg.Failure(str(exc)) from exc
    context.log.info(
        f"marts {', '.join(undone.marts)} back to snapshot {undone.to_snapshot} (before run {config.run_id}'s "
        f"publish, snapshot {undone.publish_snapshot})"
    )
    return dg.Output(
        None,
        metadata={
            "undone_run_id": config.run_id,
            "publish_snapshot": undone.publish_snapshot,
            "restored_to_snapshot": undone.to_snapshot,
            "rows": dg.MetadataValue.json(undone.rows),
        },
    )


@dg.job(
    name="lake_rollback",
    description="Put the marts a run published back as they were before it (DuckLake snapshots; "
    "nothing on the DuckDB file).",
    tags={"dagster/max_runtime": "3600"},
)
def lake_rollback_job():
    rollback_marts()

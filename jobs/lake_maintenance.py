"""The DuckLake's nightly maintenance (flightdeck/lake.py, maintenance_sql): compaction of small files,
expiry of old snapshots, removal of unreferenced files. Nothing to do on the DuckDB file."""

import dagster as dg

from flightdeck import lake, settings
from resources.warehouse import WRITER_POOL, DuckDBWarehouse


@dg.op(pool=WRITER_POOL)
def maintain_lake(context: dg.OpExecutionContext, warehouse: DuckDBWarehouse) -> dg.Output[None]:
    if not warehouse.is_lake:
        context.log.info(
            "the warehouse is the DuckDB file (FLIGHTDECK_WAREHOUSE=duckdb): nothing to maintain"
        )
        return dg.Output(None, metadata={"skipped": True})
    retention = float(settings.get(settings.DUCKLAKE_RETENTION_DAYS))
    done = {}
    # Compaction rewrites files other writers may be changing: a step like any writer, and a commit
    # that loses to another writer's is run again.
    with warehouse.writer(context), warehouse.connect() as con:
        for statement in lake.maintenance_sql(retention):
            rows = lake.retrying_conflicts(lambda statement=statement: con.execute(statement).fetchall())
            done[statement.split("(")[0].removeprefix("CALL ")] = len(rows)
            context.log.info(f"{statement}: {len(rows)} rows")
    return dg.Output(None, metadata={"retention_days": retention, **done})


@dg.job(
    name="lake_maintenance",
    description="Compact the DuckLake's small files, expire snapshots older than "
    "FLIGHTDECK_DUCKLAKE_SNAPSHOT_RETENTION_DAYS and delete unreferenced files (nothing on the DuckDB file).",
    tags={"dagster/max_runtime": "3600"},
)
def lake_maintenance_job():
    maintain_lake()

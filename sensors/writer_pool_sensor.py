"""Keeps the run queue's `duckdb_writer` pool at as many runs as the warehouse admits writers.

dagster.yaml gives every pool one run at a time (`default_limit: 1`): right for the DuckDB file, which
takes one writer process. A DuckLake takes FLIGHTDECK_WAREHOUSE_WRITERS (the writer lock's slots), but
`default_limit` is a fixed number in the instance's YAML, not read from the environment, so without this
a sensor's daily run would sit in the queue behind a year's backfill on the lake too. The pool's limit is
instance state (what `dagster instance concurrency set` writes); this sensor sets it from the one
setting, on the daemon that runs the queue, within one tick of the daemon's start and after every change.
"""

import dagster as dg

from resources.warehouse import WRITER_POOL, DuckDBWarehouse


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sets the duckdb_writer pool's run limit to the writers the warehouse admits "
    "(1 on the DuckDB file, FLIGHTDECK_WAREHOUSE_WRITERS on a DuckLake).",
)
def writer_pool_sensor(context: dg.SensorEvaluationContext, warehouse: DuckDBWarehouse):
    wanted = warehouse.writers if warehouse.is_lake else 1
    storage = context.instance.event_log_storage
    current = storage.get_concurrency_info(WRITER_POOL).slot_count
    if current == wanted:
        return dg.SkipReason(f"the {WRITER_POOL} pool admits {wanted} run(s) at a time")
    storage.set_concurrency_slots(WRITER_POOL, wanted)
    done = f"set the {WRITER_POOL} pool from {current} to {wanted} run(s) at a time"
    context.log.info(done)
    return dg.SkipReason(done)

"""raw/flight_events: the speed layer's micro-batches of live flight events from the broker.

Not partitioned: the stream is an append-only log whose entries carry their own identity (event_id),
and a micro-batch holds whatever arrived, across hours and days. Partitioning by event hour would turn
one batch into a run per hour it touches, and a late event into a run of an old partition; here a late
event simply lands with its own flight_date and event_time, and the live mart picks it up. Exactly
once: the batch is committed in one transaction, skipping event_ids already held, and its entries are
acknowledged only after that commit (flightdeck/flight_events.py).
"""

import dagster as dg
import redis

from assets.common.policies import OWNERS, TRANSIENT_RETRY, retry_only_transient
from flightdeck import settings
from flightdeck.flight_events import load_batch
from resources.flight_event_stream import FlightEventStream
from resources.warehouse import WRITER_POOL, DuckDBWarehouse, WarehouseLockedError

RAW_FLIGHT_EVENTS_KEY = dg.AssetKey(["raw", "flight_events"])


@dg.asset(
    key=RAW_FLIGHT_EVENTS_KEY,
    # Its own group, without the daily sources' freshness policy: where no broker is configured, or the
    # stream is quiet, nothing is stale.
    group_name="stream",
    kinds={"redis", "duckdb"},
    owners=OWNERS,
    pool=WRITER_POOL,
    retry_policy=TRANSIENT_RETRY,
    description="Live flight events (departed, arrived, cancelled) from the broker, one micro-batch a "
    "run, each event once; malformed entries in quarantine.flight_events.",
)
def raw_flight_events(
    context: dg.AssetExecutionContext, flight_event_stream: FlightEventStream, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    batch_size = int(settings.get(settings.STREAM_BATCH_SIZE))
    # A broker or warehouse that is briefly unreachable is retried; anything else fails for good.
    with retry_only_transient(redis.ConnectionError, redis.TimeoutError, WarehouseLockedError):
        entries = flight_event_stream.read_batch(consumer=context.run_id, count=batch_size)
        with warehouse.writer(context), warehouse.connect() as con:
            load = load_batch(
                con, entries, context.run_id, lambda: warehouse.commit_lock("raw.flight_events")
            )
        # Only now: a crash before this line redelivers the batch, and its event_ids are already held.
        acknowledged = flight_event_stream.ack([entry_id for entry_id, _ in entries])
        flight_event_stream.release(context.run_id)
    context.log.info(
        f"{load.entries} entries: {load.loaded} loaded, {load.redelivered} already held, "
        f"{load.quarantined} quarantined; {acknowledged} acknowledged"
    )
    return dg.MaterializeResult(
        metadata={
            "entries": load.entries,
            "rows_loaded": load.loaded,
            "redelivered": load.redelivered,
            "quarantined": load.quarantined,
            "acknowledged": acknowledged,
            "flight_dates": [d.isoformat() for d in load.flight_dates],
            "reconciles": load.reconciles,
        }
    )

"""SQLite event log storage that writes a batch of asset events in one transaction per database.

Why this exists: a ranged run over a year writes one ASSET_MATERIALIZATION_PLANNED and one
ASSET_MATERIALIZATION event per partition per asset (5 assets x 365 days = 3,650 events). Dagster
hands such events to `store_event_batch` when `DAGSTER_EVENT_BATCH_SIZE` is set, but its SQLite storage
has no batch path: it writes each event in its own pair of transactions (run shard + index shard),
about 25 ms an event on a 2-core machine, ~90 s for the year. PostgreSQL storage batches;
dagster-io/dagster#19829 asks for the same elsewhere. This subclass adds the batch path for SQLite,
mirroring `PostgresEventLogStorage.store_event_batch`: one insert into the run shard, one insert into
the index shard, the asset tags for every event, and the asset's latest-event row once per asset key.
Anything else (a single event, any other event type) goes through the stock per-event path. A ranged
run's planned check executions (one row per partition) are written in one insert, with one serialization
of each event.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import dagster
from dagster._core.events import ASSET_CHECK_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData, serialize_value

# Events this path writes in bulk. FRESHNESS_STATE_CHANGE and ASSET_FAILED_TO_MATERIALIZE are left to
# the stock path (rare, and the stock path knows whether the schema can store failures).
BULK_ASSET_EVENTS = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}
CHECK_PLANNED = DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
# Dagster only batches when this is set (read per event by the process that emits it).
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
# 500 events x 9 columns stays far below SQLite's bound-parameter limit (32,766).
DEFAULT_EVENT_BATCH_SIZE = "500"
# Its switch and the Dagster it was verified with, as for every part of internals/ (this package is loaded
# by dagster.yaml in processes that may not have flightdeck on their path, so it checks them itself).
SWITCH_ENV = "FLIGHTDECK_BATCHED_EVENT_LOG"
VERIFIED_DAGSTER = "1.13."


def batching_enabled() -> bool:
    if os.environ.get(SWITCH_ENV, "true").strip().lower() not in ("1", "true", "yes", "on"):
        return False
    if not dagster.__version__.startswith(VERIFIED_DAGSTER):
        logging.getLogger("flightdeck.internals").warning(
            f"flightdeck internals: batched_event_log is off (dagster {dagster.__version__} is not the "
            f"{VERIFIED_DAGSTER}x it was verified with); the stock path runs"
        )
        return False
    return True


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` plus a batch write path; same files, same schema, same reads.

    dagster.yaml:

        event_log_storage:
          module: flightdeck_instance
          class: BatchingSqliteEventLogStorage
    """

    def __init__(self, inst_data: ConfigurableClassData | None = None):
        # The files are opened in register_instance, once the instance's home is known.
        self._inst_data = inst_data
        # Every process that loads this instance (CLI, webserver, daemon, run worker) emits events; the
        # batch path is only taken when Dagster sees this variable, so turn it on unless the user chose.
        self._batching = batching_enabled()
        if self._batching:
            os.environ.setdefault(EVENT_BATCH_SIZE_ENV, DEFAULT_EVENT_BATCH_SIZE)

    def register_instance(self, instance) -> None:
        # Where Dagster's default SQLite event log lives, <instance home>/history/runs, so switching storages
        # keeps history. The home is only known here (DAGSTER_HOME may name another instance than the one
        # being opened, as in `DagsterInstance.from_config(path)`).
        super().__init__(os.path.join(instance.root_directory, "history", "runs"), self._inst_data)
        super().register_instance(instance)

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not self._batching:
            super().store_event_batch(events)
            return
        bulk = [e for e in events if e.is_dagster_event and e.dagster_event_type in BULK_ASSET_EVENTS]
        checks = [e for e in events if e.is_dagster_event and e.dagster_event_type in ASSET_CHECK_EVENTS]
        if len(bulk) + len(checks) != len(events) or len({e.run_id for e in events}) != 1:
            super().store_event_batch(events)  # the stock one-by-one path
            return
        ordered = bulk + checks
        # Run shard first, as the stock path does: if a later write fails, Dagster falls back to storing
        # the batch event by event, and the worst left behind is a repeated line in this run's log.
        # executemany: SQLAlchemy compiles the statement once, not one bind parameter per value.
        rows = [self._event_to_row(event) for event in ordered]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # Mirror in the cross-run index shard; the ids come back in the order of `rows`.
        with self.index_transaction() as conn:
            result = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            event_ids = [row[0] for row in result.fetchall()]
            asset_ids = event_ids[: len(bulk)]
            if bulk:
                self._store_asset_event_tags(conn, bulk, asset_ids)
                # The asset's summary row keeps only its latest event of each type (as Postgres does).
                latest = {
                    (e.get_dagster_event().asset_key, e.dagster_event_type): (e, i)
                    for e, i in zip(bulk, asset_ids, strict=True)
                }
                for event, event_id in latest.values():
                    self._store_asset_event(conn, event, event_id)
        # Check executions open their own index connection: after the transaction above has closed. The
        # planned ones (a ranged run plans every check at its start) in one insert.
        check_events = list(zip(checks, event_ids[len(bulk) :], strict=True))
        planned = [(e, i) for e, i in check_events if e.dagster_event_type == CHECK_PLANNED]
        self._insert_planned_check_executions(planned)
        for event, event_id in check_events:
            if event.dagster_event_type != CHECK_PLANNED:
                self.store_asset_check_event(event, event_id)

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        self._insert_planned_check_executions([(event, event_id)])

    def _insert_planned_check_executions(self, events: Sequence[tuple[EventLogEntry, int | None]]) -> None:
        """The stock rows (one per planned partition) of every event, in one insert, each event serialized
        once, not once a row.

        Dagster's own version re-serializes the whole event, partition subset included, for each of a
        ranged run's partitions (365 serializations per check per run, seconds for a year), and opens a
        connection per check.
        """
        rows = []
        for event, event_id in events:
            planned = event.get_dagster_event().event_specific_data
            subset = planned.partitions_subset
            common = dict(
                asset_key=planned.asset_key.to_string(),
                check_name=planned.check_name,
                run_id=event.run_id,
                execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                evaluation_event=serialize_value(event),
                evaluation_event_timestamp=self._event_insert_timestamp(event),
                evaluation_event_storage_id=event_id,
            )
            partition_keys = subset.get_partition_keys() if subset else [None]
            rows.extend({**common, "partition": key} for key in partition_keys)
        if rows:
            with self.index_connection() as conn:
                conn.execute(AssetCheckExecutionsTable.insert(), rows)

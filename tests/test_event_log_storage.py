"""The instance's batching SQLite event log records exactly what Dagster's stock SQLite event log does.

The same ranged runs (one succeeding, one failing mid-way, one with an asset check) go through a stock
`SqliteEventLogStorage` instance and a `BatchingSqliteEventLogStorage` instance; every read the UI and
the daemons rely on must agree: materialized partitions, partitions planned but not materialized (what
marks partitions failed), the asset's latest events, check executions, and the event counts by type.
"""

import os
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from flightdeck_instance import BatchingSqliteEventLogStorage

from jobs import tags as dagster_tags

ROOT = Path(__file__).resolve().parent.parent
DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")
KEY = dg.AssetKey("events_probe")
CHECKS = ("rows_positive", "rows_reconcile")  # two: a run's planned checks are written together


def build_asset(fail_from: str | None):
    @dg.asset(
        key=KEY,
        partitions_def=DAYS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[dg.AssetCheckSpec(name, asset=KEY) for name in CHECKS],
    )
    def events_probe(context: dg.AssetExecutionContext):
        if fail_from and context.partition_key_range.end >= fail_from:
            raise dg.Failure("injected failure")
        return dg.MaterializeResult(
            metadata={"rows": len(context.partition_keys)},
            check_results=[dg.AssetCheckResult(check_name=name, passed=True) for name in CHECKS],
        )

    return events_probe


def run_range(instance: dg.DagsterInstance, first: str, last: str, fail_from: str | None = None) -> bool:
    result = dg.materialize(
        [build_asset(fail_from)],
        instance=instance,
        tags={dagster_tags.PARTITION_RANGE_START: first, dagster_tags.PARTITION_RANGE_END: last},
        raise_on_error=False,
    )
    return result.success


def observed(instance: dg.DagsterInstance) -> dict:
    storage = instance.event_log_storage
    latest = instance.get_latest_materialization_event(KEY)
    checks = [
        (name, c)
        for name in CHECKS
        for c in storage.get_asset_check_execution_history(dg.AssetCheckKey(KEY, name), limit=1000)
    ]
    counts: dict[str, int] = {}
    for run in instance.get_runs():
        for record in instance.all_logs(run.run_id):
            if record.is_dagster_event:
                counts[record.dagster_event_type.value] = counts.get(record.dagster_event_type.value, 0) + 1
    # The asset's summary row: which run (by launch order; run ids differ between instances) and which
    # storage id it names as the latest planned and materialized events.
    runs = [run.run_id for run in reversed(instance.get_runs())]
    entry = instance.get_asset_records([KEY])[0].asset_entry
    planned = storage.get_latest_planned_materialization_info(KEY)
    [newest_planned] = storage.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=KEY),
        limit=1,
    )
    return {
        "summary": {
            "last_run": runs.index(entry.last_run_id),
            "last_planned_run": runs.index(planned.run_id),
            "last_planned_is_newest": planned.storage_id == newest_planned.storage_id,
            "last_materialized_partition": entry.last_materialization.dagster_event.partition,
        },
        "materialized": sorted(instance.get_materialized_partitions(KEY)),
        "planned_not_materialized": sorted(
            storage.get_latest_asset_partition_materialization_attempts_without_materializations(KEY)
        ),
        "latest_partition": latest.dagster_event.partition if latest else None,
        "check_executions": sorted((name, c.status.value, c.partition or "") for name, c in checks),
        "event_counts": counts,
    }


def instance_with(home: Path, batching: bool) -> dg.DagsterInstance:
    """An instance opened by path; DAGSTER_HOME (the test session's) names another one on purpose."""
    home.mkdir()
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    if not batching:
        config.pop("event_log_storage")
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def scenario(instance: dg.DagsterInstance) -> dict:
    assert run_range(instance, "2024-01-01", "2024-01-31")
    assert not run_range(instance, "2024-02-01", "2024-02-10", fail_from="2024-02-01")
    return observed(instance)


@pytest.fixture
def batch_size(monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "500")


def test_batching_storage_records_what_the_stock_storage_records(tmp_path, batch_size):
    with instance_with(tmp_path / "stock", False) as stock:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        expected = scenario(stock)
    with instance_with(tmp_path / "batching", True) as batching:
        assert isinstance(batching.event_log_storage, BatchingSqliteEventLogStorage)
        got = scenario(batching)

    assert got == expected
    assert (tmp_path / "batching" / "history" / "runs" / "index.db").exists()  # Dagster's own layout
    # The scenario exercised what matters: 31 partitions materialized, 10 planned and then failed.
    assert len(got["materialized"]) == 31 and got["latest_partition"] == "2024-01-31"
    assert got["planned_not_materialized"] == [f"2024-02-{d:02d}" for d in range(1, 11)]
    assert got["event_counts"]["ASSET_MATERIALIZATION_PLANNED"] == 41
    assert got["summary"]["last_planned_is_newest"] and got["summary"]["last_planned_run"] == 1


def test_batching_storage_turns_batching_on_unless_the_user_chose(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with instance_with(tmp_path / "home", True):
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "500"
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")  # the user's choice: no batching
    with instance_with(tmp_path / "home2", True):
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "0"

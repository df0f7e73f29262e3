"""Load a window of a daily dataset and report each partition's outcome: what every daily raw asset does.

One bad day never holds back the good ones. A day whose file is missing, breaks the contract, cannot be
read, or fails a blocking gate is held back (it keeps its previous content) and reported failed; every
other day of the window loads and reaches what is downstream in the same run. How Dagster is told:
- each partition's materialization gets its own figures (`add_asset_metadata(partition_key=…)`);
- each failing partition gets its own failed gate evaluation (`assets/common/load_checks.py`);
- when nothing of the window could load, the step fails: the stock way, every partition shows failed;
- otherwise the step succeeds (Dagster 1.13 materializes every partition of a ranged step that
  succeeds, dagster-io/dagster#17836), and the dataset's `all_partitions_loaded` check, which runs after
  everything downstream in the run, marks the held-back partitions failed and fails the run with their
  reasons (`assets/common/partition_outcomes.py`), so one alert names them.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from assets.common import load_checks
from assets.common.partitions import partition_bounds
from assets.common.policies import retry_only_transient, within_step_timeout
from flightdeck import settings
from flightdeck.landing import (
    LandingFile,
    LandingFileError,
    MissingLandingFileError,
    find_partition_file,
    inspect,
    quarantine_bytes,
    quarantine_file,
)
from flightdeck.loader import FILE_PROBLEM, DailyDataset, Gates, PartitionLoad, load_window
from flightdeck.schemas import column_names
from resources.landing import LandingArea
from resources.warehouse import DuckDBWarehouse, WarehouseLockedError


def window_days(window: tuple[dt.date, dt.date]) -> list[dt.date]:
    return [window[0] + dt.timedelta(days=n) for n in range((window[1] - window[0]).days + 1)]


def contract_checked_files(
    landing: LandingArea, dataset: DailyDataset, window: tuple[dt.date, dt.date], run_id: str
) -> tuple[list[LandingFile], dict[dt.date, tuple[str, str]]]:
    """Every day's contract-checked file, and the days whose file is missing or bad: date -> (source,
    problem). A bad file is copied to quarantine with its reason; the landing file is never touched."""
    start, end_exclusive = partition_bounds()
    columns = column_names(dataset.model)
    folder = landing.dataset_dir(dataset.name)
    max_bytes = int(float(settings.get(settings.MAX_FILE_MB)) * 2**20)

    def check(day: dt.date) -> LandingFile | tuple[str, str]:
        """The day's checked file, or (source, the problem with it)."""
        try:
            path = find_partition_file(folder, day)
            return inspect(path, columns, start, end_exclusive, max_bytes)
        except MissingLandingFileError as exc:
            return str(folder / f"{day.isoformat()}.csv"), str(exc)
        except LandingFileError as exc:
            copy = quarantine_file(exc, landing.quarantine_root(), dataset.name, run_id)
            return str(exc.path), f"{exc.reason}: {exc.detail} (quarantined as {copy})"

    days = window_days(window)
    # Threads, because hashing a file releases the GIL: a year's files are checked in about half the time.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = dict(zip(days, pool.map(check, days), strict=True))
    files = [o for o in outcomes.values() if isinstance(o, LandingFile)]
    problems = {day: o for day, o in outcomes.items() if not isinstance(o, LandingFile)}
    return files, problems


def quarantine_unreadable(landing: LandingArea, dataset: DailyDataset, run_id: str):
    """The loader's callback for a file that passed the contract but cannot be read to the end."""

    def quarantine(file: LandingFile, error: str) -> str:
        copy = quarantine_bytes(
            file.path.read_bytes(),
            file.path.name,
            str(file.path),
            "unreadable",
            error,
            landing.quarantine_root(),
            dataset.name,
            run_id,
        )
        return f"{error} (quarantined as {copy})"

    return quarantine


def partition_metadata(load: PartitionLoad) -> dict[str, object]:
    """One partition's own figures, as its materialization's metadata."""
    metadata: dict[str, object] = {
        # What the partition holds after this run: its new rows, or its previous ones when held back.
        "dagster/row_count": load.rows_kept,
        "outcome": "rejected" if load.rejected else "loaded",
        "rows_read": load.rows_read,
        "rows_loaded": load.rows_loaded,
        "rows_quarantined": load.rows_quarantined,
        "rows_duplicate": load.rows_duplicate,
        "rows_held_back": load.rows_held_back,
        "quarantine_rate": float(load.quarantine_rate),
        "duplicate_rate": float(load.duplicate_rate),
        "schema_failures": load.schema_failures,
        "source_file": load.source_file,
        **{f"null_rate_{column}": rate for column, rate in load.null_rates.items()},
    }
    if load.rejected:
        metadata["rejected_because"] = load.rejected_because
    return metadata


def window_metadata(loads: list[PartitionLoad]) -> dict[str, object]:
    """What every partition's materialization of a run shares: the run's window and its outcome."""
    rejected = [load for load in loads if load.rejected]
    return {
        "window_partitions": len(loads),
        "window_partitions_rejected": len(rejected),
        "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def describe_rejections(loads: list[PartitionLoad]) -> str:
    return "\n".join(f"{load.partition_date}: {load.rejected_because}" for load in loads if load.rejected)


def load_and_gate(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    landing: LandingArea,
    dataset: DailyDataset,
    files: list[LandingFile],
    file_problems: dict[dt.date, tuple[str, str]],
    window: tuple[dt.date, dt.date],
    key_columns: list[str],
    gates: Gates,
    extra_metadata: dict[str, object] | None = None,
) -> dg.MaterializeResult:
    """Replace the window's partitions from `files`, each on its own; report every partition's outcome."""
    if not files:  # nothing to read: fail before the warehouse is even opened
        listing = "\n".join(
            f"{day}: {FILE_PROBLEM}: {problem}" for day, (_, problem) in sorted(file_problems.items())
        )
        raise dg.Failure(
            description=f"no partition of {dataset.name} {window[0]}..{window[1]} could be loaded:\n{listing}",
            metadata={
                "rejected_partitions": dg.MetadataValue.json(
                    {str(d): p for d, (_, p) in file_problems.items()}
                )
            },
            allow_retries=False,  # bad input is not transient
        )
    with (
        retry_only_transient(WarehouseLockedError, OSError),
        warehouse.connect() as con,
        within_step_timeout(con.interrupt, f"loading {dataset.name} {window[0]}..{window[1]}"),
    ):
        loads = load_window(
            con,
            dataset,
            files,
            window,
            context.run_id,
            gates,
            key_columns,
            file_problems,
            on_unreadable=quarantine_unreadable(landing, dataset, context.run_id),
            commit_lock=lambda: warehouse.commit_lock(f"raw.{dataset.name}"),
        )
    ranged = len(loads) > 1
    asset_key = context.asset_key
    results, evaluations = load_checks.gate_results(asset_key, loads, gates, ranged)
    rejected = [load for load in loads if load.rejected]
    if len(rejected) == len(loads):
        # Nothing to materialize: the step fails, and Dagster shows every partition of it failed.
        for evaluation in evaluations if ranged else _single_evaluations(asset_key, results, loads[0]):
            context.log_event(evaluation)
        raise dg.Failure(
            description=f"no partition of {dataset.name} {window[0]}..{window[1]} could be loaded:\n"
            + describe_rejections(loads),
            metadata={
                "rejected_partitions": dg.MetadataValue.json(_rejections(loads)),
                **(partition_metadata(loads[0]) if not ranged else {}),
            },
            allow_retries=False,  # bad input is not transient
        )
    for evaluation in evaluations:
        context.log_event(evaluation)
    for load in loads:
        context.add_asset_metadata(partition_metadata(load), partition_key=load.partition_date.isoformat())
    if rejected:
        context.log.warning(f"held back {len(rejected)} partition(s):\n{describe_rejections(loads)}")
    context.log.info(
        f"loaded {len(loads) - len(rejected)} of {len(loads)} {dataset.name} partition(s) "
        f"{window[0]}..{window[1]}"
    )
    return dg.MaterializeResult(
        metadata={**window_metadata(loads), **(extra_metadata or {})}, check_results=results
    )


def _rejections(loads: list[PartitionLoad]) -> dict[str, str]:
    return {load.partition_date.isoformat(): load.rejected_because for load in loads if load.rejected}


def _single_evaluations(
    asset_key: dg.AssetKey, results: list[dg.AssetCheckResult], load: PartitionLoad
) -> list[dg.AssetCheckEvaluation]:
    """The failed gates of a one-partition run whose step fails, recorded against that partition."""
    return [
        dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=result.check_name,
            passed=False,
            partition=load.partition_date.isoformat(),
            severity=result.severity,
            description=load.failed_gates[result.check_name],
            metadata=load_checks.evaluation_metadata(load),
        )
        for result in results
        if not result.passed
    ]

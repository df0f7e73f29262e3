"""Load a window of a daily dataset and evaluate its gates: what every daily raw asset does last."""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from assets import load_checks
from assets.daily_loader import DailyDataset, PartitionLoad, load_window
from assets.landing import (
    LandingFile,
    LandingFileError,
    MissingLandingFileError,
    find_partition_file,
    inspect,
    quarantine_file,
)
from assets.partitions import partition_bounds
from assets.policies import retry_only_transient, within_step_timeout
from assets.schemas import column_names
from resources import settings
from resources.landing import LandingArea
from resources.warehouse import DuckDBWarehouse, WarehouseLockedError


def contract_checked_files(
    landing: LandingArea, dataset: DailyDataset, window: tuple[dt.date, dt.date], run_id: str
) -> list[LandingFile]:
    """Every day's file, contract-checked; any missing or bad file fails the run before anything loads."""
    start, end_exclusive = partition_bounds()
    columns = column_names(dataset.model)

    def check(day: dt.date) -> LandingFile | str:
        """The day's checked file, or the problem with it."""
        try:
            path = find_partition_file(landing.dataset_dir(dataset.name), day)
            return inspect(path, columns, start, end_exclusive)
        except MissingLandingFileError as exc:
            return str(exc)
        except LandingFileError as exc:
            copy = quarantine_file(exc, landing.quarantine_root(), dataset.name, run_id)
            return f"{exc} (quarantined as {copy})"

    days = [window[0] + dt.timedelta(days=n) for n in range((window[1] - window[0]).days + 1)]
    # Threads, because hashing a file releases the GIL: a year's files are checked in about half the time.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(pool.map(check, days))
    files = [o for o in outcomes if isinstance(o, LandingFile)]
    problems = [o for o in outcomes if isinstance(o, str)]
    if problems:
        raise dg.Failure(
            description=f"{len(problems)} landing file problem(s), nothing was loaded:\n"
            + "\n".join(problems),
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))},
            allow_retries=False,  # bad input is not transient
        )
    return files


def load_metadata(loads: list[PartitionLoad], files: list[LandingFile]) -> dict[str, object]:
    read = sum(load.rows_read for load in loads)
    loaded = sum(load.rows_loaded for load in loads)
    quarantined = sum(load.rows_quarantined for load in loads)
    duplicate = sum(load.rows_duplicate for load in loads)
    return {
        "dagster/row_count": loaded,
        "rows_read": read,
        "rows_loaded": loaded,
        "rows_quarantined": quarantined,
        "rows_duplicate": duplicate,
        "quarantine_rate": quarantined / read if read else 0.0,
        "duplicate_rate": duplicate / read if read else 0.0,
        "partitions_loaded": len(loads),
        "source_file": str(files[0].path) if len(files) == 1 else f"{len(files)} files",
        "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def load_and_gate(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    dataset: DailyDataset,
    files: list[LandingFile],
    window: tuple[dt.date, dt.date],
    key_columns: list[str],
    max_quarantine_rate: float,
    extra_metadata: dict[str, object] | None = None,
    volume_severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.MaterializeResult:
    """Replace the window's partitions from `files`; report accounting, quality metrics and gates."""
    with (
        retry_only_transient(WarehouseLockedError, OSError),
        warehouse.connect() as con,
        within_step_timeout(con.interrupt, f"loading {dataset.name} {window[0]}..{window[1]}"),
    ):
        loads = load_window(con, dataset, files, window, context.run_id)
        checks = [
            load_checks.reconciliation(loads),
            load_checks.quarantine_rate(loads, max_quarantine_rate),
            load_checks.volume(
                con, dataset, window, float(settings.get(settings.MIN_VOLUME_FRACTION)), volume_severity
            ),
        ]
        metrics = load_checks.quality_metrics(con, dataset, window, key_columns, context.run_id)
    context.log.info(f"loaded {len(loads)} {dataset.name} partition(s) {window[0]}..{window[1]}")
    return dg.MaterializeResult(
        metadata={**load_metadata(loads, files), **metrics, **(extra_metadata or {})},
        check_results=checks,
    )

"""raw/flights: each day's landing file, validated, loaded into DuckDB raw.flights; bad rows quarantined."""

import datetime as dt

import dagster as dg

from assets import load_checks
from assets.daily_loader import PartitionLoad, load_window
from assets.flights_dataset import FLIGHTS
from assets.landing import (
    LandingFile,
    LandingFileError,
    MissingLandingFileError,
    find_partition_file,
    inspect,
    quarantine_file,
)
from assets.partitions import DAILY_PARTITIONS, partition_bounds, window_dates
from assets.policies import OWNERS, RANGED_BACKFILL, TRANSIENT_RETRY, retry_only_transient
from assets.schemas import column_names
from resources import settings
from resources.landing import LandingArea
from resources.warehouse import WRITER_POOL, DuckDBWarehouse, WarehouseLockedError

RAW_FLIGHTS_KEY = dg.AssetKey(["raw", "flights"])
KEY_COLUMNS = ["dep_time", "arr_delay", "tailnum", "air_time"]


def contract_checked_files(
    landing: LandingArea, dataset: str, columns: list[str], days: list[dt.date], run_id: str
) -> list[LandingFile]:
    """Every day's file, contract-checked; any missing or bad file fails the run before anything loads."""
    start, end_exclusive = partition_bounds()
    files, problems = [], []
    for day in days:
        try:
            path = find_partition_file(landing.dataset_dir(dataset), day)
            files.append(inspect(path, columns, start, end_exclusive))
        except MissingLandingFileError as exc:
            problems.append(str(exc))
        except LandingFileError as exc:
            copy = quarantine_file(exc, landing.quarantine_root(), dataset, run_id)
            problems.append(f"{exc} (quarantined as {copy})")
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


@dg.asset(
    key=RAW_FLIGHTS_KEY,
    description=(
        "Daily flights from landing/flights/YYYY-MM-DD.{csv,csv.gz,parquet}, validated against the pandera "
        "FlightsSchema. Invalid and duplicate rows go to quarantine.flights with reasons; each load "
        "replaces its partitions atomically and is audited in ops.load_audit."
    ),
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=RANGED_BACKFILL,
    retry_policy=TRANSIENT_RETRY,
    pool=WRITER_POOL,
    group_name="raw",
    kinds={"duckdb", "pandera"},
    owners=OWNERS,
    check_specs=load_checks.check_specs(RAW_FLIGHTS_KEY),
    code_version="1",
)
def raw_flights(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, landing: LandingArea
) -> dg.MaterializeResult:
    first, last = window_dates(context)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    files = contract_checked_files(landing, FLIGHTS.name, column_names(FLIGHTS.model), days, context.run_id)
    with retry_only_transient(WarehouseLockedError, OSError), warehouse.connect() as con:
        loads = load_window(con, FLIGHTS, files, (first, last), context.run_id)
        checks = [
            load_checks.reconciliation(loads),
            load_checks.quarantine_rate(loads, float(settings.get(settings.MAX_QUARANTINE_RATE))),
            load_checks.volume(
                con, FLIGHTS, (first, last), float(settings.get(settings.MIN_VOLUME_FRACTION))
            ),
        ]
        metrics = load_checks.quality_metrics(con, FLIGHTS, (first, last), KEY_COLUMNS, context.run_id)
    context.log.info(f"loaded {len(loads)} partition(s) {first}..{last} from {len(files)} file(s)")
    return dg.MaterializeResult(metadata={**load_metadata(loads, files), **metrics}, check_results=checks)

"""raw/flights: each day's landing file, validated, loaded into DuckDB raw.flights; bad rows quarantined."""

import datetime as dt

import dagster as dg

from assets import load_checks
from assets.datasets import FLIGHTS
from assets.gated_load import load_and_gate
from assets.landing import (
    LandingFile,
    LandingFileError,
    MissingLandingFileError,
    find_partition_file,
    inspect,
    quarantine_file,
)
from assets.partitions import DAILY_PARTITIONS, partition_bounds, window_dates
from assets.policies import OWNERS, RANGED_BACKFILL, TRANSIENT_RETRY
from assets.schemas import column_names
from resources import settings
from resources.landing import LandingArea
from resources.warehouse import WRITER_POOL, DuckDBWarehouse

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
    return load_and_gate(
        context,
        warehouse,
        FLIGHTS,
        files,
        (first, last),
        KEY_COLUMNS,
        float(settings.get(settings.MAX_QUARANTINE_RATE)),
    )

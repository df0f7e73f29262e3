"""raw/flights: each day's landing file, validated, loaded into DuckDB raw.flights; bad rows quarantined."""

import dagster as dg

from assets import load_checks
from assets.daily_loader import Gates
from assets.datasets import FLIGHTS
from assets.gated_load import contract_checked_files, load_and_gate
from assets.partitions import DAILY_PARTITIONS, window_dates
from assets.policies import OWNERS, RANGED_BACKFILL, TRANSIENT_RETRY
from resources import settings
from resources.landing import LandingArea
from resources.warehouse import WRITER_POOL, DuckDBWarehouse

RAW_FLIGHTS_KEY = dg.AssetKey(["raw", "flights"])
KEY_COLUMNS = ["dep_time", "arr_delay", "tailnum", "air_time"]


@dg.asset(
    key=RAW_FLIGHTS_KEY,
    description=(
        "Daily flights from landing/flights/YYYY-MM-DD.{csv,csv.gz,parquet}, validated against the pandera "
        "FlightsSchema. Invalid and duplicate rows go to quarantine.flights with reasons; each load "
        "replaces its partitions atomically and is audited in ops.load_audit. A day whose file is bad or "
        "that fails a gate is held back on its own; the rest of the window loads."
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
    window = window_dates(context)
    files, problems = contract_checked_files(landing, FLIGHTS, window, context.run_id)
    gates = Gates(
        max_quarantine_rate=float(settings.get(settings.MAX_QUARANTINE_RATE)),
        min_volume_fraction=float(settings.get(settings.MIN_VOLUME_FRACTION)),
    )
    return load_and_gate(context, warehouse, landing, FLIGHTS, files, problems, window, KEY_COLUMNS, gates)

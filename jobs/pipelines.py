"""Jobs: what runs together. Each job has a run timeout so a hung run fails and is reported."""

import dagster as dg

from assets.common.daily_raw import raw_key
from assets.flights import LANDING_DATASETS
from assets.reference import REFERENCE_ASSETS
from assets.weather import RAW_WEATHER_KEY
from flightdeck.datasets import FLIGHTS
from flightdeck.loader import DailyDataset

LANDING_PIPELINE_MAX_RUNTIME_S = 3600
REFERENCE_MAX_RUNTIME_S = 900
WEATHER_PIPELINE_MAX_RUNTIME_S = 1800


def landing_pipeline_job(dataset: DailyDataset):
    """<name>_pipeline: a pushed dataset's raw asset and everything partitioned downstream of it (staging
    + marts), in one run; its landing sensor requests it."""
    return dg.define_asset_job(
        name=f"{dataset.name}_pipeline",
        selection=dg.AssetSelection.assets(raw_key(dataset)).downstream(),
        description=f"Load daily {dataset.name} files and update the staging and marts for the same partitions.",
        tags={"dagster/max_runtime": str(LANDING_PIPELINE_MAX_RUNTIME_S)},
    )


LANDING_JOBS = {dataset.name: landing_pipeline_job(dataset) for dataset in LANDING_DATASETS}
flights_pipeline_job = LANDING_JOBS[FLIGHTS.name]

# raw/weather and the marts that read it, for the same partitions; the daily schedule runs it.
weather_pipeline_job = dg.define_asset_job(
    name="weather_pipeline",
    selection=dg.AssetSelection.assets(RAW_WEATHER_KEY).downstream(),
    description="Pull a day's weather from the API and update the marts' weather columns for that day.",
    tags={"dagster/max_runtime": str(WEATHER_PIPELINE_MAX_RUNTIME_S)},
)

# The marts that read reference data (through ephemeral staging), rebuilt when a snapshot changes.
marts_rebuild_job = dg.define_asset_job(
    name="marts_rebuild",
    selection=dg.AssetSelection.assets(*REFERENCE_ASSETS).downstream(include_self=False),
    description="Rebuild the marts over a partition range after a reference table changed.",
    tags={"dagster/max_runtime": str(LANDING_PIPELINE_MAX_RUNTIME_S)},
)

reference_job = dg.define_asset_job(
    name="reference_refresh",
    selection=dg.AssetSelection.assets(*REFERENCE_ASSETS),
    description="Snapshot the reference tables (the marts read them through ephemeral staging models).",
    tags={"dagster/max_runtime": str(REFERENCE_MAX_RUNTIME_S)},
)

ops_job = dg.define_asset_job(
    name="ops_nightly",
    selection=dg.AssetSelection.groups("ops"),
    description="Refresh the ops assets (pipeline health) from the Dagster instance's history.",
    tags={"dagster/max_runtime": "600"},
)


flight_events_job = dg.define_asset_job(
    name="flight_events_microbatch",
    selection=dg.AssetSelection.keys(["raw", "flight_events"]),
    description="One micro-batch of live flight events from the broker into raw/flight_events.",
    tags={"dagster/max_runtime": "600"},
)

# The live mart over the flight dates a micro-batch of live events touched. Only it (dagster-dbt's subset
# of the dbt step; the other marts are audited as published, assets/dbt_models.py): rebuilding the file's
# marts for those days would redo work no event changed, and would fail on a new instance where the
# stream runs before any file (and the reference data the flight marts join) arrived.
LIVE_FLIGHT_STATUS_KEY = dg.AssetKey(["marts", "live_flight_status"])
live_marts_job = dg.define_asset_job(
    name="live_marts",
    selection=dg.AssetSelection.assets(LIVE_FLIGHT_STATUS_KEY),
    description="Rebuild marts/live_flight_status over the flight dates a micro-batch of live flight "
    "events touched.",
    tags={"dagster/max_runtime": str(LANDING_PIPELINE_MAX_RUNTIME_S)},
)

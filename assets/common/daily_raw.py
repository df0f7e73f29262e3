"""The raw asset of a daily dataset, built from its declaration (flightdeck/datasets.py): daily
partitions, ranged backfills, the writer pool, transient-only retries, the blocking gates, and the load
that holds a bad day back on its own while the rest of the window loads.

Every dataset whose files are pushed to landing/<name>/ gets its asset from this with nothing more to write
(assets/flights.py); a dataset its asset fetches (weather) passes how it lands each day's file."""

from collections.abc import Callable, Collection

import dagster as dg
from dagster_pandera import pandera_schema_to_dagster_type

from assets.common import load_checks
from assets.common.gated_load import contract_checked_files, load_and_gate
from assets.common.partitions import DAILY_PARTITIONS, window_dates
from assets.common.policies import OWNERS, RANGED_BACKFILL, TRANSIENT_RETRY
from flightdeck.datasets import gates
from flightdeck.loader import DailyDataset
from resources.warehouse import WRITER_POOL

# (context, window) -> (the days' landed files, date -> (source, problem) for the days without one,
# extra metadata for the materializations)
Lander = Callable[[dg.AssetExecutionContext, tuple], tuple[list, dict, dict]]


def raw_key(dataset: DailyDataset) -> dg.AssetKey:
    return dg.AssetKey(["raw", dataset.name])


def daily_raw_asset(
    dataset: DailyDataset, land: Lander | None = None, resources: Collection[str] = ()
) -> dg.AssetsDefinition:
    key = raw_key(dataset)

    @dg.asset(
        key=key,
        description=dataset.description,
        partitions_def=DAILY_PARTITIONS,
        backfill_policy=RANGED_BACKFILL,
        retry_policy=TRANSIENT_RETRY,
        pool=WRITER_POOL,
        group_name="raw",
        kinds=set(dataset.kinds),
        owners=OWNERS,
        check_specs=load_checks.check_specs(key),
        code_version="1",
        # The catalog's table and column view of the pandera model, types, nullability and checks.
        metadata={
            "dagster/table_name": f"raw.{dataset.name}",
            "dagster/column_schema": pandera_schema_to_dagster_type(dataset.model).metadata["schema"],
        },
        required_resource_keys={"warehouse", "landing", *resources},
    )
    def raw(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        warehouse, landing = context.resources.warehouse, context.resources.landing
        window = window_dates(context)
        if land is None:
            files, problems = contract_checked_files(landing, dataset, window, context.run_id)
            extra = None
        else:
            files, problems, extra = land(context, window)
        with warehouse.writer(context):
            return load_and_gate(
                context,
                warehouse,
                landing,
                dataset,
                files,
                problems,
                window,
                list(dataset.key_columns),
                gates(dataset),
                extra_metadata=extra,
            )

    return raw

"""`all_partitions_loaded`: the last word of a run on a daily dataset's partitions.

It runs after everything downstream of the raw asset in the same run (its `additional_deps`), reads the
run's outcome per partition from `ops.load_audit`, and, when the loader held some partitions back while
the rest of the window loaded, marks those partitions failed for Dagster (internals/failed_partitions.py),
records a failed check naming them and their reasons, and fails the run, so the run-failure alert names
them. A run that loaded everything passes it; a run that loaded nothing failed earlier, at the raw step.
"""

import dagster as dg

from assets.common.partitions import DAILY_PARTITIONS
from flightdeck.loader import DailyDataset
from internals import failed_partitions
from resources.warehouse import WRITER_POOL, DuckDBWarehouse

CHECK_NAME = "all_partitions_loaded"


def held_back_partitions(warehouse: DuckDBWarehouse, dataset: str, run_ids: list[str]) -> dict[str, str]:
    """partition -> why, for the partitions this run (or the run it retries) last held back."""
    with warehouse.connect() as con:
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ops' AND table_name = 'load_audit'"
        ).fetchone()[0]
        if not exists:
            return {}
        rows = con.execute(
            """SELECT strftime(partition_date, '%Y-%m-%d'), arg_max(rejected_because, loaded_at),
                      arg_max(outcome, loaded_at)
               FROM ops.load_audit WHERE dataset = ? AND list_contains(?, run_id) GROUP BY partition_date
               ORDER BY partition_date""",
            [dataset, run_ids],
        ).fetchall()
    return {day: why for day, why, outcome in rows if outcome == "rejected"}


def descendants(key: dg.AssetKey, assets: list[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """Every asset of `assets` downstream of `key`, from their declared dependencies."""
    deps = {child: parents for a in assets for child, parents in a.asset_deps.items()}
    found: list[dg.AssetKey] = []
    frontier = [key]
    while frontier:
        parent = frontier.pop()
        for child, parents in deps.items():
            if parent in parents and child not in found:
                found.append(child)
                frontier.append(child)
    return sorted(found, key=lambda k: k.to_user_string())


def all_partitions_loaded_check(
    asset_key: dg.AssetKey, dataset: DailyDataset, downstream_assets: list[dg.AssetsDefinition]
) -> dg.AssetChecksDefinition:
    downstream = descendants(asset_key, downstream_assets)

    @dg.asset_check(
        asset=asset_key,
        name=CHECK_NAME,
        description=(
            "Every partition of the run loaded. A partition held back by its gates or its file fails "
            "this check and the run, after the rest of the window has reached the marts."
        ),
        additional_deps=downstream,
        partitions_def=DAILY_PARTITIONS,
        pool=WRITER_POOL,
    )
    def all_partitions_loaded(context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse):
        run = context.run
        run_ids = [i for i in dict.fromkeys([run.run_id, run.parent_run_id, run.root_run_id]) if i]
        with warehouse.writer(context):
            held_back = held_back_partitions(warehouse, dataset.name, run_ids)
        if not held_back:
            yield dg.AssetCheckResult(passed=True, description="every partition of the run loaded")
            return
        # A job's run names no selection (empty): it materializes the whole job, downstream included.
        selected = context.run.asset_selection or None
        keys = [asset_key, *(k for k in downstream if selected is None or k in selected)]
        marked = failed_partitions.mark_partitions_failed(
            context.instance, run, keys, list(held_back), log=context.log
        )
        listing = "\n".join(f"{day}: {why}" for day, why in held_back.items())
        yield dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{len(held_back)} partition(s) held back: {', '.join(list(held_back)[:10])}",
            metadata={
                "held_back": dg.MetadataValue.json(held_back),
                "marked_failed": dg.MetadataValue.json([k.to_user_string() for k in keys] if marked else []),
            },
        )
        raise dg.Failure(
            description=f"{len(held_back)} {dataset.name} partition(s) held back, the rest loaded:\n{listing}",
            metadata={"held_back": dg.MetadataValue.json(held_back)},
            allow_retries=False,  # the same files fail the same way; a corrected file loads by itself
        )

    return all_partitions_loaded

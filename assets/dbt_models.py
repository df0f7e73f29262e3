"""dbt models as Dagster assets: staging and marts that follow the daily partitions.

The manifest is built once by `make install` (`dbt parse`), never at import: loading definitions stays
fast and never touches the warehouse.
"""

import contextlib
import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from assets.common.partitions import DAILY_PARTITIONS, window_dates
from assets.common.policies import OWNERS, RANGED_BACKFILL, within_step_timeout
from flightdeck import cpu_share, flight_events
from flightdeck.datasets import DAILY_DATASETS
from flightdeck.dbt_args import build_args, build_errors, mentions_lock_conflict, window_env, window_vars
from flightdeck.sql_validation import compile_model
from flightdeck.warehouse_ddl import ensure_dataset_tables
from internals import dbt_launcher, failed_partitions
from internals.dagster_dbt_without_core import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    dbt_assets,
)
from resources.dbt import DBT_PROJECT, FlightdeckDbtCli
from resources.warehouse import WRITER_POOL, DuckDBWarehouse

DBT_MANIFEST = DBT_PROJECT.manifest_path
if not DBT_MANIFEST.exists():
    raise FileNotFoundError(f"{DBT_MANIFEST} is missing: run `make install` (it runs `dbt parse` once)")


class FlightdeckDbtTranslator(DagsterDbtTranslator):
    """Models are keyed <layer>/<name> (staging/stg_flights, marts/fct_flights); sources raw/<table>."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([self.get_group_name(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # fqn is [project, folder, ..., name]: the folder is the layer.
        return dbt_resource_props["fqn"][1]

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return OWNERS


TRANSLATOR = FlightdeckDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def run_dbt_build(
    context: dg.AssetExecutionContext,
    dbt: FlightdeckDbtCli,
    dbt_vars: dict[str, str],
    warehouse: DuckDBWarehouse,
    publish_lock: contextlib.AbstractContextManager[dict[str, str]] | None = None,
) -> Iterator[Any]:
    """`dbt build` of the window; `publish_lock` (a gate, see daily_dbt_models) is held around it and
    gives dbt's process the environment that finds it. While dbt runs, the step holds its share of the
    host's cores (DuckDBWarehouse.cpu_share): dbt gets its part at its start, and through the gate,
    before each model and at the publish (internals/dbt_launcher.py, gate_callback)."""
    # The run's id names the lake's publish snapshot (publish_marts.sql; lake_rollback undoes by it).
    env = window_env(dbt_vars) | {"FLIGHTDECK_RUN_ID": context.run_id}
    # The share is let go before the publish lock: the next build to publish gets its part without it.
    with publish_lock or contextlib.nullcontext({}) as gate_env, warehouse.cpu_share():
        threads = cpu_share.threads()
        if threads is not None:
            env[dbt_launcher.THREADS_ENV] = str(threads)  # set by macros/share_host_cores.sql
        invocation = dbt.cli_with_env(build_args(), env | gate_env, context=context, raise_on_error=False)
        with within_step_timeout(invocation.process.terminate, "dbt build"):
            yield from invocation.stream()
            if not invocation.is_successful():
                mark_unpublished_marts_failed(context)
                raise_build_failure(invocation, warehouse)
    yield from window_row_counts(context, warehouse)
    try:
        dbt.keep_parse_state(invocation)
        dbt.prune_invocation_folders()
    except OSError as exc:  # housekeeping only: the build succeeded and its events are recorded
        context.log.warning(f"dbt housekeeping failed, the next run may re-parse the project: {exc}")


def window_row_counts(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> Iterator[Any]:
    """One observation per mart built: the rows it holds for the window once published, in all and by day.

    Counted once dbt has published the marts and let go of the warehouse. An observation, not the
    materializations' metadata: those stream while dbt runs, and holding them back for the counts would
    cost the ranged run the time to write every partition's events after dbt instead of during it."""
    first, last = window_dates(context)
    columns = mart_partition_columns()
    marts = [key for key in context.selected_asset_keys if key.path[0] == "marts"]
    partition = context.partition_key if first == last else None
    with warehouse.connect() as con:
        for key in marts:
            column = columns[key.path[1]]
            by_day = dict(
                con.execute(
                    f"SELECT strftime({column}, '%Y-%m-%d'), count(*) FROM marts.{key.path[1]} "
                    f"WHERE {column} BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
                    [first, last],
                ).fetchall()
            )
            yield dg.AssetObservation(
                asset_key=key,
                partition=partition,
                metadata={
                    "dagster/row_count": sum(by_day.values()),
                    "window": f"{first}...{last}",
                    "rows_by_day": dg.MetadataValue.json(by_day),
                },
            )


def mark_unpublished_marts_failed(context: dg.AssetExecutionContext) -> None:
    """A failed build publishes nothing (write-audit-publish, dbt_project.yml): the marts this step built
    as marts.<name>__audit did not reach marts.<name>, so their partitions of the window are shown failed, not
    materialized. Staging models are views over raw and need no publishing."""
    marts = [key for key in context.selected_asset_keys if key.path[0] == "marts"]
    failed_partitions.mark_partitions_failed(
        context.instance, context.run, marts, list(context.partition_keys), log=context.log
    )


def raise_build_failure(invocation: DbtCliInvocation, warehouse: DuckDBWarehouse) -> None:
    """A lock conflict is waited out as the raw step waits (the same bounded backoff, the same message
    when it does not clear), then retried; a failing model or test fails the step with its nodes."""
    log = invocation.target_path / "dbt.log"
    errors = build_errors(log.read_text().splitlines()) if log.exists() else []
    if mentions_lock_conflict([message for _, message in errors]):
        with warehouse.connect():  # returns once the other writer let go; else WarehouseLockedError
            pass
        raise dg.RetryRequested(max_retries=3)
    described = [f"{node}: {message}" if node else message for node, message in errors]
    raise dg.Failure(
        description="dbt build failed: " + ("; ".join(described) or f"see {log}")[:2000],
        metadata={"failed_nodes": dg.MetadataValue.json([node for node, _ in errors if node])},
        allow_retries=False,  # a failing model or test is not transient
    )


@dbt_assets(
    manifest=DBT_MANIFEST,
    project=DBT_PROJECT,
    # Every model and test of the project (dagster-dbt's default selection, `fqn:*`; the ephemeral models
    # are inlined, not assets): every other model follows the daily partitions, which
    # tests/test_dbt_selection.py holds. A narrower selection would need dbt-core in this process
    # (internals/dagster_dbt_without_core.py says why it is not).
    name="daily_dbt_models",
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=RANGED_BACKFILL,
    dagster_dbt_translator=TRANSLATOR,
    pool=WRITER_POOL,
)
def daily_dbt_models(
    context: dg.AssetExecutionContext, dbt: FlightdeckDbtCli, warehouse: DuckDBWarehouse
) -> Iterator[Any]:
    """Staging and marts that follow the daily partitions; dbt replaces exactly the run's window."""
    # Every daily source must exist for the marts to compile; one never loaded yet (weather before its
    # first pull) is created empty, so its columns in the marts are null rather than the run failing.
    window = window_dates(context)
    # On the DuckDB file dbt writes under the warehouse's writer lock. On a DuckLake a build is dbt's own
    # until it publishes (dbt_project/macros/generate_database_name.sql): the step holds its window's
    # locks, and the publish lock is taken when dbt is ready to publish (the gate,
    # internals/dbt_launcher.py), so builds of other windows run side by side until then. Without the
    # launcher dbt cannot be stopped there: the publish lock is taken first.
    gated = warehouse.is_lake and dbt.uses_launcher
    with warehouse.dbt_lock(context, window, publish=not gated):
        with warehouse.connect() as con:
            for dataset in DAILY_DATASETS:  # DDL that retries its own conflicts on the lake
                ensure_dataset_tables(
                    con, dataset.name, compile_model(dataset.model), dataset.partition_column
                )
            flight_events.ensure_tables(con)  # the live mart's source, before any event arrived
        publish_lock = (
            dbt_launcher.gate(lambda: warehouse.publish_lock(context), cpu_share.threads) if gated else None
        )
        yield from run_dbt_build(context, dbt, window_vars(*window), warehouse, publish_lock)


@functools.cache  # the manifest is fixed for the life of a process (make install writes it)
def mart_partition_columns() -> dict[str, str]:
    """mart name -> its date column, from the manifest (config partition_column, default flight_date)."""
    nodes = json.loads(DBT_MANIFEST.read_text())["nodes"].values()
    return {
        n["name"]: n["config"].get("partition_column") or "flight_date"
        for n in nodes
        if n["resource_type"] == "model" and n["fqn"][1] == "marts"
    }

"""raw/airlines, raw/airports, raw/planes: snapshots of the reference database, validated by pandera.

The tables are small, so pandera validates them directly (lazily, collecting every failure). Failing rows
go to quarantine.<table> with their reasons; the valid rows replace raw.<table> in one transaction
(write-then-swap). The data version is a hash of the content, so an unchanged snapshot is recognisable.
"""

import hashlib

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from assets.common import load_checks
from assets.common.policies import OWNERS, TRANSIENT_RETRY, retry_only_transient
from flightdeck import settings
from flightdeck.loader import PartitionLoad
from flightdeck.schemas import REFERENCE_SCHEMAS
from flightdeck.warehouse_ddl import ensure_reference_tables
from resources.reference_db import ReferenceDatabase
from resources.warehouse import WRITER_POOL, DuckDBWarehouse, WarehouseLockedError


def split_valid(frame: pd.DataFrame, schema: type[pa.DataFrameModel]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows coerced to the schema, failing rows with a `reasons` column)."""
    try:
        return schema.validate(frame, lazy=True), frame.iloc[0:0].assign(reasons=pd.Series(dtype=str))
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        row_cases = cases[cases["index"].notna()]
        if len(row_cases) == 0:  # a table-level problem (a missing column): nothing can load
            raise dg.Failure(f"reference table fails its schema: {exc}", allow_retries=False) from None
        reasons = (
            row_cases.assign(reason=row_cases["column"].astype(str) + ":" + row_cases["check"].astype(str))
            .groupby("index")["reason"]
            .agg(lambda r: ", ".join(sorted(set(r))))
        )
        bad = frame.loc[reasons.index].assign(reasons=reasons.values)
        return schema.validate(frame.drop(index=reasons.index)), bad


def content_version(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()[:16]


def build_reference_asset(table: str) -> dg.AssetsDefinition:
    schema = REFERENCE_SCHEMAS[table]

    @dg.asset(
        key=["raw", table],
        description=f"Snapshot of reference table `{table}`, validated by pandera {schema.__name__}.",
        group_name="raw",
        kinds={"duckdb", "sqlalchemy", "pandera"},
        owners=OWNERS,
        pool=WRITER_POOL,
        retry_policy=TRANSIENT_RETRY,
        code_version="1",
        check_specs=load_checks.check_specs(dg.AssetKey(["raw", table]), daily=False),
    )
    def reference_snapshot(
        context: dg.AssetExecutionContext, reference_db: ReferenceDatabase, warehouse: DuckDBWarehouse
    ) -> dg.MaterializeResult:
        frame = reference_db.read_table(table)
        valid, bad = split_valid(frame, schema)
        source = f"{reference_db.display_url}#{table}"
        with (
            retry_only_transient(WarehouseLockedError),
            warehouse.writer(context),
            warehouse.connect() as con,
        ):
            ensure_reference_tables(con, table)
            con.register("valid_rows", valid)
            con.register("bad_rows", bad.assign(line=bad.index + 1))
            con.execute("BEGIN TRANSACTION")
            con.execute(f"CREATE OR REPLACE TABLE raw.{table} AS SELECT * FROM valid_rows")
            con.execute(
                f"""UPDATE quarantine.{table} SET status = 'superseded', resolved_at = now(),
                    resolved_by_run_id = ? WHERE status = 'open'""",
                [context.run_id],
            )
            con.execute(
                f"""INSERT INTO quarantine.{table}
                SELECT NULL, ?, line, 'invalid', reasons,
                       to_json(struct_pack({", ".join(f'"{c}" := CAST("{c}" AS VARCHAR)' for c in frame.columns)}))::VARCHAR,
                       ?, now(), 'open', NULL, NULL
                FROM bad_rows""",
                [source, context.run_id],
            )
            con.execute("COMMIT")
        load = PartitionLoad(None, source, len(frame), len(valid), len(bad), 0)
        checks = load_checks.snapshot_results(load, float(settings.get(settings.MAX_QUARANTINE_RATE)))
        return dg.MaterializeResult(
            check_results=checks,
            metadata={
                "dagster/row_count": len(valid),
                "rows_read": len(frame),
                "rows_loaded": len(valid),
                "rows_quarantined": len(bad),
                "source": source,
            },
            data_version=dg.DataVersion(content_version(valid)),
        )

    return reference_snapshot


REFERENCE_ASSETS = [build_reference_asset(table) for table in REFERENCE_SCHEMAS]

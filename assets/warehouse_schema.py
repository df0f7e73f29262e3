"""DDL of the tables flightdeck writes itself (dbt owns staging and marts)."""

from __future__ import annotations

import duckdb

from assets.sql_validation import CompiledColumn

LINEAGE_COLUMNS = "_source_file VARCHAR, _source_line BIGINT, _run_id VARCHAR, _loaded_at TIMESTAMPTZ"

QUARANTINE_COLUMNS = """
    partition_date DATE,
    source_file VARCHAR,
    line_number BIGINT,
    kind VARCHAR,            -- 'invalid' (failed a check) or 'duplicate' (repeated natural key)
    reasons VARCHAR,         -- comma-separated failed checks, e.g. 'month:less_than_or_equal_to'
    original_values VARCHAR, -- the row as read, every value as text (JSON object or the raw line)
    run_id VARCHAR,
    quarantined_at TIMESTAMPTZ,
    status VARCHAR,          -- 'open', 'resolved' (its key loaded later) or 'superseded' (re-quarantined)
    resolved_at TIMESTAMPTZ,
    resolved_by_run_id VARCHAR
"""

LOAD_AUDIT_COLUMNS = """
    dataset VARCHAR,
    partition_date DATE,
    source_file VARCHAR,
    file_sha256 VARCHAR,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_quarantined BIGINT,
    rows_duplicate BIGINT,
    run_id VARCHAR,
    loaded_at TIMESTAMPTZ
"""


def ensure_dataset_tables(
    con: duckdb.DuckDBPyConnection, dataset: str, columns: list[CompiledColumn], partition_column: str
) -> None:
    typed = ", ".join(f'"{c.name}" {c.sql_type}' for c in columns)
    con.execute(
        "CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS quarantine; CREATE SCHEMA IF NOT EXISTS ops"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS raw.{dataset} ({typed}, {partition_column} DATE, {LINEAGE_COLUMNS})"
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS quarantine.{dataset} ({QUARANTINE_COLUMNS})")
    con.execute(f"CREATE TABLE IF NOT EXISTS ops.load_audit ({LOAD_AUDIT_COLUMNS})")

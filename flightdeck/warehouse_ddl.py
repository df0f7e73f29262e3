"""The one home of the DDL of the tables flightdeck writes itself (dbt owns staging and marts): the daily
datasets' raw and quarantine tables, the load audit, the reference snapshots' quarantine, the alert log and
the ops history tables."""

from __future__ import annotations

import duckdb

from flightdeck import lake
from flightdeck.sql_validation import CompiledColumn

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
    status VARCHAR,          -- 'open', 'resolved' (its key loaded later), 'superseded' (re-quarantined) or
                             -- 'rejected' (its partition failed a gate, so its load was held back whole)
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
    loaded_at TIMESTAMPTZ,
    outcome VARCHAR,          -- 'loaded', or 'rejected' (held back: the partition kept its previous content)
    rejected_because VARCHAR, -- why, when rejected: the failed gates or the file's problem
    rows_held_back BIGINT    -- valid rows not written because the partition was rejected
"""
# Columns added after the first release, for warehouses created before them.
LOAD_AUDIT_ADDED = ("outcome VARCHAR", "rejected_because VARCHAR", "rows_held_back BIGINT")


def ensure_dataset_tables(
    con: duckdb.DuckDBPyConnection, dataset: str, columns: list[CompiledColumn], partition_column: str
) -> None:
    # Two first loads on a DuckLake may create the same table at once: the loser's DDL runs again.
    lake.retrying_conflicts(lambda: _create_dataset_tables(con, dataset, columns, partition_column))


def _create_dataset_tables(
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
    for column in LOAD_AUDIT_ADDED:
        con.execute(f"ALTER TABLE ops.load_audit ADD COLUMN IF NOT EXISTS {column}")


def ensure_reference_tables(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """A reference snapshot's schemas and quarantine table (raw.<table> is replaced whole by each snapshot)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS quarantine")
    con.execute(f"CREATE TABLE IF NOT EXISTS quarantine.{table} ({QUARANTINE_COLUMNS})")


def ensure_history_table(con: duckdb.DuckDBPyConnection, table: str, like: str) -> None:
    """An ops history table (rows appended by name, history kept) with the columns of relation `like`."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(f"CREATE TABLE IF NOT EXISTS ops.{table} AS SELECT * FROM {like} LIMIT 0")


ALERTS_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.alerts (
    alert_id VARCHAR,       -- a uuid4, unique by construction (no PRIMARY KEY: DuckLake has no constraints)
    created_at TIMESTAMPTZ,
    kind VARCHAR,
    dedupe_key VARCHAR,
    summary VARCHAR,
    details VARCHAR,        -- JSON: job, asset, partition, step, check, error, run_url
    status VARCHAR,         -- logged (no channel), sent, failed (a channel failed; retried), suppressed
    deliveries VARCHAR,     -- JSON: channel -> 'sent' | 'failed: ...'
    attempts INTEGER,
    recovered_at TIMESTAMPTZ
)
"""

"""Validate and load a window of daily landing files into DuckDB, losing nothing.

For a window of partitions (one day, or a whole year in one ranged run):
1. in one pass, every file is scanned by DuckDB as text (no sniffing: ~27 ms a file saved) and every
   row typed and checked against the pandera model compiled to SQL, plus the partition-date rule;
   malformed lines are captured by DuckDB's reject store with their line numbers;
2. repeated natural keys keep their first line and count the others as duplicates;
3. one transaction replaces the window's partitions (delete + insert), records quarantined and
   duplicate rows with their reasons, supersedes or resolves older quarantine rows, and appends one
   `ops.load_audit` row per partition. Readers see the old partition or the new one, never a mix.

Accounting holds per partition: rows_read = rows_loaded + rows_quarantined + rows_duplicate.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandera.pandas as pa

from assets.landing import LandingFile
from assets.sql_validation import CompiledColumn, any_failure_sql, compile_model, failure_reasons_sql
from assets.warehouse_schema import ensure_dataset_tables

# Crash-safety tests (tests/test_crash_safety.py) set this to a file path: the first load to reach the
# commit writes its pid there and waits inside the open transaction, so the test can SIGKILL it mid-write.
CRASH_TEST_MARKER_ENV = "FLIGHTDECK_CRASH_TEST_MARKER"


def pause_for_crash_test() -> None:
    marker = os.environ.get(CRASH_TEST_MARKER_ENV)
    if marker and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        time.sleep(600)


@dataclass(frozen=True)
class DailyDataset:
    name: str  # table name in raw/quarantine, and the landing folder
    model: type[pa.DataFrameModel]
    partition_column: str
    partition_expr: str  # SQL over typed columns giving the row's own date (NULL when impossible)
    natural_key: tuple[str, ...]
    # Extra row rules beyond the model: (reason, SQL predicate over the text columns "<name>").
    row_rules: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PartitionLoad:
    partition_date: dt.date
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


# A row's outcome in the window's working table: one byte a row (as text it was 16; the working table is
# written and read back once per load, so each byte a row of it counts: ~5% of the 10x year's load).
OUTCOME = "ENUM('loaded', 'invalid', 'duplicate')"


def _by_format(files: list[LandingFile]) -> tuple[list[LandingFile], list[LandingFile]]:
    """The CSV files (plain or gzip), then the parquet files: the scan's order. A file's position in
    `csvs + parquets` is its `file_index` in the scan."""
    return [f for f in files if f.format != "parquet"], [f for f in files if f.format == "parquet"]


def _scan_sql(csvs: list[LandingFile], parquets: list[LandingFile], columns: list[CompiledColumn]) -> str:
    """One scan of all files, every column as text, with the file's index in `csvs + parquets`.

    The index, not the name: a name per row is a string to carry through every later step, 3.4M times on
    the 10x year; the index is an integer, and the file's name and date are looked up by it.
    """
    names = [c.name for c in columns]
    text_cols = ", ".join(f'{c.scan_expr} AS "{c.name}"' for c in columns)
    parts = []
    if csvs:
        paths = ", ".join(f"'{f.path}'" for f in csvs)
        declared = ", ".join(f"'{n}': 'VARCHAR'" for n in names)
        parts.append(
            f"SELECT {text_cols}, file_index::INTEGER AS file_index FROM read_csv([{paths}], "
            f"columns={{{declared}}}, header=true, auto_detect=false, delim=',', quote='\"', escape='\"', "
            f"ignore_errors=true, store_rejects=true, "
            f"rejects_table='_rejects', rejects_scan='_reject_scans', compression='auto')"
        )
    if parquets:
        paths = ", ".join(f"'{f.path}'" for f in parquets)
        cols = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' for n in names)
        parts.append(
            f"SELECT {text_cols}, file_index FROM (SELECT {cols}, file_index::INTEGER + {len(csvs)} AS file_index "
            f"FROM read_parquet([{paths}]))"
        )
    return " UNION ALL ".join(parts)


def load_window(
    con: duckdb.DuckDBPyConnection,
    dataset: DailyDataset,
    files: list[LandingFile],
    window: tuple[dt.date, dt.date],
    run_id: str,
) -> list[PartitionLoad]:
    """Load `files` (already contract-checked) replacing every partition of the inclusive `window`."""
    columns = compile_model(dataset.model)
    names = [c.name for c in columns]
    ensure_dataset_tables(con, dataset.name, columns, dataset.partition_column)
    part = dataset.partition_column

    csvs, parquets = _by_format(files)
    files = csvs + parquets
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _files (file_index INTEGER, filename VARCHAR, file_date DATE, sha256 VARCHAR)"
    )
    con.executemany(
        "INSERT INTO _files VALUES (?, ?, ?, ?)",
        [(i, str(f.path), f.partition_date, f.sha256) for i, f in enumerate(files)],
    )
    # A file's date by its index, in the scan's own projection (a join there would not keep row order).
    file_dates = "[" + ", ".join(f"DATE '{f.partition_date}'" for f in files) + "]"
    typed_cols = ", ".join(f"{c.typed_expr} AS {c.typed_name}" for c in columns)
    # The row's own date, from its typed columns (partition_expr has {column} placeholders).
    row_date = dataset.partition_expr.format(**{c.name: c.typed_name for c in columns})
    row_checks = [
        (f"{part}:invalid_date", f"{row_date} IS NULL"),
        (f"{part}:not_partition_date", f"COALESCE({row_date} <> file_date, false)"),
        *dataset.row_rules,
    ]
    invalid = any_failure_sql(columns, row_checks)
    reasons = failure_reasons_sql(columns, row_checks)
    as_text = ", ".join(f'"{c.name}" := {c.text}' for c in columns)
    typed_out = ", ".join(f'{c.typed_name} AS "{c.name}"' for c in columns)
    # One pass: scan every file as text, type and check each row, keep the typed row. A scan, projections
    # and UNION ALL keep the files' row order (no join here), so the table's rowid follows the lines.
    # Reasons and original values are built only for invalid rows: most rows are valid, and building a
    # list per row costs more than all the checks themselves. The file's date serves the checks only; the
    # few rows that need it later (quarantined ones) look it up by file_index.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _classified AS
        WITH scanned AS ({_scan_sql(csvs, parquets, columns)}),
        typed AS (SELECT *, {file_dates}[file_index + 1] AS file_date, {typed_cols} FROM scanned),
        checked AS (SELECT *, {row_date} AS _date, {invalid} AS _invalid FROM typed)
        SELECT {typed_out}, _date, file_index,
               CASE WHEN _invalid THEN {reasons} END AS reasons,
               CASE WHEN _invalid THEN to_json(struct_pack({as_text}))::VARCHAR END AS original_values,
               CAST(CASE WHEN _invalid THEN 'invalid' ELSE 'loaded' END AS {OUTCOME}) AS outcome
        FROM checked"""
    )
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_rejects'").fetchone()[0]:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _rejects (file_id UBIGINT, line UBIGINT, csv_line VARCHAR, error_message VARCHAR)"
        )
        con.execute("CREATE OR REPLACE TEMP TABLE _reject_scans (file_id UBIGINT, file_path VARCHAR)")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _malformed AS
           SELECT f.file_index, r.line::BIGINT AS line_number, r.csv_line, r.error_message,
                  row_number() OVER (PARTITION BY f.file_index ORDER BY r.line) - 1 AS nth
           FROM _rejects r JOIN _reject_scans s USING (file_id) JOIN _files f ON f.filename = s.file_path"""
    )
    # A row's ordinal in its file is its rowid minus its file's first rowid (files are scanned one after
    # another): a hash join, where row_number() would sort the whole window. Its line = ordinal + 1
    # (header) + the malformed lines before it; parquet has no lines, there it is the ordinal + 1 too.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _first_rows AS SELECT file_index, filename, file_date, first_rowid "
        "FROM (SELECT file_index, min(rowid) AS first_rowid FROM _classified GROUP BY file_index) "
        "JOIN _files USING (file_index)"
    )
    ordinal = "(c.rowid - fr.first_rowid + 1)"
    line_number = f"{ordinal} + 1"
    if con.execute("SELECT count(*) FROM _malformed").fetchone()[0]:
        line_number += (
            " + (SELECT count(*) FROM _malformed m"
            f" WHERE m.file_index = c.file_index AND m.line_number - 2 - m.nth < {ordinal})"
        )
    numbered = (
        f"(SELECT c.*, fr.filename, fr.file_date, {line_number} AS line_number "
        "FROM _classified c JOIN _first_rows fr USING (file_index))"
    )
    # Among valid rows, the first line of each natural key wins; later repeats are duplicates. Only the
    # keys seen more than once (a hash aggregate finds them) are ordered, not the whole window. The key
    # columns are required by the models, so a valid row's key has no NULL and plain equality matches.
    key = ", ".join(f'"{k}"' if k != part else "_date" for k in dataset.natural_key)
    con.execute(
        f"""UPDATE _classified SET outcome = 'duplicate' WHERE rowid IN (
            SELECT rowid FROM (
                SELECT c.rowid, row_number() OVER (PARTITION BY {key} ORDER BY c.rowid) AS nth
                FROM _classified c SEMI JOIN (
                    SELECT {key} FROM _classified WHERE outcome = 'loaded' GROUP BY ALL HAVING count(*) > 1
                ) USING ({key})
                WHERE c.outcome = 'loaded')
            WHERE nth > 1)"""
    )
    start, end = window
    typed_as_text = ", ".join(f'"{n}" := CAST("{n}" AS VARCHAR)' for n in names)
    select_cols = ", ".join(f'"{n}"' for n in names)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM raw.{dataset.name} WHERE {part} BETWEEN ? AND ?", [start, end])
        con.execute(
            f"""INSERT INTO raw.{dataset.name}
            SELECT {select_cols}, _date, filename, line_number, ?, now() FROM {numbered}
            WHERE outcome = 'loaded'""",
            [run_id],
        )
        # Earlier open quarantine rows of these partitions: resolved when their line (a corrected file)
        # or their natural key (a corrected row elsewhere) loads now, otherwise superseded by this load's own quarantine rows. Open rows are thus always one load's.
        key_match = " AND ".join(
            f"json_extract_string(q.original_values, '{k}') = CAST(r.\"{k}\" AS VARCHAR)"
            for k in dataset.natural_key
            if k != part
        )
        con.execute(
            f"""UPDATE quarantine.{dataset.name} q
            SET status = CASE WHEN q.kind = 'invalid' AND EXISTS (
                    SELECT 1 FROM raw.{dataset.name} r WHERE r.{part} = q.partition_date AND (
                        (r._source_file = q.source_file AND r._source_line = q.line_number) OR ({key_match}))
                ) THEN 'resolved' ELSE 'superseded' END,
                resolved_at = now(), resolved_by_run_id = ?
            WHERE q.status = 'open' AND q.partition_date BETWEEN ? AND ?""",
            [run_id, start, end],
        )
        con.execute(
            f"""INSERT INTO quarantine.{dataset.name}
            SELECT file_date, filename, line_number, outcome, COALESCE(array_to_string(reasons, ', '), ''),
                   COALESCE(original_values, to_json(struct_pack({typed_as_text}))::VARCHAR),
                   ?, now(), 'open', NULL, NULL
            FROM {numbered} WHERE outcome <> 'loaded'
            UNION ALL
            SELECT f.file_date, f.filename, m.line_number, 'invalid', 'malformed_line: ' || m.error_message,
                   m.csv_line, ?, now(), 'open', NULL, NULL
            FROM _malformed m JOIN _files f USING (file_index)""",
            [run_id, run_id],
        )
        # One audit row per partition, counted in the same statement that records it.
        audited = con.execute(
            """INSERT INTO ops.load_audit
               WITH malformed AS (SELECT file_index, count(*) AS n FROM _malformed GROUP BY file_index)
               SELECT ?, f.file_date, f.filename, f.sha256,
                      count(c.outcome) + COALESCE(any_value(m.n), 0),
                      count(*) FILTER (c.outcome = 'loaded'),
                      count(*) FILTER (c.outcome = 'invalid') + COALESCE(any_value(m.n), 0),
                      count(*) FILTER (c.outcome = 'duplicate'),
                      ?, now()
               FROM _files f LEFT JOIN malformed m USING (file_index) LEFT JOIN _classified c USING (file_index)
               GROUP BY f.file_index, f.file_date, f.filename, f.sha256
               RETURNING partition_date, source_file, rows_read, rows_loaded, rows_quarantined, rows_duplicate""",
            [dataset.name, run_id],
        ).fetchall()
        results = [PartitionLoad(*row) for row in sorted(audited)]
        pause_for_crash_test()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return results

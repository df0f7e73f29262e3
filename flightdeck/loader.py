"""Validate and load a window of daily landing files into DuckDB, losing nothing.

For a window of partitions (one day, or a whole year in one ranged run):
1. in one pass, every file is scanned by DuckDB as text (no sniffing: ~27 ms a file saved) and every
   row typed and checked against the pandera model compiled to SQL, plus the partition-date rule (a
   month of files per statement while the step shares the host's cores with others, `_classify`);
   malformed lines are captured by DuckDB's reject store with their line numbers;
2. repeated natural keys keep their first line and count the others as duplicates;
3. every partition is counted and gated on its own (reconciliation, quarantine rate, volume against
   its trailing median); a partition that fails a blocking gate, or whose file could not be read, is
   held back whole: it keeps its previous content, its rows are recorded with status 'rejected';
4. one transaction replaces the accepted partitions (delete + insert), records quarantined and
   duplicate rows with their reasons, supersedes or resolves older quarantine rows, and appends one
   `ops.load_audit` row per partition of the window with its outcome. Readers see the old partition or
   the new one, never a mix.

Accounting holds per partition: rows_read = rows_loaded + rows_quarantined + rows_duplicate. One bad
day never holds back the others: the window's work stays one vectorised pass whatever is rejected.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandera.pandas as pa

from flightdeck import cpu_share, lake
from flightdeck.landing import LandingFile
from flightdeck.sql_validation import CompiledColumn, any_failure_sql, compile_model, failure_reasons_sql
from flightdeck.warehouse_ddl import ensure_dataset_tables

# Crash-safety tests (tests/test_crash_safety.py) set this to a file path: the first load to reach the
# commit writes its pid there and waits inside the open transaction, so the test can SIGKILL it mid-write.
CRASH_TEST_MARKER_ENV = "FLIGHTDECK_CRASH_TEST_MARKER"


def pause_for_crash_test() -> None:
    marker = os.environ.get(CRASH_TEST_MARKER_ENV)
    if marker and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        time.sleep(600)


# Gate names, as the asset checks that report them are named (assets/common/load_checks.py).
RECONCILES = "rows_reconcile"
QUARANTINE_RATE = "quarantine_rate_below_threshold"
VOLUME = "volume_within_expected_range"
# The volume gate needs this many earlier days with rows before it judges a day.
MIN_HISTORY_DAYS = 3
# A partition whose file could not be used at all (missing, broken contract, unreadable).
FILE_PROBLEM = "landing_file"


@dataclass(frozen=True)
class DailyDataset:
    name: str  # table name in raw/quarantine, and the landing folder
    model: type[pa.DataFrameModel]
    partition_column: str
    partition_expr: str  # SQL over typed columns giving the row's own date (NULL when impossible)
    natural_key: tuple[str, ...]
    # Extra row rules beyond the model: (reason, SQL predicate over the text columns "<name>").
    row_rules: tuple[tuple[str, str], ...] = ()
    # What the catalog shows and how each load is judged: its raw asset is built from these alone
    # (assets/common/daily_raw.py).
    description: str = ""
    key_columns: tuple[str, ...] = ()  # their null rates are reported with every load
    max_quarantine_rate_setting: str = "FLIGHTDECK_MAX_QUARANTINE_RATE"
    blocking_gates: frozenset[str] = frozenset({RECONCILES, QUARANTINE_RATE, VOLUME})
    kinds: frozenset[str] = frozenset({"duckdb", "pandera"})
    # Its files are pushed to landing/<name>/ (the asset reads them); False: the asset fetches them.
    pushed: bool = True


@dataclass(frozen=True)
class Gates:
    """The per-partition gates of a load. A gate in `blocking` holds a failing partition back; the
    others are reported only (weather's volume: a day without observations must not block flights)."""

    max_quarantine_rate: float
    min_volume_fraction: float
    blocking: frozenset[str] = frozenset({RECONCILES, QUARANTINE_RATE, VOLUME})


@dataclass(frozen=True)
class PartitionLoad:
    """One partition's own figures in a load, and whether it was loaded or held back (and why)."""

    partition_date: dt.date
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    rows_held_back: int = 0  # valid rows not written because their partition was held back
    schema_failures: int = 0
    null_rates: dict[str, float] = field(default_factory=dict)
    # gate name -> what failed, for every gate the partition failed (blocking or not), and FILE_PROBLEM
    failed_gates: dict[str, str] = field(default_factory=dict)
    rejected: bool = False
    rows_kept: int = 0  # rows the partition holds after the load (its previous content when rejected)

    @property
    def reconciles(self) -> bool:
        accounted = self.rows_loaded + self.rows_quarantined + self.rows_duplicate + self.rows_held_back
        return self.rows_read == accounted

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def duplicate_rate(self) -> float:
        return self.rows_duplicate / self.rows_read if self.rows_read else 0.0

    @property
    def rejected_because(self) -> str:
        return "; ".join(f"{gate}: {why}" for gate, why in self.failed_gates.items()) if self.rejected else ""


def row_gate_failures(load: PartitionLoad, gates: Gates) -> dict[str, str]:
    """The gates a partition's own row counts fail (the volume gate also needs other days), with why."""
    failed = {}
    if not load.reconciles:
        failed[RECONCILES] = (
            f"{load.rows_read} read != {load.rows_loaded} loaded + {load.rows_quarantined} quarantined"
            f" + {load.rows_duplicate} duplicate"
        )
    if load.quarantine_rate > gates.max_quarantine_rate:
        failed[QUARANTINE_RATE] = (
            f"quarantine rate above {gates.max_quarantine_rate:.2%}: "
            f"{load.rows_quarantined} of {load.rows_read} rows ({load.quarantine_rate:.2%})"
        )
    return failed


# A row's outcome in the window's working table: one byte a row (as text it was 16; the working table is
# written and read back once per load, so each byte a row of it counts: ~5% of the 10x year's load).
OUTCOME = "ENUM('loaded', 'invalid', 'duplicate')"


def _by_format(files: list[LandingFile]) -> tuple[list[LandingFile], list[LandingFile]]:
    """The CSV files (plain or gzip), then the parquet files: the scan's order. A file's position in
    `csvs + parquets` is its `file_index` in the scan."""
    return [f for f in files if f.format != "parquet"], [f for f in files if f.format == "parquet"]


def _paths(files: list[LandingFile]) -> str:
    """A DuckDB list of the files' paths."""
    return "[" + ", ".join(f"'{f.path}'" for f in files) + "]"


def _scan_sql(
    csvs: list[LandingFile], parquets: list[LandingFile], columns: list[CompiledColumn], first_index: int = 0
) -> str:
    """One scan of all files, every column as text, with the file's index in `csvs + parquets` plus
    `first_index` (the scan's first file's index in the window, when the window is scanned in chunks).

    The index, not the name: a name per row is a string to carry through every later step, 3.4M times on
    the 10x year; the index is an integer, and the file's name and date are looked up by it.
    """
    names = [c.name for c in columns]
    text_cols = ", ".join(f'{c.scan_expr} AS "{c.name}"' for c in columns)
    parts = []
    if csvs:
        declared = ", ".join(f"'{n}': 'VARCHAR'" for n in names)
        options = (
            f"columns={{{declared}}}, header=true, auto_detect=false, delim=',', quote='\"', escape='\"', "
            "ignore_errors=true, store_rejects=true, rejects_table='_rejects', rejects_scan='_reject_scans', "
            "compression='auto'"
        )
        parts.append(
            f"SELECT {text_cols}, file_index::INTEGER + {first_index} AS file_index "
            f"FROM read_csv({_paths(csvs)}, {options})"
        )
    if parquets:
        as_text = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' for n in names)
        offset = f"file_index::INTEGER + {first_index + len(csvs)} AS file_index"  # after the CSVs'
        parts.append(
            f"SELECT {text_cols}, file_index FROM (SELECT {as_text}, {offset} FROM read_parquet({_paths(parquets)}))"
        )
    return " UNION ALL ".join(parts)


# Files per statement of a window's scan while this process shares the host's cores with other steps
# (flightdeck/cpu_share.py): DuckDB's threads can change only between statements, so a year's scan in one
# statement would keep the share it started with for its whole length, all the cores if it started first.
SHARED_SCAN_CHUNK_FILES = 31


def _classify(
    con: duckdb.DuckDBPyConnection,
    dataset: DailyDataset,
    columns: list[CompiledColumn],
    files: list[LandingFile],
) -> None:
    """The one pass: `_classified` holds every row of `files` (CSVs first, as `_by_format` orders them),
    typed and checked, in the files' order. One statement, or chunks of files in order while this
    process shares the host's cores, each with the threads its share gives at its start."""
    _forget_rejects(con)
    chunk = len(files) if cpu_share.threads() is None else SHARED_SCAN_CHUNK_FILES
    for start in range(0, len(files), chunk):
        cpu_share.fit_threads(con)
        select = _classify_sql(dataset, columns, files, start, start + chunk)
        # Appended in order: rowids keep following the lines, chunk after chunk.
        into = "CREATE OR REPLACE TEMP TABLE _classified AS " if start == 0 else "INSERT INTO _classified "
        con.execute(into + select)


def _forget_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """Drop DuckDB's reject store: it keeps every scan's malformed lines for the connection's life, and
    only the window's own scan may count (a failed scan and the probes after it saw them too)."""
    con.execute("DROP TABLE IF EXISTS _rejects")
    con.execute("DROP TABLE IF EXISTS _reject_scans")


def _classify_sql(
    dataset: DailyDataset, columns: list[CompiledColumn], files: list[LandingFile], first: int, end: int
) -> str:
    """The SELECT that scans `files[first:end]` as text, types and checks each row, keeps the typed row."""
    part = dataset.partition_column
    csvs, parquets = _by_format(files[first:end])
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
    # A scan, projections and UNION ALL keep the files' row order (no join here), so the table's rowid
    # follows the lines. Reasons and original values are built only for invalid rows: most rows are
    # valid, and building a list per row costs more than all the checks themselves. The file's date
    # serves the checks only; the few rows that need it later (quarantined ones) look it up by file_index.
    return f"""SELECT * FROM (
        WITH scanned AS ({_scan_sql(csvs, parquets, columns, first)}),
        typed AS (SELECT *, {file_dates}[file_index + 1] AS file_date, {typed_cols} FROM scanned),
        checked AS (SELECT *, {row_date} AS _date, {invalid} AS _invalid FROM typed)
        SELECT {typed_out}, _date, file_index,
               CASE WHEN _invalid THEN {reasons} END AS reasons,
               CASE WHEN _invalid THEN to_json(struct_pack({as_text}))::VARCHAR END AS original_values,
               CAST(CASE WHEN _invalid THEN 'invalid' ELSE 'loaded' END AS {OUTCOME}) AS outcome
        FROM checked)"""


def _unreadable_files(
    con: duckdb.DuckDBPyConnection, files: list[LandingFile], columns: list[CompiledColumn]
) -> dict[LandingFile, str]:
    """The files DuckDB cannot read to the end, each with its error; asked only after the window's scan
    failed, so a clean window never pays for it."""
    broken = {}
    for f in files:
        csvs, parquets = _by_format([f])
        try:
            # Materialized, so every column of every row is really read (a count could skip them).
            con.execute(f"CREATE OR REPLACE TEMP TABLE _probe AS {_scan_sql(csvs, parquets, columns)}")
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            broken[f] = str(exc).splitlines()[0][:500]
    con.execute("DROP TABLE IF EXISTS _probe")
    return broken


def load_window(
    con: duckdb.DuckDBPyConnection,
    dataset: DailyDataset,
    files: list[LandingFile],
    window: tuple[dt.date, dt.date],
    run_id: str,
    gates: Gates,
    key_columns: list[str] = (),
    file_problems: dict[dt.date, tuple[str, str]] | None = None,
    on_unreadable: Callable[[LandingFile, str], str] | None = None,
    commit_lock: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> list[PartitionLoad]:
    """Load `files` (already contract-checked) into the partitions of the inclusive `window`.

    Returns one PartitionLoad per day of the window, in date order. `file_problems` holds the days whose
    file could not be used at all (date -> (source, problem)): they are held back and audited too.
    `on_unreadable(file, error)` is told of a file that passed the contract but cannot be read to the end
    (and returns how it was quarantined); that day is held back like the others. `commit_lock()` is held
    from the gates to the commit (the scan and the checks before it run without it).
    """
    columns = compile_model(dataset.model)
    names = [c.name for c in columns]
    ensure_dataset_tables(con, dataset.name, columns, dataset.partition_column)  # retries conflicts itself
    part = dataset.partition_column
    problems = dict(file_problems or {})

    csvs, parquets = _by_format(files)
    if files:
        try:
            _classify(con, dataset, columns, csvs + parquets)
        except duckdb.InterruptException:
            raise
        except duckdb.Error:
            # One unreadable file must not hold back the window: find it, hold its day back, scan the rest.
            broken = _unreadable_files(con, files, columns)
            if not broken:
                raise
            for f, error in broken.items():
                described = on_unreadable(f, error) if on_unreadable else error
                problems[f.partition_date] = (str(f.path), f"unreadable: {described}")
            csvs, parquets = _by_format([f for f in files if f not in broken])
            if csvs or parquets:
                _classify(con, dataset, columns, csvs + parquets)
    files = csvs + parquets
    if not files:  # nothing readable in the window: a working table of the right shape, with no rows
        _forget_rejects(con)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _classified AS SELECT "
            + ", ".join(f'NULL::{c.sql_type} AS "{c.name}"' for c in columns)
            + f", NULL::DATE AS _date, NULL::INTEGER AS file_index, NULL::VARCHAR[] AS reasons, "
            f"NULL::VARCHAR AS original_values, NULL::{OUTCOME} AS outcome WHERE false"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _files (file_index INTEGER, filename VARCHAR, file_date DATE, sha256 VARCHAR)"
    )
    if files:
        _insert_rows(
            con,
            "INSERT INTO _files VALUES",
            [(i, str(f.path), f.partition_date, f.sha256) for i, f in enumerate(files)],
        )
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_rejects'").fetchone()[0]:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _malformed AS
               SELECT f.file_index, r.line::BIGINT AS line_number, r.csv_line, r.error_message,
                      row_number() OVER (PARTITION BY f.file_index ORDER BY r.line) - 1 AS nth
               FROM _rejects r JOIN _reject_scans s USING (scan_id, file_id)
               JOIN _files f ON f.filename = s.file_path"""
        )
    else:  # no CSV scanned, no reject store (not made here: a later scan refuses a store it did not make)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _malformed (file_index INTEGER, line_number BIGINT, "
            "csv_line VARCHAR, error_message VARCHAR, nth BIGINT)"
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
    # Among valid rows, the first line of each natural key wins; later repeats are duplicates. The keys
    # seen more than once (a hash aggregate) are found first: most windows have none, and then the second
    # pass over the window's rows, which orders only those keys' rows, is not run at all. The key columns
    # are required by the models, so a valid row's key has no NULL and plain equality matches.
    key = ", ".join(f'"{k}"' if k != part else "_date" for k in dataset.natural_key)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _repeated_keys AS
            SELECT {key} FROM _classified WHERE outcome = 'loaded' GROUP BY ALL HAVING count(*) > 1"""
    )
    if con.execute("SELECT count(*) FROM _repeated_keys").fetchone()[0]:
        con.execute(
            f"""UPDATE _classified SET outcome = 'duplicate' WHERE rowid IN (
                SELECT rowid FROM (
                    SELECT c.rowid, row_number() OVER (PARTITION BY {key} ORDER BY c.rowid) AS nth
                    FROM _classified c SEMI JOIN _repeated_keys USING ({key})
                    WHERE c.outcome = 'loaded')
                WHERE nth > 1)"""
        )

    def gate_and_write() -> dict[dt.date, PartitionLoad]:
        cpu_share.fit_threads(con)  # the others working now, once this writer's turn came
        loads = _count_and_gate(con, dataset, files, window, gates, list(key_columns), problems)
        accepted = [load.partition_date for load in loads.values() if not load.rejected]
        # The accepted partitions as literals: a constant list filters the window's rows without a join (a
        # semi-join here cost a third of the 10x year's insert); when every day passed, no filter at all.
        everything = len(accepted) == len(loads)
        accepted_dates = "(" + ", ".join(f"DATE '{d}'" for d in accepted or [dt.date.min]) + ")"
        indexes = [i for i, f in enumerate(files) if f.partition_date in set(accepted)]
        accepted_files = "(" + ", ".join(str(i) for i in indexes or [-1]) + ")"
        only_accepted = "" if everything else f" AND file_index IN {accepted_files}"

        typed_as_text = ", ".join(f'"{n}" := CAST("{n}" AS VARCHAR)' for n in names)
        select_cols = ", ".join(f'"{n}"' for n in names)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM raw.{dataset.name} WHERE {part} IN {accepted_dates}")
            con.execute(
                f"""INSERT INTO raw.{dataset.name}
                SELECT {select_cols}, _date, filename, line_number, ?, now() FROM {numbered}
                WHERE outcome = 'loaded'{only_accepted}""",
                [run_id],
            )
            # Earlier open quarantine rows of the accepted partitions: resolved when their line (a corrected
            # file) or their natural key (a corrected row elsewhere) loads now, otherwise superseded by this
            # load's own quarantine rows. Open rows are thus always those of the load a partition holds; a
            # held-back partition keeps its open rows, and this load's rows of it are recorded as 'rejected'.
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
                WHERE q.status IN ('open', 'rejected') AND q.partition_date IN {accepted_dates}""",
                [run_id],
            )
            status = (
                "'open'"
                if everything
                else f"CASE WHEN file_index IN {accepted_files} THEN 'open' ELSE 'rejected' END"
            )
            con.execute(
                f"""INSERT INTO quarantine.{dataset.name}
                SELECT file_date, filename, line_number, outcome, COALESCE(array_to_string(reasons, ', '), ''),
                       COALESCE(original_values, to_json(struct_pack({typed_as_text}))::VARCHAR),
                       ?, now(), {status}, NULL, NULL
                FROM {numbered} WHERE outcome <> 'loaded'
                UNION ALL
                SELECT f.file_date, f.filename, m.line_number, 'invalid', 'malformed_line: ' || m.error_message,
                       m.csv_line, ?, now(), {status.replace("file_index", "m.file_index")}, NULL, NULL
                FROM _malformed m JOIN _files f USING (file_index)""",
                [run_id, run_id],
            )
            sha = {f.partition_date: f.sha256 for f in files}
            _insert_rows(
                con,
                """INSERT INTO ops.load_audit (dataset, partition_date, source_file, file_sha256, rows_read,
                       rows_loaded, rows_quarantined, rows_duplicate, run_id, outcome, rejected_because,
                       rows_held_back, loaded_at)
                   SELECT *, now() FROM (VALUES""",
                [
                    (
                        dataset.name,
                        load.partition_date,
                        load.source_file,
                        sha.get(load.partition_date),
                        load.rows_read,
                        load.rows_loaded,
                        load.rows_quarantined,
                        load.rows_duplicate,
                        run_id,
                        "rejected" if load.rejected else "loaded",
                        load.rejected_because or None,
                        load.rows_held_back,
                    )
                    for load in loads.values()
                ],
                suffix=")",
            )
            pause_for_crash_test()
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise
        return loads

    # On a DuckLake the commit may lose to another writer's (lake.retrying_conflicts): the window is gated
    # again against what that one committed and written again, its typed rows still in the working tables.
    with commit_lock():  # on a DuckLake, writers of this table one at a time (lake.commit_lock)
        loads = lake.retrying_conflicts(gate_and_write)
    return [loads[day] for day in sorted(loads)]


def _count_and_gate(
    con: duckdb.DuckDBPyConnection,
    dataset: DailyDataset,
    files: list[LandingFile],
    window: tuple[dt.date, dt.date],
    gates: Gates,
    key_columns: list[str],
    problems: dict[dt.date, tuple[str, str]],
) -> dict[dt.date, PartitionLoad]:
    """Each partition's own figures from the working table, and the gates it fails, before anything is
    written: a partition that fails a blocking gate is held back, the others load."""
    part = dataset.partition_column
    nulls = "".join(
        f', avg(("{c}" IS NULL)::INT) FILTER (outcome = \'loaded\') AS "null_{c}"' for c in key_columns
    )
    # Schema failures: rows whose values do not have the declared type or whose line has the wrong shape.
    wrong_type = "len(list_filter(reasons, lambda r: r LIKE '%:wrong_type')) > 0"
    rows = con.execute(
        f"""WITH malformed AS (SELECT file_index, count(*) AS n FROM _malformed GROUP BY file_index),
            counts AS (
                SELECT file_index, count(*) AS n,
                       count(*) FILTER (outcome = 'loaded') AS loaded,
                       count(*) FILTER (outcome = 'invalid') AS invalid,
                       count(*) FILTER (outcome = 'duplicate') AS duplicate,
                       count(*) FILTER (outcome = 'invalid' AND {wrong_type}) AS wrong_type{nulls}
                FROM _classified GROUP BY file_index)
            SELECT f.file_date, f.filename,
                   COALESCE(c.n, 0) + COALESCE(m.n, 0), COALESCE(c.loaded, 0),
                   COALESCE(c.invalid, 0) + COALESCE(m.n, 0), COALESCE(c.duplicate, 0),
                   COALESCE(c.wrong_type, 0) + COALESCE(m.n, 0)
                   {"".join(f', COALESCE(c."null_{c}", 0.0)' for c in key_columns)}
            FROM _files f LEFT JOIN counts c USING (file_index) LEFT JOIN malformed m USING (file_index)"""
    ).fetchall()
    loads: dict[dt.date, PartitionLoad] = {}
    for day, source, read, loaded, quarantined, duplicate, schema_failures, *null_rates in rows:
        load = PartitionLoad(
            day,
            source,
            read,
            loaded,
            quarantined,
            duplicate,
            schema_failures=schema_failures,
            null_rates=dict(zip(key_columns, (float(r) for r in null_rates), strict=True)),
        )
        failed = row_gate_failures(load, gates)
        loads[day] = load if not failed else _with_failures(load, failed, gates)
    for day, why in _low_volume(con, dataset, window, loads, gates.min_volume_fraction).items():
        loads[day] = _with_failures(loads[day], {**loads[day].failed_gates, VOLUME: why}, gates)
    for day, (source, problem) in problems.items():
        loads[day] = PartitionLoad(
            day, source, 0, 0, 0, 0, failed_gates={FILE_PROBLEM: problem}, rejected=True
        )
    # What each partition holds now: the new rows, or (held back) the rows it already had.
    held_back = [day for day, load in loads.items() if load.rejected]
    kept = (
        dict(
            con.execute(
                f"SELECT {part}, count(*) FROM raw.{dataset.name} WHERE {part} IN "
                f"({', '.join(f'DATE {chr(39)}{d}{chr(39)}' for d in held_back)}) GROUP BY ALL"
            ).fetchall()
        )
        if held_back
        else {}
    )
    return {
        day: replace(load, rows_loaded=0, rows_held_back=load.rows_loaded, rows_kept=kept.get(day, 0))
        if load.rejected
        else replace(load, rows_kept=load.rows_loaded)
        for day, load in loads.items()
    }


def _with_failures(load: PartitionLoad, failed: dict[str, str], gates: Gates) -> PartitionLoad:
    return replace(load, failed_gates=failed, rejected=any(g in gates.blocking for g in failed))


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Undo the open transaction, if any. A failed COMMIT (a full disk) has already ended it: the
    ROLLBACK's own "no transaction is active" must not replace the error that says why."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _insert_rows(con: duckdb.DuckDBPyConnection, head: str, rows: list[tuple], suffix: str = "") -> None:
    """`head` VALUES for every row, in one statement: DuckDB's executemany runs a statement per row,
    which for a year's 365 partitions costs more than the rest of their bookkeeping."""
    if not rows:
        return
    placeholders = "(" + ", ".join("?" * len(rows[0])) + ")"
    con.execute(f"{head} {', '.join([placeholders] * len(rows))}{suffix}", [v for row in rows for v in row])


def _low_volume(
    con: duckdb.DuckDBPyConnection,
    dataset: DailyDataset,
    window: tuple[dt.date, dt.date],
    loads: dict[dt.date, PartitionLoad],
    min_fraction: float,
) -> dict[dt.date, str]:
    """Days of this load with fewer rows than `min_fraction` x the median of the 7 days before them;
    the history is raw's own before the window, and this load's counts inside it."""
    part = dataset.partition_column
    con.execute("CREATE OR REPLACE TEMP TABLE _day_rows (on_date DATE, n BIGINT)")
    if loads:
        _insert_rows(con, "INSERT INTO _day_rows VALUES", [(d, x.rows_loaded) for d, x in loads.items()])
    rows = con.execute(
        f"""WITH days AS (
                SELECT d::DATE AS on_date FROM generate_series(?::DATE - 7, ?::DATE, INTERVAL 1 DAY) t(d)
            ),
            before AS (
                SELECT {part} AS on_date, count(*) AS n FROM raw.{dataset.name}
                WHERE {part} BETWEEN ?::DATE - 7 AND ?::DATE - 1 GROUP BY ALL
            ),
            counts AS (
                SELECT on_date, COALESCE(w.n, b.n, 0) AS n, w.n IS NOT NULL AS loaded_now
                FROM days LEFT JOIN _day_rows w USING (on_date) LEFT JOIN before b USING (on_date)
            ),
            history AS (
                SELECT on_date, n, loaded_now,
                       median(n) FILTER (WHERE n > 0) OVER w AS median_n,
                       count(*) FILTER (WHERE n > 0) OVER w AS history_days
                FROM counts WINDOW w AS (ORDER BY on_date ROWS BETWEEN 7 PRECEDING AND 1 PRECEDING)
            )
            SELECT on_date, n, median_n FROM history
            WHERE loaded_now AND history_days >= ? AND n < ? * median_n
            ORDER BY on_date""",
        [window[0], window[1], window[0], window[0], MIN_HISTORY_DAYS, min_fraction],
    ).fetchall()
    return {
        day: f"low volume: {n} rows, below {min_fraction:g} x the trailing 7-day median of {median:.0f}"
        for day, n, median in rows
    }

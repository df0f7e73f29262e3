"""The bad-input catalogue: every file-level and row-level case, each quarantined with its reason."""

import gzip
import hashlib
import json
import shutil

import pytest

from flightdeck import cpu_share, loader
from tests.loading import corrupt_parquet, csv_lines, ingest, ingest_window, set_field, write_lines

DAY = "2013-01-02"


def sidecars(env):
    return [json.loads(p.read_text()) for p in sorted((env.quarantine / "flights").glob("*.reason.json"))]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rewrite_header(env, transform):
    lines = csv_lines(env, DAY)
    write_lines(env, DAY, [transform(lines[0]), *lines[1:]])


FILE_CASES = {
    "missing_column": (lambda env: _rewrite_header(env, lambda h: h.replace(",tailnum", "")), "bad_columns"),
    "extra_column": (lambda env: _rewrite_header(env, lambda h: h + ",gate"), "bad_columns"),
    "renamed_column": (
        lambda env: _rewrite_header(env, lambda h: h.replace("dep_delay", "departure_delay")),
        "bad_columns",
    ),
    "wrong_delimiter": (
        lambda env: write_lines(env, DAY, [line.replace(",", ";") for line in csv_lines(env, DAY)]),
        "bad_delimiter",
    ),
    "bad_encoding": (
        lambda env: env.landing_file(DAY).write_bytes(
            env.landing_file(DAY).read_bytes().replace(b"UA", "Ü".encode("latin-1") + b"A", 1)
        ),
        "bad_encoding",
    ),
    "zero_bytes": (lambda env: env.landing_file(DAY).write_bytes(b""), "empty_file"),
    "header_only": (lambda env: write_lines(env, DAY, csv_lines(env, DAY)[:1]), "no_data_rows"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_bad_file_is_quarantined_with_reason_and_only_its_day_is_held_back(env, case):
    corrupt, reason = FILE_CASES[case]
    corrupt(env)
    before = digest(env.landing_file(DAY))
    loads = ingest_window(env, "2013-01-01", "2013-01-03")
    by_day = {load.partition_date.isoformat(): load for load in loads}
    bad = by_day.pop(DAY)
    assert bad.rejected and bad.rejected_because.startswith(f"landing_file: {reason}")
    assert (bad.rows_read, bad.rows_loaded, bad.rows_kept) == (0, 0, 0)
    assert all(not load.rejected and load.rows_loaded > 0 for load in by_day.values())
    assert env.query(
        "SELECT strftime(flight_date, '%Y-%m-%d'), count(*) FROM raw.flights GROUP BY 1 ORDER BY 1"
    ) == [(day, load.rows_loaded) for day, load in sorted(by_day.items())]
    assert env.query(
        "SELECT outcome, rejected_because FROM ops.load_audit WHERE partition_date = ?", [DAY]
    ) == [("rejected", bad.rejected_because)]
    [sidecar] = sidecars(env)
    assert sidecar["reason"] == reason and sidecar["source_file"].endswith(f"{DAY}.csv")
    copy = env.quarantine / "flights" / sidecar["copy"]
    assert digest(copy) == before  # the exact bytes that arrived
    assert digest(env.landing_file(DAY)) == before  # the landing file is never modified


def test_utf8_beyond_ascii_passes_the_contract_and_is_judged_row_by_row(env):
    """Only a file that is not UTF-8 is refused whole; a UTF-8 value outside ASCII is a row's problem."""
    lines = csv_lines(env, DAY)
    lines[1] = set_field(lines[1], "dest", "ZÜR")  # valid UTF-8, not an airport code
    write_lines(env, DAY, lines)
    load = ingest(env, DAY)
    assert (load.rows_read, load.rows_quarantined) == (len(lines) - 1, 1)
    assert env.query("SELECT line_number, reasons FROM quarantine.flights") == [(2, "dest:str_matches")]


def test_truncated_gzip_is_quarantined(env):
    gz = env.landing_file(DAY).with_suffix(".csv.gz")
    data = gzip.compress(env.landing_file(DAY).read_bytes())
    gz.write_bytes(data[: len(data) // 2])
    env.landing_file(DAY).unlink()
    load = ingest(env, DAY)
    assert load.rejected and "bad_compression" in load.rejected_because
    assert sidecars(env)[0]["reason"] == "bad_compression"


def test_complete_gzip_and_parquet_load_like_csv(env):
    import pandas as pd

    expected = ingest(env, DAY)
    gz = env.landing_file(DAY).with_suffix(".csv.gz")
    gz.write_bytes(gzip.compress(env.landing_file(DAY).read_bytes()))
    env.landing_file(DAY).unlink()
    assert ingest(env, DAY).rows_loaded == expected.rows_loaded
    frame = pd.read_csv(gz, dtype=str, keep_default_na=False)
    frame.to_parquet(env.landing / f"{DAY}.parquet")
    gz.unlink()
    from_parquet = ingest(env, DAY)
    assert (from_parquet.rows_loaded, from_parquet.rows_quarantined) == (expected.rows_loaded, 0)


def test_a_window_of_mixed_formats_keeps_each_rows_own_file_date_and_line(env):
    """The loader scans the CSV files first and the parquet files after them: every row must still carry
    its own file's name, partition date and line, whatever the order of the days."""
    import pandas as pd

    days = ["2013-01-02", "2013-01-03", "2013-01-04"]
    clean = {
        load.partition_date.isoformat(): load.rows_loaded for load in ingest_window(env, days[0], days[-1])
    }
    for day in days:  # line 7 of each day is out of range
        lines = csv_lines(env, day)
        lines[6] = set_field(lines[6], "month", "13")
        write_lines(env, day, lines)
    parquet = env.landing / f"{days[0]}.parquet"  # the first day lands as parquet, the last compressed
    pd.read_csv(env.landing_file(days[0]), dtype=str, keep_default_na=False).to_parquet(parquet)
    env.landing_file(days[0]).unlink()
    gz = env.landing_file(days[2]).with_suffix(".csv.gz")
    gz.write_bytes(gzip.compress(env.landing_file(days[2]).read_bytes()))
    env.landing_file(days[2]).unlink()

    loads = ingest_window(env, days[0], days[-1], run_id="mixed")
    assert [(load.partition_date.isoformat(), load.rows_loaded, load.rows_quarantined) for load in loads] == [
        (day, clean[day] - 1, 1) for day in days
    ]
    sources = [str(parquet), str(env.landing_file(days[1])), str(gz)]
    assert env.query(
        "SELECT flight_date::VARCHAR, _source_file, min(_source_line), count(*) FROM raw.flights "
        "WHERE _run_id = 'mixed' GROUP BY ALL ORDER BY 1"
    ) == [(day, source, 2, clean[day] - 1) for day, source in zip(days, sources, strict=True)]
    assert env.query(
        "SELECT partition_date::VARCHAR, source_file, line_number, reasons FROM quarantine.flights "
        "WHERE run_id = 'mixed' ORDER BY 1"
    ) == [
        (day, source, 7, "month:less_than_or_equal_to, flight_date:invalid_date")
        for day, source in zip(days, sources, strict=True)
    ]


def test_a_malformed_line_counts_once_when_another_file_of_the_window_cannot_be_read(env):
    """A file that passes the contract but cannot be read to the end makes the loader scan again without
    it, after probing each file; the malformed lines all those scans saw belong to the last scan only."""
    lines = csv_lines(env, DAY)
    write_lines(env, DAY, [*lines, lines[1] + ",EXTRA"])  # one line too many fields, at the end
    corrupt_parquet(env, "2013-01-03")

    loads = ingest_window(env, "2013-01-01", "2013-01-04")

    assert [(load.partition_date.isoformat(), load.rows_quarantined) for load in loads] == [
        ("2013-01-01", 0), (DAY, 1), ("2013-01-03", 0), ("2013-01-04", 0),
    ]  # fmt: skip
    assert loads[2].rejected_because.startswith("landing_file: unreadable")
    assert all(load.reconciles for load in loads)
    assert env.query("SELECT partition_date::VARCHAR, line_number, reasons FROM quarantine.flights") == [
        (DAY, len(lines) + 1, "malformed_line: Expected Number of Columns: 19 Found: 20")
    ]


def _warehouse_contents(env) -> tuple[list[tuple], list[tuple], list[tuple]]:
    return (
        env.query("SELECT * EXCLUDE (_loaded_at) FROM raw.flights ORDER BY ALL"),
        env.query("SELECT * EXCLUDE (quarantined_at) FROM quarantine.flights ORDER BY ALL"),
        env.query("SELECT * EXCLUDE (loaded_at) FROM ops.load_audit ORDER BY ALL"),
    )


def test_a_window_scanned_in_chunks_while_sharing_the_cores_loads_as_one_scan(env, tmp_path, monkeypatch):
    """While the step shares the host's cores, the window is scanned a few files per statement: every
    row keeps its file, date and line, and malformed lines, invalid rows, duplicates and every format
    count as in one scan, across the chunks' borders."""
    import pandas as pd

    days = ["2013-01-02", "2013-01-03", "2013-01-04", "2013-01-05", "2013-01-06"]
    for i, day in enumerate(days):
        lines = csv_lines(env, day)
        lines[3 + i] = set_field(lines[3 + i], "month", "13")
        lines.append(lines[10])  # a duplicate of line 11, at the end
        if day in ("2013-01-03", "2013-01-05"):
            lines.insert(5 + i, lines[5] + ",EXTRA")  # a malformed line
        write_lines(env, day, lines)
    parquet = env.landing / f"{days[1]}.parquet"  # a parquet file and a compressed one among the CSVs
    pd.read_csv(env.landing_file(days[1]), dtype=str, keep_default_na=False, on_bad_lines="skip").to_parquet(
        parquet
    )
    env.landing_file(days[1]).unlink()
    gz = env.landing_file(days[3]).with_suffix(".csv.gz")
    gz.write_bytes(gzip.compress(env.landing_file(days[3]).read_bytes()))
    env.landing_file(days[3]).unlink()

    whole = ingest_window(env, days[0], days[-1], run_id="window")
    in_one_scan = _warehouse_contents(env)
    env.duckdb_path.unlink()

    chunks = []
    classify_sql = loader._classify_sql

    def recording(dataset, columns, files, first, end):
        chunks.append((first, min(end, len(files))))
        return classify_sql(dataset, columns, files, first, end)

    monkeypatch.setattr(loader, "SHARED_SCAN_CHUNK_FILES", 2)
    monkeypatch.setattr(loader, "_classify_sql", recording)
    with cpu_share.share(tmp_path / "cpu"):
        chunked = ingest_window(env, days[0], days[-1], run_id="window")

    assert chunks == [(0, 2), (2, 4), (4, 5)]
    assert chunked == whole
    assert [(load.rows_quarantined, load.rows_duplicate) for load in chunked] == [
        (1, 1), (1, 1), (1, 1), (2, 1), (1, 1),
    ]  # fmt: skip
    assert _warehouse_contents(env) == in_one_scan


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("2013-01-xx.csv", "bad_name"),
        ("2014-03-01.csv", "out_of_range"),
        ("2013-01-02.xlsx", "unsupported_format"),
    ],
)
def test_badly_named_files_are_refused_by_the_contract(env, name, reason):
    import datetime as dt

    from flightdeck.landing import LandingFileError, inspect, quarantine_file
    from flightdeck.schemas import FlightsSchema, column_names

    path = env.landing / name
    shutil.copy(env.landing_file(DAY), path)
    with pytest.raises(LandingFileError) as err:
        inspect(path, column_names(FlightsSchema), dt.date(2013, 1, 1), dt.date(2014, 1, 1))
    assert err.value.reason == reason and name in str(err.value)
    quarantine_file(err.value, env.quarantine, "flights", "run-x")
    assert sidecars(env)[0]["reason"] == reason


def quarantined(env):
    return env.query(
        "SELECT line_number, kind, reasons FROM quarantine.flights WHERE status = 'open' ORDER BY line_number"
    )


def test_row_level_failures_are_quarantined_and_the_rest_loads(env):
    lines = csv_lines(env, DAY)
    n_rows = len(lines) - 1
    lines[1] = set_field(lines[1], "month", "13")  # out of range (line 2)
    lines[2] = set_field(lines[2], "dep_time", "abc")  # wrong type (line 3)
    lines[3] = set_field(set_field(lines[3], "day", "3"), "time_hour", "2013-01-03T10:00:00Z")  # another day
    lines[4] = lines[4] + ",EXTRA"  # too many fields (line 5)
    lines[5] = set_field(lines[5], "origin", "XYZ")  # unknown origin (line 6)
    lines.append(lines[10])  # an exact duplicate of line 11, at the end
    write_lines(env, DAY, lines)

    load = ingest(env, DAY)
    assert load.reconciles
    assert (load.rows_read, load.rows_quarantined, load.rows_duplicate) == (n_rows + 1, 5, 1)
    assert load.rows_loaded == n_rows - 5
    rows = quarantined(env)
    assert rows[0] == (2, "invalid", "month:less_than_or_equal_to, flight_date:invalid_date")
    assert rows[1] == (3, "invalid", "dep_time:wrong_type")
    assert rows[2] == (4, "invalid", "flight_date:not_partition_date")
    assert rows[3][:2] == (5, "invalid") and rows[3][2].startswith("malformed_line")
    assert rows[4] == (6, "invalid", "origin:isin")
    assert rows[5] == (n_rows + 2, "duplicate", "")
    # Valid rows keep their own line numbers.
    assert env.query("SELECT min(_source_line) FROM raw.flights") == [(7,)]
    original = env.query("SELECT original_values FROM quarantine.flights WHERE line_number = 3")[0][0]
    assert json.loads(original)["dep_time"] == "abc"
    audit = env.query("SELECT rows_read, rows_loaded, rows_quarantined, rows_duplicate FROM ops.load_audit")
    assert audit == [(n_rows + 1, n_rows - 5, 5, 1)]


def test_replay_after_fix_resolves_quarantine_without_double_counting(env):
    good = csv_lines(env, DAY)
    bad = list(good)
    bad[1] = set_field(bad[1], "month", "13")
    bad[2] = set_field(bad[2], "carrier", "u a")
    write_lines(env, DAY, bad)
    first = ingest(env, DAY, run_id="run-1")
    assert first.rows_quarantined == 2
    write_lines(env, DAY, bad)  # the same bad file again: still two open rows, not four
    ingest(env, DAY, run_id="run-2")
    assert env.query("SELECT count(*) FROM quarantine.flights WHERE status = 'open'") == [(2,)]

    write_lines(env, DAY, good)  # the sender delivers a corrected file: replay = re-ingest the partition
    replay = ingest(env, DAY, run_id="run-3")
    assert replay.rows_quarantined == 0 and replay.rows_loaded == len(good) - 1
    statuses = env.query(
        "SELECT status, resolved_by_run_id, count(*) FROM quarantine.flights GROUP BY ALL ORDER BY ALL"
    )
    assert statuses == [("resolved", "run-3", 2), ("superseded", "run-2", 2)]
    assert env.query("SELECT count(*) FROM raw.flights") == [(len(good) - 1,)]
    newest = env.query("SELECT rows_quarantined FROM ops.load_audit ORDER BY loaded_at DESC LIMIT 1")
    assert newest == [(0,)]

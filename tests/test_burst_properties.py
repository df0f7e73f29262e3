"""Random bursts of good and bad daily files in one window (hypothesis): every good day loads exactly
its own rows, every bad day is held back with its reason and keeps what it had, nothing is counted twice,
and every day's accounting reconciles. The same loader a ranged run calls, on real files and DuckDB."""

import gzip
import shutil
import tempfile
from pathlib import Path

import duckdb
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import DEMO_DIR, Env
from tests.loading import DEFAULT_GATES, csv_lines, ingest_window, set_field, write_lines
from tests.test_validation_properties import PROPERTY_SETTINGS

DAYS = [f"2013-01-{d:02d}" for d in range(1, 11)]


def _text(env, day, transform):
    path = env.landing_file(day)
    path.write_bytes(transform(path.read_bytes()))


def _gzip(env, day, truncate):
    data = gzip.compress(env.landing_file(day).read_bytes())
    env.landing_file(day).with_suffix(".csv.gz").write_bytes(data[: len(data) // 2] if truncate else data)
    env.landing_file(day).unlink()


def _bad_origins(env, day, share):
    lines = csv_lines(env, day)
    for i in range(1, 1 + int(len(lines) * share)):
        lines[i] = set_field(lines[i], "origin", "XXX")
    write_lines(env, day, lines)


# kind -> (how a day's file is made so, the start of the reason it is held back; None: it loads)
KINDS = {
    "good": (lambda env, day: None, None),
    "gzip": (lambda env, day: _gzip(env, day, truncate=False), None),
    "few_bad_rows": (lambda env, day: _bad_origins(env, day, 0.002), None),
    "empty": (lambda env, day: env.landing_file(day).write_bytes(b""), "landing_file: empty_file"),
    "semicolons": (lambda env, day: _text(env, day, lambda b: b.replace(b",", b";")), "landing_file: bad_delimiter"),
    "truncated_gzip": (lambda env, day: _gzip(env, day, truncate=True), "landing_file: bad_compression"),
    "latin1": (lambda env, day: _text(env, day, lambda b: b.replace(b"UA", b"\xdcA", 1)), "landing_file: bad_encoding"),
    "many_bad_rows": (lambda env, day: _bad_origins(env, day, 0.05), "quarantine_rate_below_threshold"),
    "missing": (lambda env, day: env.landing_file(day).unlink(), "landing_file: no landing file for partition"),
}  # fmt: skip


@PROPERTY_SETTINGS
@given(
    kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=len(DAYS), max_size=len(DAYS)),
    loaded_before=st.booleans(),
)
def test_a_burst_of_good_and_bad_files_loads_exactly_the_good_days(kinds, loaded_before):
    root = Path(tempfile.mkdtemp(prefix="burst-"))
    try:
        shutil.copytree(DEMO_DIR / "landing", root / "landing")
        env = Env(root)
        rows = {day: len(csv_lines(env, day)) - 1 for day in DAYS}
        if loaded_before:  # an earlier clean load: a held-back day must keep exactly that content
            ingest_window(env, DAYS[0], DAYS[-1], run_id="earlier", gates=DEFAULT_GATES)
        plan = dict(zip(DAYS, kinds, strict=True))
        for day, kind in plan.items():
            KINDS[kind][0](env, day)

        loads = {load.partition_date.isoformat(): load for load in ingest_window(
            env, DAYS[0], DAYS[-1], run_id="burst", gates=DEFAULT_GATES
        )}  # fmt: skip

        assert sorted(loads) == DAYS  # every day has its own outcome, the missing one included
        con = duckdb.connect(str(env.duckdb_path), read_only=True)
        try:
            in_raw = dict(con.execute(
                "SELECT strftime(flight_date, '%Y-%m-%d'), count(*) FROM raw.flights GROUP BY 1"
            ).fetchall())  # fmt: skip
            duplicates = con.execute(
                "SELECT count(*) FROM (SELECT flight_date, carrier, flight, origin, sched_dep_time"
                " FROM raw.flights GROUP BY ALL HAVING count(*) > 1)"
            ).fetchone()[0]
        finally:
            con.close()
        assert duplicates == 0
        for day, kind in plan.items():
            load, reason = loads[day], KINDS[kind][1]
            assert load.reconciles, (day, kind)
            if reason is None:
                assert not load.rejected, (day, kind, load.rejected_because)
                assert in_raw.get(day, 0) == load.rows_loaded == rows[day] - load.rows_quarantined
            else:
                assert load.rejected and load.rejected_because.startswith(reason), (day, kind)
                assert in_raw.get(day, 0) == (rows[day] if loaded_before else 0), (day, kind)
    finally:
        shutil.rmtree(root, ignore_errors=True)

"""pandera and the SQL it compiles to agree; random corruption never loses or duplicates a row."""

import datetime as dt
import os

import pandas as pd
import pandera.pandas as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightdeck.datasets import FLIGHTS
from flightdeck.landing import inspect
from flightdeck.loader import load_window
from flightdeck.schemas import FlightsSchema, column_names
from tests.conftest import DEMO_DIR
from tests.loading import OPEN_GATES

COLUMNS = column_names(FlightsSchema)
# CI runs a fixed, reproducible set of examples; HYPOTHESIS_EXPLORE=N explores N random ones instead.
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXPLORE", "25"))
DERANDOMIZE = "HYPOTHESIS_EXPLORE" not in os.environ
# The settings of every property test that loads files (each example writes its own under tmp_path).
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DAY = "2013-01-02"
SOURCE = DEMO_DIR / "landing" / "flights" / f"{DAY}.csv"
VALUES = ["abc", "-5", "0", "13", "24", "60", "2400", "2401", "", "X", "XYZ", "ZZZZZZZZ", "1e", "not-a-time"]
VALUES += ["24.0", "2.4e1", "+13.000", "13.5", "1e400", "1.3E1 "]  # spellings of numbers
HEADER, *ROWS = SOURCE.read_text().splitlines()[:301]


def corrupt(rows, edits):
    rows = list(rows)
    for index, column, value in edits:
        fields = rows[index].split(",")
        fields[COLUMNS.index(column)] = value
        rows[index] = ",".join(fields)
    return rows


def sql_failures(tmp_path, rows, extra_lines=()):
    """{line: set of failing columns} according to the loader, plus the load's accounting."""
    import duckdb

    path = tmp_path / "landing" / f"{DAY}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *rows, *extra_lines]) + "\n")
    file = inspect(path, COLUMNS, dt.date(2013, 1, 1), dt.date(2014, 1, 1))
    con = duckdb.connect()
    try:
        day = dt.date.fromisoformat(DAY)
        [load] = load_window(con, FLIGHTS, [file], (day, day), "prop", OPEN_GATES)
        quarantine = con.execute("SELECT line_number, kind, reasons FROM quarantine.flights").fetchall()
        loaded_lines = [r[0] for r in con.execute("SELECT _source_line FROM raw.flights").fetchall()]
    finally:
        con.close()
    failures = {}
    for line, kind, reasons in quarantine:
        if kind == "invalid":
            failures[line] = {r.split(":")[0] for r in reasons.split(", ") if not r.startswith("flight_date")}
    return failures, load, quarantine, loaded_lines


def pandera_failures(rows):
    """{line: set of failing columns} according to pandera itself.

    pandera skips a column's value checks once the column fails to coerce, so each column is validated
    on its own, and again without its uncoercible rows until no coercion failure is left.
    """
    frame = pd.DataFrame([r.split(",") for r in rows], columns=COLUMNS).replace("", None)
    schema = FlightsSchema.to_schema()
    failures = {}
    for name, column in schema.columns.items():
        single = pa.DataFrameSchema({name: column}, coerce=True, parsers=schema.parsers)
        values = frame[[name]]
        while True:
            try:
                single.validate(values, lazy=True)
                break
            except pa.errors.SchemaErrors as exc:
                cases = exc.failure_cases.dropna(subset=["index"])
                for index in cases["index"]:
                    failures.setdefault(int(index) + 2, set()).add(name)
                uncoercible = cases[cases["check"].astype(str).str.startswith("coerce_dtype")]["index"]
                if uncoercible.empty:
                    break
                values = values.drop(index=uncoercible.astype(int).unique())
    return failures


edits = st.lists(
    st.tuples(st.integers(0, len(ROWS) - 1), st.sampled_from(COLUMNS), st.sampled_from(VALUES)),
    min_size=1,
    max_size=12,
)


@PROPERTY_SETTINGS
@given(edits=edits)
def test_sql_validation_agrees_with_pandera(tmp_path, edits):
    rows = corrupt(ROWS, edits)
    sql, *_ = sql_failures(tmp_path, rows)
    sql = {line: cols for line, cols in sql.items() if cols}  # rows failing only the date rule
    assert sql == pandera_failures(rows)


@PROPERTY_SETTINGS
@given(
    edits=edits,
    duplicates=st.lists(st.integers(0, len(ROWS) - 1), max_size=5),
    too_long=st.lists(st.integers(0, len(ROWS) - 1), max_size=3),
)
def test_random_corruption_loses_and_duplicates_nothing(tmp_path, edits, duplicates, too_long):
    rows = corrupt(ROWS, edits)
    extra = [rows[i] for i in duplicates] + [rows[i] + ",extra" for i in too_long]
    _, load, quarantine, loaded_lines = sql_failures(tmp_path, rows, extra)
    n_lines = len(rows) + len(extra)
    assert load.rows_read == n_lines
    assert load.reconciles
    # Every data line (2 .. n+1) is accounted for exactly once: loaded, or quarantined with its line.
    accounted = sorted(loaded_lines + [line for line, _, _ in quarantine])
    assert accounted == list(range(2, n_lines + 2))


# Values at the edges of the loader's shortcuts: Unicode spaces (TRIM removes them), tabs (it does not),
# integers that do not print back unchanged, numbers TRY_CAST would round or read in another base, numbers
# and timestamps that cast only once trimmed.
TRICKY = [
    " 7",
    "7 ",
    " ",
    "",
    "\u00a07",
    "7\u00a0",
    "\u3000",
    "a\u2009b",
    "\t7",
    "7\t",
    "é",
    "xé ",
    "+5",
    "007",
    "-0",
    "1.5",
    " 1.5 ",
    "\u00a01.5",
    "1.5\u2009",
    "nan",
    "-inf",
    "1e3",
    "0x1F",
    "1_000",
    "9223372036854775808",
    "-12",
    "0",
    "13",
    "2400",
    "2401",
    "-1441",
    "1440.5",
    "AB",
    "EWR",
    " JFK",
    "XYZ",
    "2013-01-01 05:00:00+00",
    " 2013-01-01T05:00:00Z\u00a0",
    "270.0",
    "2.7e2",
    " 27E1",
    ".27e3",
    "270.",
    "1e19",
    "1234567890123456.0",
    "123456789012345.0",
    "2013-02-30 05:00:00",
    None,
]
# Columns of each type and kind of check the models use, as typed by their plain definitions.
WHOLE_NUMBER = (
    "CASE WHEN regexp_full_match(t, '[+-]?[0-9]+') THEN TRY_CAST(t AS BIGINT) "
    "WHEN regexp_full_match(t, '[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?') "
    "AND length(trim(replace(regexp_extract(t, '^[+-]?([0-9.]+)', 1), '.', ''), '0')) <= 15 "
    "AND TRY_CAST(t AS DOUBLE) = trunc(TRY_CAST(t AS DOUBLE)) THEN TRY_CAST(TRY_CAST(t AS DOUBLE) AS BIGINT) END"
)
PLAIN_TYPED = {
    "year": WHOLE_NUMBER,  # required, range
    "dep_time": WHOLE_NUMBER,  # nullable, range
    "dep_delay": "TRY_CAST(t AS DOUBLE)",
    "distance": "TRY_CAST(t AS DOUBLE)",  # required, exclusive lower bound
    "carrier": "t",  # pattern
    "origin": "t",  # allowed values
    "time_hour": "TRY_CAST(t AS TIMESTAMPTZ)",
}


@given(
    value=st.one_of(st.sampled_from(TRICKY), st.text(max_size=6)),
    column=st.sampled_from(sorted(PLAIN_TYPED)),
)
@settings(max_examples=EXAMPLES * 8, deadline=None, derandomize=DERANDOMIZE)
def test_compiled_text_and_typed_expressions_match_their_plain_definitions(value, column):
    """The shortcuts in sql_validation.py give exactly NULLIF(TRIM(x), '') and its plain cast (for whole
    numbers: the whole-number regex), whether the value is trimmed in stage 1 or only where it fails to cast;
    and a column's one-predicate `fails` is true exactly when one of its named checks is."""
    import duckdb

    from flightdeck.sql_validation import compile_model

    [compiled] = [c for c in compile_model(FlightsSchema) if c.name == column]
    each_check = ", ".join(f"COALESCE({p}, false)" for _, p in compiled.failures)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        *got, fails, checks = con.execute(
            f"SELECT {compiled.text}, CAST({compiled.typed_expr} AS VARCHAR), COALESCE({compiled.fails}, false), "
            f"[{each_check}] FROM (SELECT *, {compiled.typed_expr} AS {compiled.typed_name} "
            f'FROM (SELECT {compiled.scan_expr} AS "{column}" FROM (SELECT $1::VARCHAR AS "{column}")))',
            [value],
        ).fetchone()
        plain = con.execute(
            f"SELECT t, CAST({PLAIN_TYPED[column]} AS VARCHAR) FROM (SELECT NULLIF(TRIM($1::VARCHAR), '') AS t)",
            [value],
        ).fetchone()
    finally:
        con.close()
    assert tuple(got) == plain  # compared as text: NaN is a value here, and NaN != NaN
    assert fails == any(checks)  # the row-level shortcut agrees with the checks that name reasons


INTEGER_COLUMNS = ["year", "month", "day", "dep_time", "sched_dep_time", "flight", "hour", "minute"]


def spell(value: str, how: int) -> str:
    """The same whole number as a CSV or JSON writer may spell it."""
    n = int(value)
    return [
        value,
        f"{n}.0",
        f"{n}.000",
        f"{n:e}",  # 2.700000e+02
        f"{n / 10}e1",
        f"+{n}.0" if n >= 0 else f"{n}.0",
        f" {n}.0 ",
    ][how]


def loaded_rows(tmp_path, rows) -> dict[int, tuple]:
    """line -> the typed values raw.flights holds for it, after loading `rows` as one day's file."""
    import duckdb

    path = tmp_path / "landing" / f"{DAY}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    file = inspect(path, COLUMNS, dt.date(2013, 1, 1), dt.date(2014, 1, 1))
    con = duckdb.connect()
    try:
        day = dt.date.fromisoformat(DAY)
        load_window(con, FLIGHTS, [file], (day, day), "prop", OPEN_GATES)
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        query = f"SELECT _source_line, {columns} FROM raw.flights"
        return {line: tuple(values) for line, *values in con.execute(query).fetchall()}
    finally:
        con.close()


@PROPERTY_SETTINGS
@given(
    respelled=st.lists(
        st.tuples(st.integers(0, 49), st.sampled_from(INTEGER_COLUMNS), st.integers(0, 6)),
        min_size=1,
        max_size=20,
    ),
    fractional=st.lists(st.tuples(st.integers(0, 49), st.sampled_from(INTEGER_COLUMNS)), max_size=3),
)
def test_every_spelling_of_a_whole_number_loads_the_same_row(tmp_path, respelled, fractional):
    """`270`, `270.0` and `2.7e2` in an integer column are the same value: the same row loads. `270.5` is
    a wrong type, quarantined. The loader and pandera agree on each."""
    rows = ROWS[:50]

    def value(index, column):
        return rows[index].split(",")[COLUMNS.index(column)]

    edits = {(i, c): spell(value(i, c), how) for i, c, how in respelled if value(i, c)}
    halves = {(i, c): f"{value(i, c)}.5" for i, c in fractional if value(i, c)}
    spelled = corrupt(rows, [(i, c, v) for (i, c), v in (edits | halves).items()])

    wrong = {}
    for i, c in halves:
        wrong.setdefault(i + 2, set()).add(c)
    failures, *_ = sql_failures(tmp_path / "sql", spelled)
    assert {line: cols for line, cols in failures.items() if cols} == wrong == pandera_failures(spelled)
    plain = loaded_rows(tmp_path / "plain", rows)
    assert loaded_rows(tmp_path / "spelled", spelled) == {k: v for k, v in plain.items() if k not in wrong}

"""Live flight events: their contract, their replay from the 2013 flights, and their exactly-once load.

An event is one stream entry with one field, `event`, a JSON object (README, Stream contract):
event_id (string, unique), type (departed | arrived | cancelled), flight_date (local departure date,
YYYY-MM-DD), carrier, flight (integer), origin, dest, event_time (ISO-8601, UTC) and delay_min (integer
minutes; null for cancelled).

`load_batch` writes one micro-batch in one transaction: every valid event whose event_id the warehouse
does not hold yet goes to raw.flight_events; a redelivered event (same event_id) is counted as such and
written nothing; an entry that is not a valid event goes to quarantine.flight_events with its reasons.
The caller acknowledges the batch's entries only after that commit, so a crash between the two
redelivers them and the event_id keeps them from counting twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pandas as pd

from flightdeck import lake
from flightdeck.loader import pause_for_crash_test

EVENT_TYPES = ("departed", "arrived", "cancelled")
FIELDS = ("event_id", "type", "flight_date", "carrier", "flight", "origin", "dest", "event_time", "delay_min")

RAW_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE TABLE IF NOT EXISTS raw.flight_events (
    event_id VARCHAR, type VARCHAR, flight_date DATE, carrier VARCHAR, flight BIGINT, origin VARCHAR,
    dest VARCHAR, event_time TIMESTAMPTZ, delay_min BIGINT,
    _stream_entry_id VARCHAR, _run_id VARCHAR, _loaded_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS quarantine.flight_events (
    stream_entry_id VARCHAR, original VARCHAR, reasons VARCHAR, run_id VARCHAR, quarantined_at TIMESTAMPTZ
);
"""


@dataclass(frozen=True)
class BatchLoad:
    entries: int
    loaded: int
    redelivered: int  # valid events whose event_id was already loaded (or repeated in the batch)
    quarantined: int
    flight_dates: tuple[dt.date, ...]  # the days whose events this batch added

    @property
    def reconciles(self) -> bool:
        return self.entries == self.loaded + self.redelivered + self.quarantined


def _whole_number(field: str) -> str:
    """SQL: the JSON value `field` of `j` as a BIGINT when it is a whole number in any spelling (1545,
    1545.0, 1.545e3: JSON has no integer type; the daily files' rule, flightdeck/schemas.py) within BIGINT;
    otherwise NULL. Above 10^15 a double may be another number rounded (the files allow 15 significant
    digits), so there only the integer spelling is taken."""
    value = f"json_extract(j, '$.{field}')"
    return (
        f"CASE WHEN json_type(j, '$.{field}') IN ('UBIGINT', 'BIGINT') THEN TRY_CAST({value} AS BIGINT) "
        f"WHEN json_type(j, '$.{field}') = 'DOUBLE' AND abs({value}::DOUBLE) < 1e15 "
        f"AND {value}::DOUBLE = trunc({value}::DOUBLE) THEN {value}::DOUBLE::BIGINT END"
    )


def _checks() -> list[tuple[str, str]]:
    """(reason, SQL predicate over the entry's JSON object `j` and its typed fields: true when it fails)."""
    text = "json_type(j, '$.{f}') = 'VARCHAR' AND length(trim(json_extract_string(j, '$.{f}'))) > 0"
    checks = []
    for name in ("event_id", "type", "carrier", "origin", "dest", "flight_date", "event_time"):
        checks.append((f"{name}:missing_or_not_a_string", f"NOT coalesce({text.format(f=name)}, false)"))
    checks += [
        # Two values for one field: which one the producer meant is unknowable (parsers differ).
        ("duplicate_field", "len(json_keys(j)) <> len(list_distinct(json_keys(j)))"),
        ("flight:missing_or_not_an_integer", "flight IS NULL"),
        ("type:unknown", f"type IS NOT NULL AND type NOT IN {EVENT_TYPES}"),
        ("flight_date:not_a_date", "flight_date_text IS NOT NULL AND flight_date IS NULL"),
        ("event_time:not_a_utc_timestamp", "event_time_text IS NOT NULL AND event_time IS NULL"),
        (
            "delay_min:not_an_integer_or_null",
            "coalesce(json_type(j, '$.delay_min'), 'NULL') <> 'NULL' AND delay_min IS NULL",
        ),
        (
            "delay_min:required",
            "type IN ('departed', 'arrived') AND coalesce(json_type(j, '$.delay_min'), 'NULL') = 'NULL'",
        ),
        ("delay_min:must_be_null_when_cancelled", "type = 'cancelled' AND delay_min IS NOT NULL"),
        ("carrier:not_a_carrier_code", "NOT regexp_full_match(coalesce(carrier, 'XX'), '[A-Z0-9]{2}')"),
    ]
    return checks


# A timestamp with an explicit UTC offset or Z: a naive one would be read in the session's time zone.
_ISO_UTC = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """raw.flight_events and its quarantine (the marts read the former before any event arrived)."""
    lake.retrying_conflicts(lambda: con.execute(RAW_DDL))


def load_batch(
    con: duckdb.DuckDBPyConnection,
    entries: list[tuple[str, str]],
    run_id: str,
    commit_lock: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> BatchLoad:
    """Write one micro-batch `entries` ((stream entry id, the `event` field's text)) exactly once;
    `commit_lock()` is held around the transaction (two batches at once must not both find an event_id
    new)."""
    ensure_tables(con)
    # The batch as one frame: DuckDB's executemany would run a statement per entry.
    batch = pd.DataFrame(
        {
            "n": pd.Series(range(len(entries)), dtype="int64"),
            "entry_id": pd.Series([e for e, _ in entries], dtype="object"),
            "original": pd.Series([o for _, o in entries], dtype="object"),
        }
    )
    con.register("_batch", batch)
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _entries AS SELECT n::BIGINT AS n, "
            "entry_id::VARCHAR AS entry_id, original::VARCHAR AS original FROM _batch"
        )
    finally:
        con.unregister("_batch")
    fields = ", ".join(
        f"json_extract_string(j, '$.{f}') AS {f}" for f in ("event_id", "type", "carrier", "origin", "dest")
    )
    checks = _checks()
    reasons = ", ".join(f"CASE WHEN {p} THEN '{r}' END" for r, p in checks)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _parsed AS
        WITH parsed AS (
            SELECT n, entry_id, original, CASE WHEN json_valid(original) THEN original::JSON END AS j FROM _entries
        ), typed AS (
            SELECT *, {fields},
                   json_extract_string(j, '$.flight_date') AS flight_date_text,
                   -- RFC 3339 allows a lower-case t and z; DuckDB's cast reads only upper case.
                   upper(json_extract_string(j, '$.event_time')) AS event_time_text,
                   {_whole_number("flight")} AS flight,
                   {_whole_number("delay_min")} AS delay_min
            FROM parsed
        ), dated AS (
            SELECT *,
                   CASE WHEN regexp_full_match(flight_date_text, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
                        THEN TRY_CAST(flight_date_text AS DATE) END AS flight_date,
                   CASE WHEN regexp_full_match(event_time_text, '{_ISO_UTC}')
                        THEN TRY_CAST(event_time_text AS TIMESTAMPTZ) END AS event_time
            FROM typed
        )
        SELECT *,
               -- An entry that is not a JSON object has that one reason, not one per missing field.
               CASE WHEN NOT coalesce(json_valid(original), false) THEN ['not_json']
                    WHEN json_type(j) <> 'OBJECT' THEN ['not_an_object']
                    ELSE list_filter([{reasons}], lambda r: r IS NOT NULL) END AS reasons
        FROM dated"""
    )

    def write() -> BatchLoad:
        con.execute("BEGIN TRANSACTION")
        try:
            # The first valid entry of each event_id the warehouse does not hold yet.
            con.execute(
                """CREATE OR REPLACE TEMP TABLE _new AS
                SELECT * FROM (
                    SELECT p.*, row_number() OVER (PARTITION BY event_id ORDER BY n) AS nth
                    FROM _parsed p WHERE len(reasons) = 0) v
                WHERE nth = 1 AND NOT EXISTS (SELECT 1 FROM raw.flight_events r WHERE r.event_id = v.event_id)"""
            )
            con.execute(
                """INSERT INTO raw.flight_events
                SELECT event_id, type, flight_date, carrier, flight, origin, dest, event_time, delay_min,
                       entry_id, ?, now() FROM _new""",
                [run_id],
            )
            con.execute(
                """INSERT INTO quarantine.flight_events
                SELECT entry_id, original, array_to_string(reasons, ', '), ?, now() FROM _parsed
                WHERE len(reasons) > 0""",
                [run_id],
            )
            counts = con.execute(
                """SELECT (SELECT count(*) FROM _parsed), (SELECT count(*) FROM _new),
                          (SELECT count(*) FROM _parsed WHERE len(reasons) > 0),
                          (SELECT list(DISTINCT flight_date ORDER BY flight_date) FROM _new)"""
            ).fetchone()
            pause_for_crash_test()
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        total, loaded, quarantined, days = counts
        return BatchLoad(total, loaded, total - loaded - quarantined, quarantined, tuple(days or ()))

    with commit_lock():
        return lake.retrying_conflicts(write)


def replay_events(
    flights: pd.DataFrame, airports: pd.DataFrame, first: dt.date, last: dt.date
) -> pd.DataFrame:
    """The 2013 flights of [first, last] as events in event-time order (columns FIELDS, event_time a
    UTC timestamp): departures at their actual departure time, arrivals at their actual arrival time
    (local at the destination, on the actual departure's date or the next), cancellations at
    the scheduled departure. Deterministic event ids: replaying a day again repeats them."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("flights", flights)
        con.register("airports", airports)
        return con.execute(
            """WITH f AS (
                SELECT *, make_date(year, month, day) AS flight_date,
                       timezone('America/New_York', make_date(year, month, day)::TIMESTAMP
                                + to_minutes(hour * 60 + minute)) AS scheduled_utc
                FROM flights
                WHERE make_date(year, month, day) BETWEEN ? AND ?
            ), events AS (
                SELECT 'departed' AS type, f.*, scheduled_utc + to_minutes(dep_delay::BIGINT) AS event_time,
                       dep_delay::BIGINT AS delay_min
                FROM f WHERE dep_time IS NOT NULL AND dep_delay IS NOT NULL
                UNION ALL
                SELECT 'arrived', f.*,
                       -- The arrival's local date is the actual departure's (a late departure may fall
                       -- after midnight), the next day when it reads earlier than the departure.
                       timezone(coalesce(a.tzone, 'America/Puerto_Rico'),
                                date_trunc('day', flight_date::TIMESTAMP
                                                  + to_minutes(hour * 60 + minute + dep_delay::BIGINT))
                                + to_minutes((arr_time::BIGINT // 100) * 60 + arr_time::BIGINT % 100)
                                + CASE WHEN arr_time < dep_time THEN INTERVAL 1 DAY ELSE INTERVAL 0 DAY END),
                       arr_delay::BIGINT
                FROM f LEFT JOIN airports a ON a.faa = f.dest
                WHERE arr_time IS NOT NULL AND arr_delay IS NOT NULL AND dep_time IS NOT NULL AND dep_delay IS NOT NULL
                UNION ALL
                SELECT 'cancelled', f.*, scheduled_utc, NULL FROM f WHERE dep_time IS NULL
            )
            SELECT strftime(flight_date, '%Y-%m-%d') || '-' || carrier || '-' || flight || '-' || origin
                       || '-' || type AS event_id,
                   type, flight_date, carrier, flight::BIGINT AS flight, origin, dest, event_time, delay_min
            FROM events ORDER BY event_time, event_id""",
            [first, last],
        ).df()
    finally:
        con.close()


def event_json(row: dict) -> str:
    """One event as the stream carries it."""
    return json.dumps(
        {
            "event_id": row["event_id"],
            "type": row["type"],
            "flight_date": pd.Timestamp(row["flight_date"]).date().isoformat(),
            "carrier": row["carrier"],
            "flight": int(row["flight"]),
            "origin": row["origin"],
            "dest": row["dest"],
            "event_time": pd.Timestamp(row["event_time"])
            .tz_convert("UTC")
            .isoformat()
            .replace("+00:00", "Z"),
            "delay_min": None if pd.isna(row["delay_min"]) else int(row["delay_min"]),
        }
    )

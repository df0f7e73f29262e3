"""The stream's parser on entries no one designed: every JSON spelling of a valid event loads with the
values the producer meant; every broken entry is quarantined with the reason that names its fault; a mix
of both, with repeats, loads each valid event once and loses nothing (README, Stream contract).

No broker is needed: `load_batch` is what a micro-batch runs on the entries it read."""

import datetime as dt
import json

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.flight_events import EVENT_TYPES, load_batch
from tests.test_validation_properties import EXAMPLES, PROPERTY_SETTINGS

# One example costs milliseconds (an in-memory DuckDB): twice the files' examples.
STREAM_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=EXAMPLES * 2)

BIGINT = (-(2**63), 2**63 - 1)
NAME = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=12)
# A string field: any text around at least one letter (a blank one is a designed fault, below).
TEXT = st.builds(lambda a, b, c: a + b + c, NAME, st.sampled_from("AZaz09é漢"), NAME)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@st.composite
def events(draw, event_id=None) -> dict:
    """A valid event as the producer means it (Python values)."""
    kind = draw(st.sampled_from(EVENT_TYPES))
    moment = draw(st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1), timezones=OFFSETS))
    return {
        "event_id": event_id or draw(TEXT),
        "type": kind,
        "flight_date": draw(st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1))),
        "carrier": draw(st.from_regex(r"[A-Z0-9]{2}", fullmatch=True)),
        "flight": draw(st.integers(*BIGINT)),
        "origin": draw(TEXT),
        "dest": draw(TEXT),
        "event_time": moment,
        "delay_min": None if kind == "cancelled" else draw(st.integers(*BIGINT)),
    }


@st.composite
def integer_spellings(draw, n: int) -> str:
    """A JSON number whose value is `n`: 1545, 1545.0, 1.545e3, 15450E-1 (within 15 digits, where a
    double holds every whole number exactly), -0 for 0."""
    forms = [str(n)]
    digits, sign = str(abs(n)), "-" if n < 0 else ""
    if len(digits) < 15:
        forms += [f"{n}.0", f"{n}.000", f"{n}e0", f"{sign}{digits}E+0"]
        if n:
            forms.append(f"{n}0E-1")  # (JSON allows no leading zero: 00E-1 is not a number)
        if len(digits) > 1:
            k = draw(st.integers(1, len(digits) - 1))
            forms.append(f"{sign}{digits[:-k]}.{digits[-k:]}e{k}")
    if n == 0:
        forms += ["-0", "0.0", "-0.0e5"]
    return draw(st.sampled_from(forms))


@st.composite
def time_spellings(draw, moment: dt.datetime) -> str:
    """The instant `moment` in an RFC 3339 spelling: any offset, Z or z, T or t or a space."""
    local = moment.astimezone(draw(OFFSETS))
    text = local.isoformat(
        sep=draw(st.sampled_from("Tt ")),
        timespec="microseconds" if local.microsecond else draw(st.sampled_from(["seconds", "microseconds"])),
    )
    if local.utcoffset() == dt.timedelta(0):
        text = text[: -len("+00:00")] + draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", "+0000", "+00"]))
    return text


@st.composite
def spellings(draw, event: dict, delay_key_for_cancelled=True) -> str:
    """`event` as a JSON text a producer may write: any key order, spacing, escaping and number form."""
    ascii_only = draw(st.booleans())
    string = lambda v: json.dumps(v, ensure_ascii=ascii_only)  # noqa: E731
    values = {
        "event_id": string(event["event_id"]),
        "type": string(event["type"]),
        "flight_date": string(event["flight_date"].isoformat()),
        "carrier": string(event["carrier"]),
        "flight": draw(integer_spellings(event["flight"])),
        "origin": string(event["origin"]),
        "dest": string(event["dest"]),
        "event_time": string(draw(time_spellings(event["event_time"]))),
        "delay_min": "null" if event["delay_min"] is None else draw(integer_spellings(event["delay_min"])),
    }
    if event["type"] == "cancelled" and draw(st.booleans()):
        del values["delay_min"]  # null or absent: the contract reads both as no delay
    keys = draw(st.permutations(list(values)))
    space = st.sampled_from(["", " ", "\n", "\t", "  \r\n"])
    members = [f"{draw(space)}{string(k)}{draw(space)}:{draw(space)}{values[k]}{draw(space)}" for k in keys]
    return f"{draw(space)}{{{','.join(members)}}}{draw(space)}"


def members(event: dict, **changes) -> str:
    """`event` as plain JSON with `changes` (a value of ... drops the field)."""
    plain = {
        **event,
        "flight_date": event["flight_date"].isoformat(),
        "event_time": event["event_time"].isoformat(),
    }
    plain.update(changes)
    return json.dumps({k: v for k, v in plain.items() if v is not ...})


@st.composite
def broken(draw, event: dict) -> tuple[str, str]:
    """(an entry that is not a valid event, the reason it must be quarantined with)."""
    required = ["event_id", "type", "flight_date", "carrier", "flight", "origin", "dest", "event_time"]
    if event["type"] != "cancelled":
        required.append("delay_min")
    strings = ["event_id", "type", "flight_date", "carrier", "origin", "dest", "event_time"]
    not_a_string = st.sampled_from([0, 1.5, True, None, [], {}, ["UA"], "", "   "])
    not_an_integer = st.sampled_from(
        [1.5, -0.25, "7", True, False, [], {}, 2**63, -(2**63) - 1, 2**64, 1e15, 1e300, "1e3"]
    )
    fault = draw(st.sampled_from(["drop", "string", "integer", "type", "date", "time", "cancelled", "carrier",
                                  "duplicate", "not_json", "not_an_object"]))  # fmt: skip
    if fault == "drop":
        name = draw(st.sampled_from(required))
        reason = "delay_min:required" if name == "delay_min" else f"{name}:missing"
        return members(event, **{name: ...}), reason
    if fault == "string":
        name = draw(st.sampled_from(strings))
        return members(event, **{name: draw(not_a_string)}), f"{name}:missing_or_not_a_string"
    if fault == "integer":
        name = draw(st.sampled_from(["flight"] if event["type"] == "cancelled" else ["flight", "delay_min"]))
        value = draw(not_an_integer)
        reason = (
            "flight:missing_or_not_an_integer" if name == "flight" else "delay_min:not_an_integer_or_null"
        )
        return members(event, **{name: value}), reason
    if fault == "type":
        return members(
            event, type=draw(st.sampled_from(["boarded", "Departed", "ARRIVED", "cancel"]))
        ), "type:unknown"
    if fault == "date":
        bad = draw(
            st.sampled_from(["2013-02-30", "2013-1-2", "20130102", "2013-01-02T00:00:00Z", "02/01/2013"])
        )
        return members(event, flight_date=bad), "flight_date:not_a_date"
    if fault == "time":
        naive = event["event_time"].replace(tzinfo=None).isoformat()
        bad = draw(st.sampled_from([naive, "2013-01-02T25:00:00Z", "yesterday", "1357120800", naive[:10]]))
        return members(event, event_time=bad), "event_time:not_a_utc_timestamp"
    if fault == "cancelled":
        return members(
            event, type="cancelled", delay_min=draw(st.integers(*BIGINT))
        ), "delay_min:must_be_null"
    if fault == "carrier":
        bad = draw(st.sampled_from(["ua", "U", "UAL", "U-", "ÜA"]))
        return members(event, carrier=bad), "carrier:not_a_carrier_code"
    if fault == "duplicate":
        text = members(event)
        return text[:-1] + ', "type": "arrived"}', "duplicate_field"
    if fault == "not_json":
        text = members(event)
        return draw(
            st.sampled_from([text[:-1], text + "}", text.replace(":", "=", 1), "", "null x"])
        ), "not_json"
    return json.dumps(
        draw(st.sampled_from([[members(event)], 1545, "departed", None, True]))
    ), "not_an_object"


def load(texts: list[str]) -> tuple[object, duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return load_batch(con, [(f"{n}-0", text) for n, text in enumerate(texts)], "property"), con


def loaded_values(con) -> list[tuple]:
    return con.execute(
        """SELECT event_id, type, flight_date, carrier, flight, origin, dest, event_time, delay_min
        FROM raw.flight_events ORDER BY _stream_entry_id"""
    ).fetchall()


def meant(event: dict) -> tuple:
    return (*(event[k] for k in ("event_id", "type", "flight_date", "carrier", "flight", "origin", "dest")),
            event["event_time"].astimezone(dt.UTC), event["delay_min"])  # fmt: skip


@STREAM_SETTINGS
@given(st.data())
def test_every_spelling_of_a_valid_event_loads_what_the_producer_meant(data):
    event = data.draw(events())
    text = data.draw(spellings(event))
    result, con = load([text])
    quarantined = con.execute("SELECT reasons FROM quarantine.flight_events").fetchall()
    assert quarantined == [] and result.loaded == 1, (text, quarantined)
    [row] = loaded_values(con)
    assert row == meant(event), text


@STREAM_SETTINGS
@given(st.data())
def test_every_broken_entry_is_quarantined_with_the_reason_of_its_fault(data):
    text, reason = data.draw(broken(data.draw(events())))
    result, con = load([text])
    assert (result.loaded, result.quarantined) == (0, 1), text
    [(original, reasons)] = con.execute("SELECT original, reasons FROM quarantine.flight_events").fetchall()
    assert original == text  # kept exactly as it came, for replay
    assert reason in reasons, (text, reasons)


@STREAM_SETTINGS
@given(st.data())
def test_a_mixed_batch_with_repeats_loads_each_valid_event_once_and_loses_nothing(data):
    count = data.draw(st.integers(1, 30))
    valid = [data.draw(events(event_id=f"event-{n}")) for n in range(count)]
    texts, expected_quarantine = [], 0
    for event in valid:
        texts.append(data.draw(spellings(event)))
        extra = data.draw(st.sampled_from(["none", "repeat", "broken"]))
        if extra == "repeat":  # a redelivery, spelled as the producer's retry may spell it
            texts.append(data.draw(spellings(event)))
        elif extra == "broken":
            texts.append(data.draw(broken(data.draw(events(event_id=f"broken-{len(texts)}"))))[0])
            expected_quarantine += 1
    order = data.draw(st.permutations(range(len(texts))))
    result, con = load([texts[i] for i in order])
    assert result.reconciles and result.entries == len(texts)
    quarantined = con.execute("SELECT original, reasons FROM quarantine.flight_events").fetchall()
    assert (result.loaded, result.quarantined) == (count, expected_quarantine), quarantined
    assert result.redelivered == len(texts) - count - expected_quarantine
    assert sorted(loaded_values(con), key=str) == sorted((meant(e) for e in valid), key=str)
    # Loading the same batch again (a whole batch redelivered after a lost acknowledgement) adds nothing.
    again = load_batch(con, [(f"{n}-1", texts[i]) for n, i in enumerate(order)], "property-again")
    assert (again.loaded, again.redelivered) == (0, len(texts) - expected_quarantine)

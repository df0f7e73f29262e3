"""From one weather API response to landing rows, checking the envelope of the contract.

A response whose envelope is wrong (not JSON, not an object, another station or date, no observation
list) cannot be trusted at all: it is quarantined whole and the partition fails. Inside a good
envelope, each observation becomes one row, as text; a field it lacks is written as MISSING_FIELD, so
the loader quarantines that row with the reason `<field>:missing` (a null is a reading, a missing field
is not). Wrong types and observations of another local date are row quarantine reasons too.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from flightdeck.datasets import MISSING_FIELD, WEATHER
from flightdeck.schemas import column_names


@dataclass(frozen=True)
class WeatherResponse:
    station: str
    day: dt.date
    url: str
    body: bytes
    attempts: int


OBSERVATION_FIELDS = column_names(WEATHER.model)[1:]  # everything but origin, which the envelope gives


class PayloadError(Exception):
    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, dict, list)):
        return json.dumps(value)  # never a valid reading: the loader reports the wrong type
    return str(value)


def observation_rows(response: WeatherResponse) -> list[list[str]]:
    try:
        payload = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("malformed_json", f"{response.url}: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError(
            "bad_envelope", f"{response.url}: expected a JSON object, got {type(payload).__name__}"
        )
    if payload.get("station") != response.station:
        raise PayloadError("wrong_station", f"{response.url}: answered station {payload.get('station')!r}")
    if payload.get("date") != response.day.isoformat():
        raise PayloadError("wrong_date", f"{response.url}: answered date {payload.get('date')!r}")
    observations = payload.get("observations")
    if not isinstance(observations, list):
        raise PayloadError("bad_envelope", f"{response.url}: 'observations' is not a list")
    rows = []
    for observation in observations:
        if not isinstance(observation, dict):
            observation = {}  # every field missing: quarantined with reasons, never dropped
        rows.append(
            [response.station]
            + [_text(observation[f]) if f in observation else MISSING_FIELD for f in OBSERVATION_FIELDS]
        )
    return rows


def write_landing_csv(path: Path, rows: list[list[str]]) -> bytes:
    """Write atomically (temp name, then rename), so no reader or sensor sees half a file; returns the
    bytes written (their hash identifies the load in ops.load_audit)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(column_names(WEATHER.model))
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    content = buffer.getvalue().encode()
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return content

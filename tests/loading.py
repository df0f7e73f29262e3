"""Drive the flights loader exactly as the raw/flights asset does, without a Dagster run (fast)."""

import datetime as dt
import struct

import duckdb
import pandas as pd

from assets.common.gated_load import contract_checked_files, quarantine_unreadable
from flightdeck.datasets import FLIGHTS
from flightdeck.loader import Gates, load_window
from flightdeck.schemas import column_names
from resources.landing import LandingArea

# The gates of raw/flights at their defaults.
DEFAULT_GATES = Gates(max_quarantine_rate=0.01, min_volume_fraction=0.5)
# Gates that hold nothing back, for tests of the accounting itself.
OPEN_GATES = Gates(max_quarantine_rate=1.0, min_volume_fraction=0.0)


def ingest_window(env, first: str, last: str, run_id: str = "test-run", gates: Gates = OPEN_GATES):
    """Load the days first..last in one window, as a ranged run does; one PartitionLoad per day."""
    window = (dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    landing = LandingArea(data_dir=str(env.root))
    files, problems = contract_checked_files(landing, FLIGHTS, window, run_id)
    con = duckdb.connect(str(env.duckdb_path))
    try:
        return load_window(
            con,
            FLIGHTS,
            files,
            window,
            run_id,
            gates,
            ["dep_time", "arr_delay"],
            problems,
            on_unreadable=quarantine_unreadable(landing, FLIGHTS, run_id),
        )
    finally:
        con.close()


def ingest(env, day: str, run_id: str = "test-run"):
    return ingest_window(env, day, day, run_id)[0]


def csv_lines(env, day: str) -> list[str]:
    return env.landing_file(day).read_text().splitlines()


def write_lines(env, day: str, lines: list[str]) -> None:
    env.landing_file(day).write_text("\n".join(lines) + "\n")


def set_field(line: str, column: str, value: str) -> str:
    fields = line.split(",")
    fields[column_names(FLIGHTS.model).index(column)] = value
    return ",".join(fields)


def corrupt_parquet(env, day: str) -> None:
    """A parquet file whose footer is fine (it passes the contract) but whose data pages are garbage:
    only a full read finds it."""
    frame = pd.read_csv(env.landing_file(day), dtype=str, keep_default_na=False)
    path = env.landing / f"{day}.parquet"
    frame.to_parquet(path, compression="snappy")
    env.landing_file(day).unlink()
    data = bytearray(path.read_bytes())
    footer = struct.unpack("<I", data[-8:-4])[0]
    data[4 : len(data) - footer - 8] = b"\xab" * (len(data) - footer - 12)
    path.write_bytes(bytes(data))

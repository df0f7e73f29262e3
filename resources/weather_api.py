"""Client of the weather observations API: timeouts, bounded retries with backoff and jitter, and a
circuit breaker shared by every run and process.

Retried: timeouts, connection errors, 5xx and 429 (waiting what `Retry-After` asks, within the budget).
Not retried: 400 / 404 (the request is wrong, it will stay wrong) and payloads that are not JSON (the
caller quarantines them). Each attempt's outcome feeds the breaker, so a dead service opens it and
every later call in any process fails fast instead of waiting out its own retries.

Why a hand-written loop and not tenacity: honouring Retry-After against a total time budget and
recording every attempt in the shared breaker are most of the logic; the backoff itself is one line.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from pathlib import Path

import dagster as dg
import httpx

from flightdeck.backoff import backoff_delay
from flightdeck.circuit_breaker import CircuitBreaker, CircuitOpenError
from flightdeck.settings import redact_url
from flightdeck.weather_payload import WeatherResponse

BREAKER_NAME = "weather_api"


class WeatherApiError(Exception):
    """The service could not give an answer for this request."""


class WeatherApiRejected(WeatherApiError):
    """400 / 404: the request itself is wrong; retrying cannot help."""


class WeatherApiUnavailable(WeatherApiError):
    """Every attempt within the budget failed (timeouts, connection errors, 5xx, 429)."""


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the delta form; an HTTP date is read as 'unknown')."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@functools.cache
def shared_breaker(path: str, failure_threshold: int, cooldown_seconds: float) -> CircuitBreaker:
    """One breaker object per process and settings: its table is created once, not on every request.
    The state itself lives in the file, shared with every other process."""
    return CircuitBreaker(
        Path(path), BREAKER_NAME, failure_threshold=failure_threshold, cooldown_seconds=cooldown_seconds
    )


class WeatherApiClient(dg.ConfigurableResource):
    """Settings come from FLIGHTDECK_WEATHER_* variables (flightdeck/settings.py)."""

    base_url: str
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 10.0
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    max_total_seconds: float = 60.0
    breaker_failure_threshold: int = 5
    breaker_cooldown_seconds: float = 60.0
    breaker_state_path: str

    def breaker(self) -> CircuitBreaker:
        return shared_breaker(
            self.breaker_state_path, self.breaker_failure_threshold, self.breaker_cooldown_seconds
        )

    def _attempt(self, client: httpx.Client, url: str, params: dict[str, str]) -> bytes:
        deadline = time.monotonic() + self.connect_timeout_seconds + self.read_timeout_seconds
        try:
            with client.stream("GET", url, params=params) as response:
                if response.status_code in (400, 404):
                    raise WeatherApiRejected(
                        f"{response.status_code} for {redact_url(str(response.url))}: {response.read()[:300]!r}"
                    )
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Transient(
                        f"{response.status_code} from {redact_url(str(response.url))}",
                        retry_after_seconds(response.headers.get("Retry-After")),
                    )
                if response.status_code != 200:
                    raise WeatherApiRejected(
                        f"unexpected {response.status_code} for {redact_url(str(response.url))}"
                    )
                # A slow drip never trips the per-read timeout, so the whole body has a deadline too.
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise _Transient(
                            f"body of {redact_url(str(response.url))} still arriving after the read deadline"
                        )
                return b"".join(chunks)
        except httpx.TransportError as exc:  # timeouts, refused / reset connections, protocol errors
            detail = str(exc).replace(url, redact_url(url))
            raise _Transient(f"{type(exc).__name__} calling {redact_url(url)}: {detail}") from exc

    def fetch(self, station: str, day: dt.date, on_open=None) -> WeatherResponse:
        """The raw body of one station-day; raises WeatherApiError or CircuitOpenError.

        `on_open(state)` is called when this call's failure opens the circuit (to raise an alert).
        """
        breaker = self.breaker()
        url = f"{self.base_url.rstrip('/')}/v1/observations"
        params = {"station": station, "date": day.isoformat()}
        timeout = httpx.Timeout(self.read_timeout_seconds, connect=self.connect_timeout_seconds)
        started = time.monotonic()
        errors: list[str] = []
        with httpx.Client(timeout=timeout) as client:
            for attempt in range(self.max_attempts):
                breaker.before_call()  # CircuitOpenError: fail fast, nothing is called
                try:
                    body = self._attempt(client, url, params)
                except WeatherApiRejected:
                    breaker.record_success()  # the service answered; the request was wrong
                    raise
                except _Transient as exc:
                    errors.append(str(exc))
                    state, opened = breaker.record_failure(str(exc))
                    if opened and on_open:
                        on_open(state)
                    delay = exc.retry_after
                    if delay is None:
                        delay = backoff_delay(attempt, self.backoff_initial_seconds, self.backoff_max_seconds)
                    elapsed = time.monotonic() - started
                    if attempt + 1 == self.max_attempts or elapsed + delay > self.max_total_seconds:
                        break
                    time.sleep(delay)
                    continue
                breaker.record_success()
                return WeatherResponse(
                    station, day, redact_url(f"{url}?station={station}&date={day}"), body, attempt + 1
                )
        raise WeatherApiUnavailable(
            f"weather API unavailable for {station} {day} after {len(errors)} attempt(s) in "
            f"{time.monotonic() - started:.1f} s; last error: {errors[-1]}"
        )


__all__ = [
    "CircuitOpenError",
    "WeatherApiClient",
    "WeatherApiError",
    "WeatherApiRejected",
    "WeatherApiUnavailable",
    "WeatherResponse",
]

"""raw/weather: hourly observations pulled from the weather API per station and local date.

Pulled sources land like pushed ones: each day's answers are written to landing/weather/YYYY-MM-DD.csv
(an audit trail, replayable), then the same validated loader as flights loads them. A service outage
fails the run with a clear message; nothing empty or stale is ever substituted.
"""

import datetime as dt
import hashlib

import dagster as dg

from assets.common.daily_raw import daily_raw_asset, raw_key
from flightdeck.circuit_breaker import BreakerState, CircuitOpenError
from flightdeck.datasets import WEATHER
from flightdeck.landing import LandingFile, quarantine_bytes
from flightdeck.schemas import ORIGINS as STATIONS
from flightdeck.weather_payload import PayloadError, WeatherResponse, observation_rows, write_landing_csv
from resources.alert_log import raise_alert, run_url, throttle_seconds
from resources.alerting import Alert
from resources.weather_api import WeatherApiClient, WeatherApiError

RAW_WEATHER_KEY = raw_key(WEATHER)


def breaker_opened_alert(state: BreakerState, context: dg.AssetExecutionContext) -> Alert:
    return Alert(
        kind="circuit_open",
        dedupe_key=f"circuit_open:{state.name}",
        summary=f"circuit breaker {state.name} opened: the weather API is failing",
        details={
            "job": context.run.job_name,
            "asset": RAW_WEATHER_KEY.to_user_string(),
            "partition": context.partition_key_range.start + "..." + context.partition_key_range.end,
            "error": f"{state.consecutive_failures} consecutive failures; last: {state.last_error}",
            "run_url": run_url(context.run_id),
        },
    )


def fetch_day(
    weather_api: WeatherApiClient,
    day: dt.date,
    on_open,
) -> tuple[list[list[str]], list[tuple[WeatherResponse, PayloadError]], int]:
    """Rows of every station for `day`, the responses whose envelope is bad, and the attempts made."""
    rows, bad, attempts = [], [], 0
    for station in STATIONS:
        try:
            response = weather_api.fetch(station, day, on_open=on_open)
        except (CircuitOpenError, WeatherApiError) as exc:
            # Retrying the step would only wait out the same outage again: the breaker and the client's
            # bounded retries have already decided. The run fails; a later run fills the partition.
            raise dg.Failure(
                description=f"weather for {station} {day} could not be fetched: {exc}",
                metadata={"breaker": weather_api.breaker().state().state},
                allow_retries=False,
            ) from exc
        attempts += response.attempts
        try:
            rows += observation_rows(response)
        except PayloadError as exc:
            bad.append((response, exc))
    return rows, bad, attempts


def land_weather(context: dg.AssetExecutionContext, window: tuple[dt.date, dt.date]):
    """Each day's answers of every station, written to landing/weather/YYYY-MM-DD.csv; a day with a bad
    response is held back with its reason, the response quarantined."""
    warehouse, landing = context.resources.warehouse, context.resources.landing
    weather_api, alert_channels = context.resources.weather_api, context.resources.alert_channels
    first, last = window

    def on_open(state: BreakerState) -> None:
        alert = breaker_opened_alert(state, context)
        context.log.error(alert.text())
        with warehouse.connect() as con:
            raise_alert(con, alert_channels, alert, throttle_seconds())

    files, problems, attempts = [], {}, 0
    day = first
    while day <= last:
        rows, bad, day_attempts = fetch_day(weather_api, day, on_open)
        attempts += day_attempts
        for response, error in bad:
            copy = quarantine_bytes(
                response.body,
                f"{response.station}_{response.day}.json",
                response.url,
                error.reason,
                error.detail,
                landing.quarantine_root(),
                WEATHER.name,
                context.run_id,
            )
            described = f"{error.reason}: {error.detail} (response quarantined as {copy})"
            source, earlier = problems.get(day, (response.url, ""))
            problems[day] = (source, f"{earlier}; {described}" if earlier else described)
        if not bad:
            path = landing.dataset_dir(WEATHER.name) / f"{day.isoformat()}.csv"
            content = write_landing_csv(path, rows)
            files.append(LandingFile(path, day, "csv", hashlib.sha256(content).hexdigest(), len(content)))
        day += dt.timedelta(days=1)
    extra = {
        "api_attempts": attempts,
        "api_requests": len(files) * len(STATIONS),
        "breaker_state": weather_api.breaker().state().state,
    }
    return files, problems, extra


raw_weather = daily_raw_asset(WEATHER, land=land_weather, resources={"weather_api", "alert_channels"})

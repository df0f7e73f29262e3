"""raw/weather: hourly observations pulled from the weather API per station and local date.

Pulled sources land like pushed ones: each day's answers are written to landing/weather/YYYY-MM-DD.csv
(an audit trail, replayable), then the same validated loader as flights loads them. A service outage
fails the run with a clear message; nothing empty or stale is ever substituted.
"""

import datetime as dt
import hashlib

import dagster as dg

from assets import load_checks
from assets.daily_loader import QUARANTINE_RATE, RECONCILES, Gates
from assets.datasets import WEATHER
from assets.gated_load import load_and_gate
from assets.landing import LandingFile, quarantine_bytes
from assets.partitions import DAILY_PARTITIONS, window_dates
from assets.policies import OWNERS, RANGED_BACKFILL, TRANSIENT_RETRY
from assets.schemas import ORIGINS as STATIONS
from assets.weather_payload import PayloadError, observation_rows, write_landing_csv
from resources import settings
from resources.alert_log import raise_alert, run_url, throttle_seconds
from resources.alerting import Alert, AlertChannels
from resources.circuit_breaker import BreakerState, CircuitOpenError
from resources.landing import LandingArea
from resources.warehouse import WRITER_POOL, DuckDBWarehouse
from resources.weather_api import WeatherApiClient, WeatherApiError, WeatherResponse

RAW_WEATHER_KEY = dg.AssetKey(["raw", "weather"])
KEY_COLUMNS = ["temp", "wind_speed", "precip", "visib", "pressure"]


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


@dg.asset(
    key=RAW_WEATHER_KEY,
    description=(
        "Hourly weather at EWR, JFK and LGA per local date, pulled from the weather API "
        "(FLIGHTDECK_WEATHER_API_URL) with timeouts, bounded backoff and a shared circuit breaker; "
        "validated against the pandera WeatherSchema, bad rows and bad responses quarantined."
    ),
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=RANGED_BACKFILL,
    retry_policy=TRANSIENT_RETRY,
    pool=WRITER_POOL,
    group_name="raw",
    kinds={"duckdb", "pandera", "api"},
    owners=OWNERS,
    check_specs=load_checks.check_specs(RAW_WEATHER_KEY),
    code_version="1",
)
def raw_weather(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    landing: LandingArea,
    weather_api: WeatherApiClient,
    alert_channels: AlertChannels,
) -> dg.MaterializeResult:
    first, last = window_dates(context)

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
    gates = Gates(
        max_quarantine_rate=float(settings.get(settings.WEATHER_MAX_QUARANTINE_RATE)),
        min_volume_fraction=float(settings.get(settings.MIN_VOLUME_FRACTION)),
        # A day the service has no observations for (2013-12-31 in the real data) leaves the flights'
        # weather columns null; that is reported, but it must not block the flights marts.
        blocking=frozenset({RECONCILES, QUARANTINE_RATE}),
    )
    return load_and_gate(
        context,
        warehouse,
        landing,
        WEATHER,
        files,
        problems,
        (first, last),
        KEY_COLUMNS,
        gates,
        extra_metadata={
            "api_attempts": attempts,
            "api_requests": len(files) * len(STATIONS),
            "breaker_state": weather_api.breaker().state().state,
        },
    )

"""The daily datasets, each declared once: how its landing files map onto the generic validated loader,
what the catalog says about it and how each load is judged. assets/common/daily_raw.py builds each one's raw
asset, gates and metadata from its declaration alone."""

from flightdeck import settings
from flightdeck.loader import QUARANTINE_RATE, RECONCILES, DailyDataset, Gates
from flightdeck.schemas import FLIGHTS_NATURAL_KEY, FlightsSchema, WeatherSchema, column_names

FLIGHTS = DailyDataset(
    name="flights",
    model=FlightsSchema,
    partition_column="flight_date",
    # try(): NULL for an impossible date (Feb 30, month 13), as a text round trip would give, at a
    # fraction of its cost (-0.4 s on the 10x year).
    partition_expr="try(make_date({year}, {month}, {day}))",
    natural_key=FLIGHTS_NATURAL_KEY,
    description=(
        "Daily flights from landing/flights/YYYY-MM-DD.{csv,csv.gz,parquet}, validated against the pandera "
        "FlightsSchema. Invalid and duplicate rows go to quarantine.flights with reasons; each load "
        "replaces its partitions atomically and is audited in ops.load_audit. A day whose file is bad or "
        "that fails a gate is held back on its own; the rest of the window loads."
    ),
    key_columns=("dep_time", "arr_delay", "tailnum", "air_time"),
)

# What the weather landing file holds for a field an observation did not carry at all (vs. null).
MISSING_FIELD = "<missing>"

WEATHER = DailyDataset(
    name="weather",
    model=WeatherSchema,
    partition_column="weather_date",
    # Partitions are local dates at the airports; observations are stamped in UTC.
    partition_expr="CAST(timezone('America/New_York', {time_hour}) AS DATE)",
    natural_key=("weather_date", "origin", "time_hour"),
    row_rules=tuple(
        (f"{name}:missing", f"\"{name}\" = '{MISSING_FIELD}'") for name in column_names(WeatherSchema)
    ),
    description=(
        "Hourly weather at EWR, JFK and LGA per local date, pulled from the weather API "
        "(FLIGHTDECK_WEATHER_API_URL) with timeouts, bounded backoff and a shared circuit breaker; "
        "validated against the pandera WeatherSchema, bad rows and bad responses quarantined."
    ),
    key_columns=("temp", "wind_speed", "precip", "visib", "pressure"),
    max_quarantine_rate_setting=settings.WEATHER_MAX_QUARANTINE_RATE,
    # A day the service has no observations for (2013-12-31 in the real data) leaves the flights'
    # weather columns null; that is reported, but it must not block the flights marts.
    blocking_gates=frozenset({RECONCILES, QUARANTINE_RATE}),
    kinds=frozenset({"duckdb", "pandera", "api"}),
    pushed=False,  # pulled by its asset (assets/weather.py), landed like a pushed file
)

DAILY_DATASETS = (FLIGHTS, WEATHER)


def gates(dataset: DailyDataset) -> Gates:
    """The dataset's gates with the thresholds in force (settings)."""
    return Gates(
        max_quarantine_rate=float(settings.get(dataset.max_quarantine_rate_setting)),
        min_volume_fraction=float(settings.get(settings.MIN_VOLUME_FRACTION)),
        blocking=dataset.blocking_gates,
    )

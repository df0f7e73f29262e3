"""The daily datasets: how each one's landing files map onto the generic validated loader."""

from assets.daily_loader import DailyDataset
from assets.schemas import FLIGHTS_NATURAL_KEY, FlightsSchema, WeatherSchema, column_names

FLIGHTS = DailyDataset(
    name="flights",
    model=FlightsSchema,
    partition_column="flight_date",
    # try(): NULL for an impossible date (Feb 30, month 13), as a text round trip would give, at a
    # fraction of its cost (-0.4 s on the 10x year).
    partition_expr="try(make_date({year}, {month}, {day}))",
    natural_key=FLIGHTS_NATURAL_KEY,
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
)

DAILY_DATASETS = (FLIGHTS, WEATHER)

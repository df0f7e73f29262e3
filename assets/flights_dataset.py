"""The flights dataset: how its daily landing files map onto the generic validated loader."""

from assets.daily_loader import DailyDataset
from assets.schemas import FLIGHTS_NATURAL_KEY, FlightsSchema

FLIGHTS = DailyDataset(
    name="flights",
    model=FlightsSchema,
    partition_column="flight_date",
    partition_expr="TRY_CAST(printf('%04d-%02d-%02d', {year}, {month}, {day}) AS DATE)",
    natural_key=FLIGHTS_NATURAL_KEY,
)

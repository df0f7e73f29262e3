"""The daily partitions every dated dataset shares (local departure dates)."""

import datetime as dt

import dagster as dg

from flightdeck import settings

DAILY_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=settings.get(settings.PARTITION_START),
    end_date=settings.get(settings.PARTITION_END),
)


def window_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's partitions as an inclusive (first, last) date pair; one day or a backfill range."""
    window = context.partition_time_window
    first, last = window.start.date(), (window.end - dt.timedelta(days=1)).date()
    if first > last:  # Dagster accepts a reversed --partition-range and hands it over as an empty window
        raise dg.Failure(
            description=f"the partition range {first}...{last} is empty: its end is before its start "
            "(give FIRST...LAST with FIRST <= LAST)",
            allow_retries=False,
        )
    return first, last


def partition_bounds() -> tuple[dt.date, dt.date]:
    """(first partition date, exclusive end) of the configured range."""
    return (
        dt.date.fromisoformat(settings.get(settings.PARTITION_START)),
        dt.date.fromisoformat(settings.get(settings.PARTITION_END)),
    )

"""Dagster's own run tags that flightdeck sets, as the strings Dagster documents (its constants for them
live in a private module)."""

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
PRIORITY = "dagster/priority"

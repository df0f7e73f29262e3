"""flightdeck's Dagster instance storage (see event_log.py)."""

from flightdeck_instance.event_log import BatchingSqliteEventLogStorage

__all__ = ["BatchingSqliteEventLogStorage"]

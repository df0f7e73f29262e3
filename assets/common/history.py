"""An asset's materialization history, read a page at a time (the landing sensor, ops/pipeline_health)."""

from collections.abc import Iterator

import dagster as dg

PAGE_SIZE = 1000


def materializations(instance: dg.DagsterInstance, key: dg.AssetKey) -> Iterator[dg.EventLogRecord]:
    """Every materialization of `key`, oldest first; one page of records in memory at a time."""
    cursor = None
    while True:
        page = instance.fetch_materializations(key, limit=PAGE_SIZE, cursor=cursor, ascending=True)
        yield from page.records
        if not page.has_more:
            return
        cursor = page.cursor

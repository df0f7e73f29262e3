"""Held-back partitions shown failed, through Dagster's private event API; switchable (internals/).

Why: Dagster 1.13 cannot fail one partition of a ranged step (dagster-io/dagster#17836, #18123): a step
that succeeds materializes every partition of its range. flightdeck holds a bad day back on its own,
so after a ranged run that held some days back, the UI would show those days materialized. Dagster
shows a partition failed when its latest materialization attempt was planned in a run that failed and
was not followed by a materialization (`partition_status_cache.build_failed_and_in_progress_partition_
subset`). So, at the end of such a run, this module records a new planned event for each held-back
(asset, partition), and the run then fails: Dagster then shows exactly those partitions failed.

The stock path (`FLIGHTDECK_MARK_FAILED_PARTITIONS=false`, or another Dagster minor version, internals/): nothing
private is called; the run still fails naming the held-back days and each of their materializations
says `outcome: rejected` with the reason, but the partition status bar shows them materialized.
"""

from __future__ import annotations

import dagster as dg

from internals import enabled


def mark_partitions_failed(
    instance: dg.DagsterInstance, run: dg.DagsterRun, keys: list[dg.AssetKey], partitions: list[str], log=None
) -> bool:
    """Record a materialization attempt of every (key, partition) in `run`, which must then fail.
    Returns whether it did (False on the stock path)."""
    if not enabled("mark_failed_partitions"):
        return False
    from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent

    for key in keys:
        for partition in partitions:
            event = DagsterEvent.build_asset_materialization_planned_event(
                run.job_name, None, AssetMaterializationPlannedData(key, partition=partition)
            )
            instance.report_dagster_event(event, run.run_id)
    return True

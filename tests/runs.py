"""Launch real runs of the project's jobs on a real instance, as the UI or a sensor would."""

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from definitions import defs


def run_job(
    job_name: str,
    instance: dg.DagsterInstance,
    partition: str | None = None,
    partition_range: tuple[str, str] | None = None,
    asset_selection=None,
):
    job = defs.resolve_job_def(job_name)
    tags = {}
    if partition_range:
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: partition_range[0],
            ASSET_PARTITION_RANGE_END_TAG: partition_range[1],
        }
    return job.execute_in_process(
        instance=instance,
        partition_key=partition,
        tags=tags,
        raise_on_error=False,
        asset_selection=asset_selection,
    )


def load_reference(instance: dg.DagsterInstance):
    result = run_job("reference_refresh", instance)
    assert result.success, failure_messages(result)
    return result


def failure_messages(result) -> str:
    return "\n".join(
        str(event.event_specific_data.error.message if event.event_specific_data.error else event.message)
        for event in result.all_events
        if event.is_failure
    )

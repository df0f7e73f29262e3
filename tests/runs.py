"""Launch real runs of the project's jobs on a real instance, as the UI or a sensor would."""

import dagster as dg

from definitions import defs
from jobs import tags as dagster_tags
from tests.conftest import ROOT


def run_job(
    job_name: str,
    instance: dg.DagsterInstance,
    partition: str | None = None,
    partition_range: tuple[str, str] | None = None,
    asset_selection=None,
    tags: dict[str, str] | None = None,
):
    job = defs.resolve_job_def(job_name)
    tags = dict(tags or {})
    if partition_range:
        tags |= {
            dagster_tags.PARTITION_RANGE_START: partition_range[0],
            dagster_tags.PARTITION_RANGE_END: partition_range[1],
        }
    return job.execute_in_process(
        instance=instance,
        partition_key=partition,
        tags=tags,
        raise_on_error=False,
        asset_selection=asset_selection,
    )


def run_reconstructed(job_name: str, instance: dg.DagsterInstance):
    """Run a job loaded from definitions.py as a code location loads it, so the run knows its repository
    (assets that read the whole asset graph, like ops/pipeline_health, need that)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repository = ReconstructableRepository.for_file(
        str(ROOT / "definitions.py"), "defs", working_directory=str(ROOT)
    )
    return dg.execute_job(
        repository.get_reconstructable_job(job_name), instance=instance, raise_on_error=False
    )


def load_reference(instance: dg.DagsterInstance):
    result = run_job("reference_refresh", instance)
    assert result.success, failure_messages(result)
    return result


def _error_chain(error) -> list[str]:
    """A serialised error and its causes (a step that exhausted its retries hides the original error)."""
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause or error.context
    return messages


def failure_messages(result) -> str:
    lines = []
    for event in result.all_events:
        if event.is_failure:
            error = getattr(event.event_specific_data, "error", None)
            lines.extend(_error_chain(error) if error else [event.message or ""])
    return "\n".join(lines)


def failed_partitions(instance: dg.DagsterInstance, key: dg.AssetKey) -> list[str]:
    """The partitions the UI shows failed for `key` (Dagster's own partition status)."""
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    from assets.common.partitions import DAILY_PARTITIONS

    value = get_and_update_asset_status_cache_value(instance, key, DAILY_PARTITIONS)
    if value is None:
        return []
    return sorted(value.deserialize_failed_partition_subsets(DAILY_PARTITIONS).get_partition_keys())


def partition_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, dict[str, object]]:
    """partition -> the metadata values of its latest materialization."""
    latest = {}
    for record in instance.fetch_materializations(key, limit=10_000, ascending=True).records:
        latest[record.partition_key] = {
            name: value.value for name, value in record.asset_materialization.metadata.items()
        }
    return latest

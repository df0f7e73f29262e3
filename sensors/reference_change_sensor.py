"""Rebuild the marts when a reference snapshot's content changed, and only then.

The nightly reference job materializes every snapshot; each carries a data version that is a hash of
its content (assets/reference.py). This sensor compares each snapshot's latest data version with the
one it saw last (its cursor): equal versions — the usual night — request nothing; a changed version
requests one ranged run of the marts over every loaded day, so history reflects the new reference data.
"""

import json

import dagster as dg

from assets.flights import RAW_FLIGHTS_KEY
from assets.reference import REFERENCE_ASSETS
from jobs import tags as dagster_tags
from jobs.pipelines import marts_rebuild_job

DATA_VERSION_TAG = "dagster/data_version"


def latest_versions(instance: dg.DagsterInstance) -> dict[str, str]:
    versions = {}
    for asset in REFERENCE_ASSETS:
        event = instance.get_latest_materialization_event(asset.key)
        if event and event.asset_materialization:
            versions[asset.key.to_user_string()] = event.asset_materialization.tags.get(DATA_VERSION_TAG, "")
    return versions


@dg.sensor(
    job=marts_rebuild_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a ranged marts rebuild when a reference snapshot's data version changes.",
)
def reference_change_sensor(context: dg.SensorEvaluationContext):
    seen: dict[str, str] = json.loads(context.cursor or "{}")
    current = latest_versions(context.instance)
    # A snapshot seen for the first time is the bootstrap, which runs before any mart is built.
    changed = sorted(name for name, version in current.items() if name in seen and seen[name] != version)
    cursor = json.dumps({**seen, **current}, sort_keys=True)
    if not changed:
        return dg.SensorResult(skip_reason=dg.SkipReason("reference data unchanged"), cursor=cursor)
    loaded = sorted(context.instance.get_materialized_partitions(RAW_FLIGHTS_KEY))
    if not loaded:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("reference changed, no marts built yet"), cursor=cursor
        )
    tags = {
        dagster_tags.PARTITION_RANGE_START: loaded[0],
        dagster_tags.PARTITION_RANGE_END: loaded[-1],
        "flightdeck/trigger": "reference_change",
        "flightdeck/changed": ",".join(changed),
    }
    run_key = "reference-change:" + ",".join(f"{name}={current[name]}" for name in changed)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key, tags=tags)], cursor=cursor)

"""The file-arrival sensors, one per dataset pushed to landing/<name>/ (flightdeck/datasets.py): new or
changed files become (ranged) runs of the dataset's <name>_pipeline job."""

import dagster as dg

from assets.common.daily_raw import raw_key
from assets.common.history import materializations
from assets.common.partitions import partition_bounds
from assets.flights import LANDING_DATASETS
from assets.reference import REFERENCE_ASSETS
from flightdeck import settings
from flightdeck.landing import printable, quarantine_file
from flightdeck.landing_files import LandingCursor, contiguous_ranges, run_key, scan
from flightdeck.loader import DailyDataset
from jobs import tags as dagster_tags
from jobs.pipelines import LANDING_JOBS, reference_job
from resources.landing import LandingArea
from sensors import EVERY_DAEMON_LOOP_SECONDS

REFERENCE_KEYS = [asset.key for asset in REFERENCE_ASSETS]
# At most this many consecutive days in one run: a burst of 365 files is one run, not 365 processes.
MAX_DAYS_PER_RUN = 366


def latest_materialization_by_partition(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, float]:
    """partition key -> timestamp of the asset's latest materialization of it."""
    return {r.partition_key: r.timestamp for r in materializations(instance, key) if r.partition_key}


def reference_bootstrap(instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """On a fresh instance the marts need the reference snapshots first: request them once, ahead of the
    landing runs (once per landing sensor: a second snapshot of unchanged tables changes nothing). Its
    priority puts it first in the run queue and first for the writer pool's slot whenever steps wait for
    it, so no landing run's dbt step gets there before it."""
    if all(instance.get_latest_materialization_event(key) for key in REFERENCE_KEYS):
        return []
    return [
        dg.RunRequest(
            run_key="reference-bootstrap", job_name=reference_job.name, tags={dagster_tags.PRIORITY: "1"}
        )
    ]


def landing_sensor(dataset: DailyDataset, job) -> dg.SensorDefinition:
    """<name>_landing_sensor: every new or changed file of landing/<name>/ settled, checked against the
    file contract (a rejected one quarantined once, with its reason) and requested as a run of `job`."""
    key = raw_key(dataset)

    @dg.sensor(
        name=f"{dataset.name}_landing_sensor",
        jobs=[job, reference_job],
        minimum_interval_seconds=EVERY_DAEMON_LOOP_SECONDS,  # a new file waits one loop at most
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Requests a {job.name} run for every new or changed file in landing/{dataset.name}, batching "
            "consecutive days into one ranged run. Reset its cursor to process every file found again."
        ),
    )
    def sensor(context: dg.SensorEvaluationContext, landing: LandingArea):
        cursor = LandingCursor.load(context.cursor)
        start, end_exclusive = partition_bounds()
        settle = float(settings.get(settings.LANDING_SETTLE_SECONDS))
        result = scan(landing.dataset_dir(dataset.name), cursor, start, end_exclusive, settle)

        for rejected in result.rejected:
            error, name = rejected.error, printable(rejected.error.path.name)
            try:
                copy = quarantine_file(
                    error,
                    landing.quarantine_root(),
                    dataset.name,
                    run_id=f"sensor:{dataset.name}_landing_sensor",
                )
                context.log.warning(f"quarantined {name}: {error.reason}: {error.detail} -> {copy}")
            except OSError as exc:  # full disk, read-only quarantine, a name the disk refuses: reported once
                context.log.error(
                    f"rejected {name}: {error.reason}: {error.detail}; no quarantine copy: {exc}"
                )
            # Recorded either way, so the next tick neither copies nor reports this version again.
            cursor.rejected[error.path.name] = rejected.size_mtime

        # Files the cursor has never seen (first start, or a reset cursor: "process all partitions found")
        # are skipped when their partition was materialized after the file last changed: not missing, not stale.
        unseen = [f for f in result.ready if f.path.name not in cursor.requested]
        if unseen:
            loaded_at = latest_materialization_by_partition(context.instance, key)
            for f in unseen:
                if loaded_at.get(f.partition_date.isoformat(), 0.0) * 1e9 > f.signature[1]:
                    cursor.requested[f.path.name] = f.signature
                    result.ready.remove(f)

        by_day = {f.partition_date: f for f in result.ready}
        requests = reference_bootstrap(context.instance) if by_day else []
        for first, last in contiguous_ranges(list(by_day), MAX_DAYS_PER_RUN):
            files = [f for day, f in by_day.items() if first <= day <= last]
            tags = {"flightdeck/trigger": "landing_file", "flightdeck/files": str(len(files))}
            if first == last:
                requests.append(
                    dg.RunRequest(
                        run_key=run_key(files, dataset.name),
                        job_name=job.name,
                        partition_key=first.isoformat(),
                        tags=tags,
                    )
                )
            else:
                tags |= {
                    dagster_tags.PARTITION_RANGE_START: first.isoformat(),
                    dagster_tags.PARTITION_RANGE_END: last.isoformat(),
                }
                requests.append(
                    dg.RunRequest(run_key=run_key(files, dataset.name), job_name=job.name, tags=tags)
                )
            for f in files:
                cursor.requested[f.path.name] = f.signature

        if not requests:
            reason = f"no new landing files ({len(result.settling)} still settling, {len(result.rejected)} rejected)"
            return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor.dump())
        return dg.SensorResult(run_requests=requests, cursor=cursor.dump())

    return sensor


LANDING_SENSORS = [landing_sensor(dataset, LANDING_JOBS[dataset.name]) for dataset in LANDING_DATASETS]
[flights_landing_sensor] = [sensor for sensor in LANDING_SENSORS if sensor.name == "flights_landing_sensor"]

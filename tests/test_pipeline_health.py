"""ops/pipeline_health equals what the test computes from the runs it launched."""

import dagster as dg

from flightdeck.health_metrics import percentile
from tests.runs import failure_messages, run_job, run_reconstructed


def test_health_figures_match_the_runs_launched(env, instance):
    ok = [run_job("reference_refresh", instance) for _ in range(2)]
    env.landing_file("2013-01-03").unlink()
    failed = run_job("flights_pipeline", instance, partition="2013-01-03")
    assert all(r.success for r in ok) and not failed.success

    result = run_reconstructed("ops_nightly", instance)
    assert result.success, failure_messages(result)

    def duration(r):
        record = instance.get_run_record_by_id(r.run_id)
        return record.end_time - record.start_time

    rows = env.query(
        """SELECT job, runs, succeeded, failed, success_rate, error_rate, p50_s, p95_s, sla_compliance
           FROM ops.pipeline_health ORDER BY job"""
    )
    by_job = {row[0]: row[1:] for row in rows}
    ref = by_job["reference_refresh"]
    assert ref[:5] == (2, 2, 0, 1.0, 0.0)
    durations = [duration(r) for r in ok]
    assert (
        abs(ref[5] - percentile(durations, 0.5)) < 1e-6 and abs(ref[6] - percentile(durations, 0.95)) < 1e-6
    )
    assert ref[7] == 1.0  # both within the 300 s SLA
    assert by_job["flights_pipeline"][:5] == (1, 0, 1, 0.0, 1.0)

    materialization = instance.get_latest_materialization_event(dg.AssetKey(["ops", "pipeline_health"]))
    metadata = materialization.asset_materialization.metadata
    assert metadata["reference_refresh/success_rate"].value == 1.0
    assert "| job" in metadata["health"].value
    # Freshness per asset: the reference snapshots were just loaded, raw/flights never succeeded.
    freshness = dict(env.query("SELECT asset, state FROM ops.asset_freshness"))
    assert freshness["raw/airlines"] == "pass" and freshness["raw/flights"] == "unknown"
    assert metadata["assets_stale"].value == 0 and "| asset" in metadata["freshness"].value


def test_percentile_matches_numpy_default():
    import numpy as np

    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    for q in (0.5, 0.95, 0.99):
        assert abs(percentile(values, q) - float(np.percentile(values, q * 100))) < 1e-12
    assert percentile([], 0.5) is None

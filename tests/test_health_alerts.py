"""One real cause per alert kind, on a real instance: a failed gate, a volume anomaly, an SLA breach, a
run killed by its timeout, a high error rate, a stale asset, a circuit breaker opening (in
test_raw_weather.py) — and throttling: a backfill failing a gate on every day sends one message."""

import logging
import re
import time

import dagster as dg

from definitions import defs
from flightdeck import sla
from resources.alerting import AlertChannels
from resources.warehouse import DuckDBWarehouse
from sensors.health_alert_sensor import evaluate, health_alert_sensor
from tests.alert_servers import webhook_server
from tests.loading import csv_lines, set_field, write_lines
from tests.runs import failure_messages, load_reference, run_job

RAW_FLIGHTS = [dg.AssetKey(["raw", "flights"])]
GRAPH = defs.resolve_asset_graph()


def kinds(alerts):
    return sorted(
        (a.kind, a.details.get("check") or a.details.get("job") or a.details.get("asset")) for a in alerts
    )


def corrupt(env, day, share=50):
    lines = csv_lines(env, day)
    for i in range(1, 1 + len(lines) // share):
        lines[i] = set_field(lines[i], "origin", "XXX")
    write_lines(env, day, lines)


def test_a_failed_gate_alerts_once_through_the_sensor_and_a_backfill_sends_one_message(env, instance):
    for day in ("2013-01-06", "2013-01-07", "2013-01-08"):
        corrupt(env, day)
        assert not run_job("flights_pipeline", instance, partition=day, asset_selection=RAW_FLIGHTS).success
    with webhook_server() as (hook_url, posts):
        with dg.build_sensor_context(
            instance=instance,
            definitions=defs,
            resources={
                "alert_channels": AlertChannels(webhook_url=hook_url),
                "warehouse": DuckDBWarehouse(path=str(env.duckdb_path)),
            },
        ) as context:
            result = health_alert_sensor(context)
        assert [p["kind"] for p in posts] == ["check_failure"]  # three failing partitions, one message
        body = posts[0]
        assert body["fields"]["check"] == "quarantine_rate_below_threshold"
        assert body["fields"]["asset"] == "raw/flights" and "/runs/" in body["fields"]["run_url"]
        assert "quarantine rate above" in body["fields"]["error"]
    recorded = env.query("SELECT kind, status FROM ops.alerts ORDER BY created_at")
    assert recorded == [
        ("check_failure", "sent"),
        ("check_failure", "suppressed"),
        ("check_failure", "suppressed"),
    ]
    # The cursor moved past those evaluations: the next tick raises nothing new.
    again, _ = evaluate(instance, GRAPH, result.cursor, time.time())
    assert [a for a in again if a.kind == "check_failure"] == []


def test_volume_anomaly(env, instance):
    days = [f"2013-01-{d:02d}" for d in range(1, 6)]
    assert run_job(
        "flights_pipeline", instance, partition_range=(days[0], days[3]), asset_selection=RAW_FLIGHTS
    ).success
    lines = csv_lines(env, days[4])
    write_lines(env, days[4], lines[: len(lines) // 5])  # a partial delivery: a fifth of the day
    assert not run_job("flights_pipeline", instance, partition=days[4], asset_selection=RAW_FLIGHTS).success
    alerts, _ = evaluate(instance, GRAPH, None, time.time())
    assert ("volume_anomaly", "volume_within_expected_range") in kinds(alerts)


def test_sla_breach_of_a_slow_run(env, instance, monkeypatch):
    # Any real run is slower than 10 ms (the reference refresh itself now takes under half a second).
    monkeypatch.setitem(sla.JOB_SLA_SECONDS, "reference_refresh", 0.01)
    load_reference(instance)
    alerts, _ = evaluate(instance, GRAPH, None, time.time())
    [breach] = [a for a in alerts if a.kind == "sla_breach"]
    assert breach.details["job"] == "reference_refresh"
    # Sub-second SLAs read as such.
    assert re.fullmatch(r"took \d+\.\d\d s, SLA 0\.01 s", breach.details["error"])


def test_a_run_killed_by_its_timeout_is_an_sla_breach(env, instance):
    # Dagster's own run monitoring decides and acts, exactly as the daemon does every poll.
    from dagster._daemon.monitoring.run_monitoring import check_run_timeout

    job = defs.resolve_job_def("ops_nightly")
    run = instance.create_run_for_job(job, tags={"dagster/max_runtime": "1"})
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name),
        run_id=run.run_id,
    )
    time.sleep(1.5)
    record = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))[0]
    check_run_timeout(instance, record, logging.getLogger("test"), 0)
    assert instance.get_run_by_id(run.run_id).status in (
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED,
    )
    alerts, _ = evaluate(instance, GRAPH, None, time.time())
    [breach] = [a for a in alerts if a.kind == "sla_breach"]
    assert (
        "killed by its timeout" in breach.summary
        and "maximum runtime of 1 seconds" in breach.details["error"]
    )


def test_high_error_rate_over_the_last_ten_runs(env, instance):
    ok_day, missing_day = "2013-01-02", "2013-02-01"  # no landing file for February in the test data
    outcomes = [True] * 6 + [False] * 4
    for succeed in outcomes:
        result = run_job(
            "flights_pipeline",
            instance,
            partition=ok_day if succeed else missing_day,
            asset_selection=RAW_FLIGHTS,
        )
        assert result.success == succeed, failure_messages(result)
    alerts, _ = evaluate(instance, GRAPH, None, time.time())
    [rate] = [a for a in alerts if a.kind == "high_error_rate"]
    assert rate.summary == "flights_pipeline: 4 of its last 10 runs failed"


def test_a_stale_asset_raises_a_freshness_alert(env, instance):
    assert run_job("flights_pipeline", instance, partition="2013-01-02", asset_selection=RAW_FLIGHTS).success
    now = time.time()
    fresh, _ = evaluate(instance, GRAPH, None, now)
    assert [a for a in fresh if a.kind == "freshness"] == []
    stale, _ = evaluate(instance, GRAPH, None, now + 27 * 3600)  # a day and 3 hours without a new load
    assert [a.details["asset"] for a in stale if a.kind == "freshness"] == ["raw/flights"]

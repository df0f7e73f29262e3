"""The lake on the launch paths a user has: a backfill from the UI (the same GraphQL call) under
`dagster dev`, with the landing sensor's runs writing the same days at the same time (the writer pool
admits several runs on the lake), then `dg launch` from a shell; every day once in raw and the marts.
A scratch catalog on the local PostgreSQL; skipped with the reason where it is absent."""

import subprocess

import dagster as dg
import pytest

from flightdeck import settings
from tests.conftest import ROOT
from tests.dagster_dev import BIN, dagster_dev, flightdeck_env, launch_backfill, wait_until
from tests.lake_fixtures import lake_query
from tests.postgres import requires_postgres
from tests.production_stack import prepare_data
from tests.test_one_writer import FLIGHTS_PIPELINE

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.slow]
DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]
CLI_DAY = "2013-01-04"


def rows_per_day(data) -> dict[str, int]:
    return {
        day: len((data / "landing" / "flights" / f"{day}.csv").read_text().splitlines()) - 1
        for day in [*DAYS, CLI_DAY]
    }


def test_a_ui_backfill_beside_the_sensor_s_runs_then_dg_launch_on_the_lake(tmp_path, catalog, monkeypatch):
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    prepare_data(data, [*DAYS, CLI_DAY])
    expected = rows_per_day(data)
    lake = {
        settings.WAREHOUSE: "ducklake",
        settings.DUCKLAKE_CATALOG: catalog,
        settings.DUCKLAKE_DATA_PATH: str(tmp_path / "lake"),
    }
    for name, value in lake.items():
        monkeypatch.setenv(name, value)  # for lake_query
    (data / "landing" / "flights" / f"{CLI_DAY}.csv").rename(tmp_path / f"{CLI_DAY}.csv")  # for dg, later
    with dagster_dev(data, home, lake) as (base_url, instance):
        backfill_id = launch_backfill(base_url, DAYS, FLIGHTS_PIPELINE)

        def all_done():
            backfill = instance.get_backfill(backfill_id)
            runs = instance.get_runs()
            return (
                backfill.status.value.startswith("COMPLETED")
                and runs
                and all(r.is_finished for r in runs)
                and runs
            )

        runs = wait_until(all_done, timeout=600, interval=2, what="the backfill and the sensor's runs")
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, [
            (r.job_name, r.status) for r in runs
        ]
        assert len([r for r in runs if r.tags.get("dagster/backfill") == backfill_id]) == 1  # one ranged run
        assert any(r.tags.get("dagster/sensor_name") == "flights_landing_sensor" for r in runs)
    assert not (data / "warehouse.duckdb").exists()  # nothing went to the file

    (tmp_path / f"{CLI_DAY}.csv").rename(data / "landing" / "flights" / f"{CLI_DAY}.csv")
    env = flightdeck_env(data, home) | lake
    done = subprocess.run(
        [str(BIN / "dg"), "launch", "--assets", "raw/flights*", "--partition", CLI_DAY],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    held = dict(
        lake_query("SELECT strftime(flight_date, '%Y-%m-%d'), count(*) FROM raw.flights GROUP BY ALL")
    )
    assert held == expected
    marts = dict(
        lake_query("SELECT strftime(flight_date, '%Y-%m-%d'), count(*) FROM marts.fct_flights GROUP BY ALL")
    )
    assert marts == expected
    audits = lake_query("SELECT count(*), count(DISTINCT partition_date) FROM ops.load_audit")
    assert audits[0][1] == len(expected)

"""kill -9 of a run's worker in the middle of its write, on the production set-up (PostgreSQL instance,
code server + webserver + daemon as separate processes): detected, failed, retried, exact rows; with the
warehouse on the DuckDB file and on a DuckLake (its catalog a scratch PostgreSQL database)."""

import contextlib
import os
import signal

import dagster as dg
import duckdb
import pytest

from flightdeck import lake, settings
from tests.dagster_dev import wait_until
from tests.postgres import PG_HOST, PG_PORT, PG_USER, requires_postgres, scratch_database
from tests.production_stack import prepare_data, production_stack

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.slow]
DAY = "2013-01-05"


@pytest.mark.parametrize("warehouse", ["duckdb", "ducklake"])
def test_run_killed_mid_write_is_failed_retried_and_leaves_exact_rows(tmp_path, monkeypatch, warehouse):
    data = tmp_path / "data"
    prepare_data(data, [DAY])
    expected_rows = len((data / "landing" / "flights" / f"{DAY}.csv").read_text().splitlines()) - 1
    marker = tmp_path / "crash-marker"
    extra_env = {"FLIGHTDECK_CRASH_TEST_MARKER": str(marker)}
    catalog = contextlib.ExitStack()
    if warehouse == "ducklake":
        name = catalog.enter_context(scratch_database())
        extra_env |= {
            settings.WAREHOUSE: "ducklake",
            settings.DUCKLAKE_CATALOG: f"dbname={name} host={PG_HOST} port={PG_PORT} user={PG_USER}",
            settings.DUCKLAKE_DATA_PATH: str(data / "lake"),
        }

    with catalog:
        with production_stack(tmp_path, monkeypatch, extra_env) as stack:
            # The sensor bootstraps the reference data, then requests the day's run, which pauses in its
            # open transaction and tells us its pid: kill -9 it there.
            wait_until(marker.exists, timeout=300, interval=1, what="the load to reach its commit")
            os.kill(int(marker.read_text()), signal.SIGKILL)

            with dg.DagsterInstance.from_config(str(stack.home)) as instance:

                def retried_success():
                    runs = instance.get_runs(dg.RunsFilter(job_name="flights_pipeline"))
                    done = [r for r in runs if r.is_finished]
                    return len(done) == 2 and len(runs) == 2 and runs

                runs = wait_until(
                    retried_success, timeout=400, interval=2, what="the crash to be detected and retried"
                )
                retry, crashed = runs  # newest first
                assert crashed.status == dg.DagsterRunStatus.FAILURE
                assert retry.status == dg.DagsterRunStatus.SUCCESS
                assert retry.tags.get("dagster/parent_run_id") == crashed.run_id
                crash_events = instance.all_logs(crashed.run_id)
                messages = [e.message or "" for e in crash_events]
                assert any("exit code -9" in m or "signal 9" in m or "SIGKILL" in m for m in messages), (
                    messages[-8:]
                )

        con = (
            lake.connect(
                extra_env[settings.DUCKLAKE_CATALOG],
                extra_env[settings.DUCKLAKE_DATA_PATH],
                settings.duckdb_extension_dir(),
                read_only=True,
            )
            if warehouse == "ducklake"
            else duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
        )
        try:
            rows = con.execute(
                "SELECT count(*), count(DISTINCT (carrier, flight, origin)) FROM raw.flights WHERE flight_date = ?",
                [DAY],
            ).fetchone()
            assert rows == (expected_rows, expected_rows)  # none missing, none doubled
            # The killed load never committed: exactly one audited load, by the retry.
            assert con.execute("SELECT count(*), min(run_id) FROM ops.load_audit").fetchone() == (
                1,
                retry.run_id,
            )
            assert con.execute("SELECT count(*) FROM marts.fct_flights").fetchone() == (expected_rows,)
        finally:
            con.close()

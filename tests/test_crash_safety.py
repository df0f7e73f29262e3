"""kill -9 of a run's worker in the middle of its write, on the production set-up (PostgreSQL instance,
code server + webserver + daemon as separate processes): detected, failed, retried, exact rows."""

import os
import shutil
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from tests.conftest import DEMO_DIR
from tests.dagster_dev import free_port, start_process_group, stop_process_group, wait_until
from tests.postgres import PG_HOST, PG_PORT, PG_USER, requires_postgres, scratch_database

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAY = "2013-01-05"


def test_run_killed_mid_write_is_failed_retried_and_leaves_exact_rows(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "landing" / "flights").mkdir(parents=True)
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    shutil.copy(DEMO_DIR / "landing" / "flights" / f"{DAY}.csv", data / "landing" / "flights")
    expected_rows = len((data / "landing" / "flights" / f"{DAY}.csv").read_text().splitlines()) - 1
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = 5  # faster detection for the test only
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    grpc_port, web_port = free_port(), free_port()
    (tmp_path / "workspace.yaml").write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": "flightdeck"}}
                ]
            }
        )
    )
    marker = tmp_path / "crash-marker"

    with scratch_database() as db, ExitStack() as stack:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": PG_HOST,
            "DAGSTER_PG_PORT": str(PG_PORT),
            "DAGSTER_PG_DB": db,
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": "",
            "FLIGHTDECK_DATA_DIR": str(data),
            "FLIGHTDECK_DUCKDB_PATH": str(data / "warehouse.duckdb"),
            "FLIGHTDECK_REFERENCE_DB_URL": f"sqlite:///{data / 'reference.sqlite'}",
            "FLIGHTDECK_LANDING_SETTLE_SECONDS": "0",
            "FLIGHTDECK_CRASH_TEST_MARKER": str(marker),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
        for name in (
            "DAGSTER_PG_HOST",
            "DAGSTER_PG_PORT",
            "DAGSTER_PG_DB",
            "DAGSTER_PG_USER",
            "DAGSTER_PG_PASSWORD",
        ):
            monkeypatch.setenv(name, env[name])  # this process reads the same instance
        workspace = str(tmp_path / "workspace.yaml")
        processes = [
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-h",
                "127.0.0.1",
                "-p",
                str(grpc_port),
                "-f",
                "definitions.py",
                "--location-name",
                "flightdeck",
            ],
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", workspace],
            [str(BIN / "dagster-daemon"), "run", "-w", workspace],
        ]
        for i, cmd in enumerate(processes):
            proc, log = start_process_group(cmd, env, tmp_path / f"process{i}.log")
            stack.callback(stop_process_group, proc, log)
            if i == 0:  # user code first: the webserver and daemon load it from the code server
                wait_until(
                    lambda: "Started Dagster code server" in (tmp_path / "process0.log").read_text(),
                    timeout=180,
                    what="the code server",
                )

        # The sensor bootstraps the reference data, then requests the day's run, which pauses in its
        # open transaction and tells us its pid: kill -9 it there.
        wait_until(marker.exists, timeout=300, interval=1, what="the load to reach its commit")
        os.kill(int(marker.read_text()), signal.SIGKILL)

        with dg.DagsterInstance.from_config(str(home)) as instance:

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
            assert any("exit code -9" in m or "signal 9" in m or "SIGKILL" in m for m in messages), messages[
                -8:
            ]

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT (carrier, flight, origin)) FROM raw.flights WHERE flight_date = ?",
            [DAY],
        ).fetchone()
        assert rows == (expected_rows, expected_rows)  # none missing, none doubled
        # The killed load never committed: exactly one audited load, by the retry.
        assert con.execute("SELECT count(*), min(run_id) FROM ops.load_audit").fetchone() == (1, retry.run_id)
        assert con.execute("SELECT count(*) FROM marts.fct_flights").fetchone() == (expected_rows,)
    finally:
        con.close()

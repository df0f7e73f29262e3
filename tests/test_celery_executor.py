"""The compute scale-out path, proven with real components: a run's steps executed by a dagster-celery
worker over the local RabbitMQ (issue: production). Skipped where RabbitMQ is not reachable."""

import os
import subprocess

import dagster as dg
import pytest

from tests.celery_workers import BIN, BROKER, purge_default_queue, requires_rabbitmq, start_worker
from tests.conftest import ROOT
from tests.dagster_dev import stop_process_group

pytestmark = [pytest.mark.slow, requires_rabbitmq]


def test_steps_run_on_a_celery_worker_over_rabbitmq(env, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    purge_default_queue()  # steps of an earlier, interrupted test run must not reach this worker
    run_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FLIGHTDECK_EXECUTOR": "celery",
        "FLIGHTDECK_CELERY_BROKER_URL": BROKER,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    worker, log = start_worker("flightdeck-test", run_env, tmp_path)  # one DuckDB writer at a time
    try:
        done = subprocess.run(
            [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-f",
                "definitions.py",
                "-j",
                "reference_refresh",
            ],
            cwd=ROOT,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        stop_process_group(worker, log)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        starts = [
            e
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        ]
        assert len(starts) == 3  # raw/airlines, raw/airports, raw/planes
        run_process = {
            e.dagster_event.pid
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "RUN_START"
        }
        assert {e.dagster_event.pid for e in starts}.isdisjoint(
            run_process
        )  # the steps ran in the worker, not the run
    assert "succeeded" in (tmp_path / "flightdeck-test.log").read_text()
    assert env.query("SELECT count(*) FROM raw.airlines") == [(16,)]

"""The compute scale-out path, proven with real components: a run's steps executed by a dagster-celery
worker over the local RabbitMQ (issue: production). Skipped where RabbitMQ is not reachable."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.conftest import ROOT
from tests.dagster_dev import start_process_group, stop_process_group, wait_until

BIN = Path(sys.executable).parent
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
CELERY_QUEUE = "dagster"  # dagster-celery's default queue; a step tag `dagster-celery/queue` routes elsewhere


def rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=3):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not rabbitmq_reachable(), reason="RabbitMQ is not reachable on 127.0.0.1:5672"),
]


def purge_default_queue() -> None:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as connection:
        try:
            connection.default_channel.queue_purge(CELERY_QUEUE)
        except Exception as exc:  # a queue that does not exist yet has nothing in it
            if "NOT_FOUND" not in str(exc):
                raise


def test_steps_run_on_a_celery_worker_over_rabbitmq(env, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    purge_default_queue()  # steps of an earlier, interrupted test run must not reach this worker
    worker_config = tmp_path / "celery.yaml"
    worker_config.write_text(yaml.safe_dump({"broker": BROKER, "backend": "rpc://"}))
    run_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FLIGHTDECK_EXECUTOR": "celery",
        "FLIGHTDECK_CELERY_BROKER_URL": BROKER,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    worker, log = start_process_group(
        [
            str(BIN / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(worker_config),
            "-n",
            f"flightdeck-test-{os.getpid()}@localhost",
            "--",
            "--concurrency=1",  # one DuckDB writer at a time on this worker
        ],
        run_env,
        tmp_path / "worker.log",
    )
    try:
        wait_until(lambda: "ready" in (tmp_path / "worker.log").read_text(), 120, what="the Celery worker")
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
    assert "succeeded" in (tmp_path / "worker.log").read_text()
    assert env.query("SELECT count(*) FROM raw.airlines") == [(16,)]

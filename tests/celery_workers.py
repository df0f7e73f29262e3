"""dagster-celery workers over the local RabbitMQ for the scale-out tests; skipped where it is absent."""

import os
import socket
import sys
from pathlib import Path

import pytest
import yaml

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


requires_rabbitmq = pytest.mark.skipif(
    not rabbitmq_reachable(), reason="RabbitMQ is not reachable on 127.0.0.1:5672"
)


def purge_default_queue() -> None:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as connection:
        try:
            connection.default_channel.queue_purge(CELERY_QUEUE)
        except Exception as exc:  # a queue that does not exist yet has nothing in it
            if "NOT_FOUND" not in str(exc):
                raise


def start_worker(name: str, env: dict[str, str], folder: Path):
    """A worker running one step at a time, ready to take steps; returns (process, its log)."""
    config = folder / "celery.yaml"
    config.write_text(yaml.safe_dump({"broker": BROKER, "backend": "rpc://"}))
    log_path = folder / f"{name}.log"
    worker, log = start_process_group(
        [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config),
         "-n", f"{name}-{os.getpid()}@localhost", "--", "--concurrency=1"],
        env, log_path,
    )  # fmt: skip
    try:
        wait_until(lambda: "ready" in log_path.read_text(), 120, what=f"the Celery worker {name}")
    except BaseException:
        stop_process_group(worker, log)
        raise
    return worker, log

"""The production set-up of deploy/ on 127.0.0.1: PostgreSQL instance (a scratch database), code
server, webserver and daemon as separate processes. Used by the crash-safety tests."""

import os
import shutil
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import DEMO_DIR, ROOT
from tests.dagster_dev import free_port, start_process_group, stop_process_group, wait_until
from tests.postgres import PG_HOST, PG_PORT, PG_USER, scratch_database

BIN = Path(sys.executable).parent
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")


@dataclass
class ProductionStack:
    root: Path
    data: Path
    home: Path
    env: dict[str, str]
    workspace: str
    web_url: str
    stack: ExitStack
    daemons_started: int = 0
    daemon: object = None  # the latest daemon process

    def start(self, name: str, cmd: list[str]):
        proc, log = start_process_group(cmd, self.env, self.root / f"{name}.log")
        self.stack.callback(stop_process_group, proc, log)
        return proc, log

    def start_daemon(self):
        self.daemons_started += 1
        self.daemon, _ = self.start(
            f"daemon-{self.daemons_started}", [str(BIN / "dagster-daemon"), "run", "-w", self.workspace]
        )


def prepare_data(data: Path, days: list[str]) -> None:
    (data / "landing" / "flights").mkdir(parents=True)
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    for day in days:
        shutil.copy(DEMO_DIR / "landing" / "flights" / f"{day}.csv", data / "landing" / "flights")


@contextmanager
def production_stack(tmp_path: Path, monkeypatch, extra_env: dict[str, str] | None = None):
    """Yields a running stack (code server, webserver, daemon); the data dir is tmp_path/data."""
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = 5  # faster detection for the tests only
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": "flightdeck"}}
                ]
            }
        )
    )
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
            "FLIGHTDECK_BREAKER_STATE_PATH": str(data / "state" / "circuit_breakers.sqlite"),
            "FLIGHTDECK_LANDING_SETTLE_SECONDS": "0",
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            **(extra_env or {}),
        }
        for name in PG_ENV:
            monkeypatch.setenv(name, env[name])  # the test process reads the same instance
        running = ProductionStack(
            tmp_path, data, home, env, str(workspace), f"http://127.0.0.1:{web_port}", stack
        )
        running.start(
            "code-server",
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
        )
        # User code first: the webserver and daemon load it from the code server.
        wait_until(
            lambda: "Started Dagster code server" in (tmp_path / "code-server.log").read_text(),
            timeout=180,
            what="the code server",
        )
        running.start(
            "webserver",
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace)],
        )
        running.start_daemon()
        yield running

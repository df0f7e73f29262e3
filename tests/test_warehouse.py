"""Warehouse connections: short-lived, lock conflicts retried with bounded backoff then a clear error;
the writer lock every writing step holds."""

import random
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pytest

from flightdeck.backoff import backoff_delays, wait_for
from resources.warehouse import (
    WRITER_POOL,
    DuckDBWarehouse,
    WarehouseLockedError,
    WriterLockTimeout,
    writer_lock,
)
from sensors.writer_pool_sensor import writer_pool_sensor
from tests.conftest import ROOT


def test_backoff_is_exponential_jittered_and_capped():
    delays = backoff_delays(8, base=0.5, cap=4.0, rng=random.Random(7))
    assert len(delays) == 8
    assert all(0 <= d <= min(4.0, 0.5 * 2**k) for k, d in enumerate(delays))
    assert len(set(delays)) == 8  # jitter: no two waits alike


def test_a_wait_says_once_who_holds_the_lock_and_gives_up_with_the_callers_error():
    tries, said = iter([None, None, "fd"]), []
    taken = wait_for(lambda: next(tries), 5, 0.01, lambda: said.append("held"), lambda: AssertionError())
    assert (taken, said) == ("fd", ["held"])
    assert wait_for(lambda: 0, 5, 0.01, lambda: said.append("again"), lambda: AssertionError()) == 0
    assert said == ["held"]  # taken at once (0 counts as taken): nothing said
    with pytest.raises(WriterLockTimeout, match="held too long"):
        wait_for(lambda: None, 0.05, 0.01, lambda: None, lambda: WriterLockTimeout("held too long"))


def hold_write_lock(path, seconds):
    code = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_lock_held_briefly_by_another_process_is_waited_out(tmp_path):
    db = tmp_path / "w.duckdb"
    holder = hold_write_lock(db, 1.5)
    warehouse = DuckDBWarehouse(path=str(db), lock_wait_seconds=10, lock_retry_base_seconds=0.2)
    start = time.monotonic()
    with warehouse.connect() as con:
        assert con.execute("SELECT 42").fetchone() == (42,)
    assert time.monotonic() - start >= 0.5
    holder.wait(timeout=10)


def test_a_lock_held_too_long_fails_with_a_clear_message(tmp_path):
    db = tmp_path / "w.duckdb"
    holder = hold_write_lock(db, 20)
    try:
        warehouse = DuckDBWarehouse(
            path=str(db), lock_wait_seconds=0.5, lock_retry_base_seconds=0.05, lock_retry_max_seconds=0.1
        )
        said = (
            r"locked by another process after \d+ attempts in 0.5 s \(FLIGHTDECK_DUCKDB_LOCK_WAIT_SECONDS\)"
        )
        start = time.monotonic()
        with pytest.raises(WarehouseLockedError, match=said), warehouse.connect():
            pass
        assert 0.5 <= time.monotonic() - start < 5  # waited the setting's time, then gave up
    finally:
        holder.kill()
        holder.wait(timeout=10)


HOLD_WRITER_LOCK = """
import sys, time
from pathlib import Path
from resources.warehouse import writer_lock
with writer_lock(Path(sys.argv[1]), {"run": "run-that-holds", "step": "raw__flights"}, 5):
    print("held", flush=True)
    time.sleep(60)
"""


def test_the_writer_lock_says_who_holds_it_bounds_the_wait_and_dies_with_its_holder(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER_LOCK, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        held_by = r"held by run run-that-holds, step raw__flights, pid \d+"
        with pytest.raises(WriterLockTimeout, match=held_by), writer_lock(path, {"run": "w"}, timeout=1):
            pass
        holder.send_signal(signal.SIGKILL)  # no clean exit: the kernel releases the lock
        holder.wait(timeout=10)
        started = time.monotonic()
        with writer_lock(path, {"run": "next"}, timeout=5):
            assert time.monotonic() - started < 1
    finally:
        holder.kill()


def test_the_writer_pool_follows_the_writers_the_warehouse_admits(instance, env):
    """The run queue's pool: one run on the DuckDB file, FLIGHTDECK_WAREHOUSE_WRITERS on a DuckLake; set
    once, then left alone until the setting changes."""

    def tick(**warehouse):
        resource = DuckDBWarehouse(path=str(env.duckdb_path), **warehouse)
        with dg.build_sensor_context(instance=instance, resources={"warehouse": resource}) as context:
            result = writer_pool_sensor(context)
        return result.skip_message, instance.event_log_storage.get_concurrency_info(WRITER_POOL).slot_count

    assert tick() == ("set the duckdb_writer pool from 0 to 1 run(s) at a time", 1)
    assert tick() == ("the duckdb_writer pool admits 1 run(s) at a time", 1)
    assert tick(kind="ducklake", writers=4) == ("set the duckdb_writer pool from 1 to 4 run(s) at a time", 4)
    assert tick(kind="ducklake", writers=4)[1] == 4
    assert tick(kind="ducklake", writers=2)[1] == 2

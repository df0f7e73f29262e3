"""Storage faults, named right: a corrupt warehouse fails at once naming the file, only DuckDB's own lock
error is retried as a lock, a failed commit (full disk) reports its own error and commits nothing, and a
reversed partition range says so."""

import subprocess
import sys
import time
from contextlib import contextmanager

import duckdb
import pytest

from resources.warehouse import DuckDBWarehouse, WarehouseCorruptError, is_lock_error
from tests.runs import failure_messages, load_reference, run_job


def test_a_corrupt_or_truncated_warehouse_fails_at_once_and_says_so(env, instance):
    load_reference(instance)
    assert run_job("flights_pipeline", instance, partition="2013-01-02").success
    data = env.duckdb_path.read_bytes()
    for broken in (
        data[:16384],  # truncated
        b"not a database" * 1000,
        data[:4096] + b"\0" * (len(data) - 4096),
    ):
        env.duckdb_path.write_bytes(broken)
        started = time.monotonic()
        with (
            pytest.raises(WarehouseCorruptError) as caught,
            DuckDBWarehouse(path=str(env.duckdb_path)).connect(),
        ):
            pass
        assert time.monotonic() - started < 2  # not retried as a lock
        assert f"DuckDB warehouse {env.duckdb_path} is corrupt or truncated" in str(caught.value)
        result = run_job("flights_pipeline", instance, partition="2013-01-03")
        assert not result.success
        message = failure_messages(result)
        assert "is corrupt or truncated" in message and "locked" not in message


def test_only_duckdbs_own_lock_error_counts_as_a_lock(tmp_path):
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.Error) as caught:
            duckdb.connect(str(path))
        assert is_lock_error(caught.value)
    finally:
        holder.kill()
    assert not is_lock_error(duckdb.IOException("IO Error: block 7 out of range"))
    assert not is_lock_error(duckdb.Error("Corrupt database file: computed checksum (block 3)"))


@contextmanager
def small_disk(path, megabytes: int):
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_reports_its_own_error_commits_nothing_and_the_same_run_succeeds_after(
    env, instance, monkeypatch, tmp_path
):
    with small_disk(tmp_path / "disk", 40) as disk:
        warehouse = disk / "warehouse.duckdb"
        monkeypatch.setenv("FLIGHTDECK_DUCKDB_PATH", str(warehouse))
        load_reference(instance)
        assert run_job("flights_pipeline", instance, partition="2013-01-01", asset_selection=None).success
        before = (
            duckdb.connect(str(warehouse), read_only=True)
            .execute("SELECT count(*) FROM raw.flights")
            .fetchone()
        )
        filler = disk / "filler"
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"], capture_output=True
        )  # to full
        result = run_job("flights_pipeline", instance, partition_range=("2013-01-02", "2013-01-14"))
        assert not result.success
        message = failure_messages(result)
        assert "No space left on device" in message or "disk" in message.lower(), message[-2000:]
        assert "no transaction is active" not in message
        filler.unlink()
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            assert (
                con.execute("SELECT count(*) FROM raw.flights").fetchone() == before
            )  # nothing of the window
        finally:
            con.close()
        retried = run_job("flights_pipeline", instance, partition_range=("2013-01-02", "2013-01-14"))
        assert retried.success, failure_messages(retried)


def test_a_reversed_partition_range_fails_saying_so(env, instance):
    result = run_job("flights_pipeline", instance, partition_range=("2013-01-05", "2013-01-02"))
    assert not result.success
    assert (
        "the partition range 2013-01-05...2013-01-02 is empty: its end is before its start"
        in failure_messages(result)
    )


HOLDER = """
import sys, time, duckdb
sys.stdin.readline()
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()  # "release": let go a moment later
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_dbt_meeting_a_lock_waits_as_the_raw_step_does_then_its_step_is_retried(env, instance, monkeypatch):
    """Another process (an analyst's session) takes the warehouse's lock between the dbt step's own
    connection and dbt's: dbt fails on the lock, the step waits it out with the raw step's backoff and is
    retried, and the retry builds the marts."""
    import assets.dbt_models as dbt_models

    load_reference(instance)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(env.duckdb_path), "1.5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    real_build, calls = dbt_models.run_dbt_build, []

    def build_once_the_lock_is_taken(*args, **kwargs):
        if not calls:  # the first attempt only: the analyst opens the file just before dbt does
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "held"
        calls.append(time.monotonic())
        yield from real_build(*args, **kwargs)

    real_failure, waits = dbt_models.raise_build_failure, []

    def release_once_dbt_has_failed(*args, **kwargs):
        # The analyst lets go 1.5 s into the step's wait: a wait, not a lucky miss, whatever the load.
        waits.append(time.monotonic())
        holder.stdin.write("release\n")
        holder.stdin.flush()
        return real_failure(*args, **kwargs)

    monkeypatch.setattr(dbt_models, "run_dbt_build", build_once_the_lock_is_taken)
    monkeypatch.setattr(dbt_models, "raise_build_failure", release_once_dbt_has_failed)
    try:
        result = run_job("flights_pipeline", instance, partition="2013-01-02")
    finally:
        holder.kill()
    assert result.success, failure_messages(result)
    assert len(calls) == 2  # the attempt that met the lock, and the retry
    retried = [
        e for e in result.all_events if e.is_step_up_for_retry and e.step_key == "daily_dbt_models"
    ]  # fmt: skip
    assert len(retried) == 1, retried
    assert len(waits) == 1 and calls[1] - waits[0] > 1.5  # the retry waited for the analyst to let go
    assert env.query("SELECT count(*) FROM marts.fct_flights WHERE flight_date = '2013-01-02'")[0][0] > 0

"""Processes working one host's lake share its cores (flightdeck/cpu_share.py): real processes holding
real flocks, and real DuckDB connections sized by them."""

import os
import signal
import subprocess
import sys

import duckdb
import pytest

from flightdeck import cpu_share
from tests.conftest import ROOT

# Holds a share of the folder argv[1] until killed.
HOLD_A_SHARE = """
import sys, time
from pathlib import Path
from flightdeck import cpu_share
with cpu_share.share(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def other_holder():
    """Starts a process holding a share of a folder, as another step of this host would; each one
    started is killed at the end."""
    started = []

    def start(folder):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_A_SHARE, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        started.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield start
    for holder in started:
        holder.kill()
        holder.wait()


def duckdb_threads(con) -> int:
    return con.execute("SELECT current_setting('threads')").fetchone()[0]


def test_without_a_share_duckdb_keeps_its_own_threads_and_a_lone_holder_gets_every_core(tmp_path):
    con = duckdb.connect()
    default = duckdb_threads(con)
    assert cpu_share.threads() is None
    cpu_share.fit_threads(con)
    assert duckdb_threads(con) == default
    with cpu_share.share(tmp_path / "cpu"):
        assert cpu_share.threads() == cpu_share.host_cores()
        con.execute("SET threads = 1")
        cpu_share.fit_threads(con)
        assert duckdb_threads(con) == cpu_share.host_cores()
    assert cpu_share.threads() is None


def test_holders_on_one_host_divide_its_cores_and_one_killed_gives_its_part_back(tmp_path, other_holder):
    folder = tmp_path / "cpu"
    other = other_holder(folder)
    con = duckdb.connect()
    with cpu_share.share(folder):
        assert cpu_share.holders(folder) == 2
        cpu_share.fit_threads(con)
        assert duckdb_threads(con) == max(1, cpu_share.host_cores() // 2)
        os.kill(other.pid, signal.SIGKILL)  # however it ends, the kernel lets go of its flock
        other.wait()
        assert cpu_share.holders(folder) == 1
        cpu_share.fit_threads(con)
        assert duckdb_threads(con) == cpu_share.host_cores()
    assert cpu_share.holders(folder) == 0


def test_a_holder_waiting_on_a_lock_steps_aside_and_takes_its_share_again(tmp_path, other_holder):
    folder = tmp_path / "cpu"
    other_holder(folder)
    with cpu_share.share(folder):
        with cpu_share.aside():
            assert cpu_share.holders(folder) == 1  # the other's only: it would get every core now
        assert cpu_share.holders(folder) == 2
        assert cpu_share.threads() == max(1, cpu_share.host_cores() // 2)


def test_a_holder_that_finds_every_slot_taken_still_counts(tmp_path, other_holder, monkeypatch):
    folder = tmp_path / "cpu"
    other_holder(folder)  # one slot for both, the other's first
    monkeypatch.setattr(cpu_share, "SLOTS", 1)
    with cpu_share.share(folder):
        assert cpu_share.holders(folder) == 1
        assert cpu_share.threads() == max(1, cpu_share.host_cores() // 2)


def test_nested_shares_of_one_process_count_once_each(tmp_path):
    folder = tmp_path / "cpu"
    with cpu_share.share(folder), cpu_share.share(folder):
        assert cpu_share.holders(folder) == 2
    assert cpu_share.holders(folder) == 0


def test_the_duckdb_file_s_one_writer_keeps_every_core(tmp_path, other_holder):
    """On the DuckDB file one step writes at a time: nothing is shared, whatever holds a share."""
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    other_holder(tmp_path / "warehouse.duckdb.cpu")
    default = duckdb_threads(duckdb.connect())
    with warehouse.cpu_share(), warehouse.connect() as con:
        assert cpu_share.threads() is None
        assert duckdb_threads(con) == default

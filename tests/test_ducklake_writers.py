"""Several writers on a DuckLake warehouse (issue: beyond one machine): two backfills at once, on two Celery
workers too, and two writers of one day. A scratch catalog on the local PostgreSQL per test; skipped with
the reason where PostgreSQL (or, for Celery, RabbitMQ) is absent."""

import contextlib
import datetime as dt
import os
import subprocess
import threading
import time
from types import SimpleNamespace

import dagster as dg
import pytest

from flightdeck import lake, loader, settings
from tests.celery_workers import BIN, BROKER, purge_default_queue, requires_rabbitmq, start_worker
from tests.conftest import ROOT
from tests.dagster_dev import stop_process_group
from tests.lake_fixtures import lake_query
from tests.postgres import requires_postgres


def two_ranged_backfills_at_once(home, env: dict[str, str]) -> list[str]:
    """The README's CLI range command twice at once, for two ranges (after the reference bootstrap, in
    process); the outputs, once both succeeded."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**env, "DAGSTER_HOME": str(home)}
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dagster"), "asset", "materialize", "-f", "definitions.py",
         "--select", "raw/airlines,raw/airports,raw/planes"],
        cwd=ROOT, env={**env, "FLIGHTDECK_EXECUTOR": "in_process"}, check=True, capture_output=True,
    )  # fmt: skip
    cli = [str(ROOT / ".venv" / "bin" / "dagster"), "asset", "materialize", "-f", "definitions.py"]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    ranged = [[*cli, "--select", "raw/flights*", "--partition-range", f"{a}...{b}"] for a, b in RANGES]
    runs = [subprocess.Popen(cmd, cwd=ROOT, env=env, **output) for cmd in ranged]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    return outputs


def assert_every_day_landed_once(on_lake) -> None:
    rows_in_files = {
        dt.date.fromisoformat(f.stem): len(f.read_text().splitlines()) - 1
        for f in sorted(on_lake.landing.glob("*.csv"))
        if RANGES[0][0] <= f.stem <= RANGES[-1][1]
    }
    assert dict(lake_query("SELECT flight_date, count(*) FROM raw.flights GROUP BY ALL")) == rows_in_files
    assert (
        dict(lake_query("SELECT flight_date, count(*) FROM marts.fct_flights GROUP BY ALL")) == rows_in_files
    )


RANGES = [("2013-01-01", "2013-01-06"), ("2013-01-07", "2013-01-12")]


@pytest.mark.slow
@requires_rabbitmq
@requires_postgres
def test_two_celery_workers_write_two_backfills_to_the_lake_at_once(on_lake, tmp_path):
    """Two backfills at once on the lake, on the scale-out path (FLIGHTDECK_EXECUTOR=celery, two workers,
    each with a local folder of its own as two hosts have, so no file lock is shared): their loading steps
    run on the two workers at the same time (each commit takes the table's commit lock in the catalog),
    dbt's steps one after the other (the lake's dbt lock), and every day is in raw and the marts once."""
    env = {**os.environ, "FLIGHTDECK_EXECUTOR": "celery", "FLIGHTDECK_CELERY_BROKER_URL": BROKER,
           "DAGSTER_HOME": str(tmp_path / "home"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    purge_default_queue()
    (tmp_path / "home").mkdir()  # the workers read the instance too
    workers = []
    try:
        for name in ("lake-worker-a", "lake-worker-b"):
            folder = tmp_path / name
            folder.mkdir()
            own_files = {"FLIGHTDECK_DUCKDB_PATH": str(folder / "warehouse.duckdb")}  # this "host"'s
            workers.append(start_worker(name, env | own_files, folder))
        two_ranged_backfills_at_once(tmp_path / "home", env)
    finally:
        for worker, log in workers:
            stop_process_group(worker, log)

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        loads = []  # (pid, started, finished) of each run's raw/flights step
        dbt_holds = []  # (took, released) the lake's dbt lock, each run's dbt step
        for run in instance.get_runs(dg.RunsFilter(job_name="__ASSET_JOB")):
            messages = [(e.user_message, e.timestamp) for e in instance.all_logs(run.run_id)]
            took = [t for m, t in messages if m == "holding the warehouse dbt lock"]
            released = [t for m, t in messages if m == "released the warehouse dbt lock"]
            if took:
                dbt_holds.append((took[0], released[-1]))
            events = [
                e for e in instance.all_logs(run.run_id) if e.dagster_event and e.step_key == "raw__flights"
            ]
            starts = [e for e in events if e.dagster_event.event_type_value == "STEP_START"]
            ends = [e for e in events if e.dagster_event.event_type_value == "STEP_SUCCESS"]
            if starts:
                loads.append((starts[0].dagster_event.pid, starts[0].timestamp, ends[-1].timestamp))
    assert len(loads) == 2
    (pid_a, start_a, end_a), (pid_b, start_b, end_b) = loads
    assert pid_a != pid_b  # two workers
    assert start_a < end_b and start_b < end_a  # at the same time
    first, second = sorted(dbt_holds)
    assert first[1] <= second[0], f"two dbt builds overlapped: {dbt_holds}"
    assert not list(tmp_path.rglob("*.dbt.lock*"))  # the lock is the lake's, not a file of one host
    assert_every_day_landed_once(on_lake)


HOLD_LAKE_DBT_LOCK = """
import sys, time
from resources.warehouse import lake_dbt_lock
with lake_dbt_lock(sys.argv[1], {"run": "run-on-host-a", "step": "daily_dbt_models"}, 5):
    print("held", flush=True)
    time.sleep(120)
"""


@requires_postgres
def test_the_lake_s_dbt_lock_holds_across_hosts_names_its_holder_and_dies_with_it(
    on_lake, catalog, monkeypatch
):
    """dbt's lock on the lake is an advisory lock in the catalog: a step on another host (nothing on disk
    in common) waits for it, is told which run, step and host hold it, gives up after its timeout saying
    so, and takes it at once when the holder is killed outright (its session ends, the lock with it)."""
    import logging
    import signal
    import sys

    from resources.warehouse import DuckDBWarehouse

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LAKE_DBT_LOCK, catalog], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    messages = []
    log = logging.getLogger("flightdeck-test-dbt-lock")
    log.addHandler(logging.Handler())
    log.handlers[-1].emit = lambda record: messages.append(record.getMessage())
    log.setLevel(logging.INFO)
    step = SimpleNamespace(run_id="run-on-host-b", op_def=SimpleNamespace(name="daily_dbt_models"), log=log)
    warehouse = DuckDBWarehouse(path=str(on_lake.duckdb_path), kind="ducklake", writers=4)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "1")
        held_by = r"held by run run-on-host-a, step daily_dbt_models on 127\.0\.0\.1 for more than 1 s"
        with pytest.raises(lake.LakeLockTimeout, match=held_by), warehouse.writer(step, dbt=True):
            pass
        assert messages == [
            "waiting for the warehouse dbt lock, held by run run-on-host-a, step daily_dbt_models on 127.0.0.1"
        ]
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "10")
        started = time.monotonic()
        with warehouse.writer(step, dbt=True):
            assert time.monotonic() - started < 2
        assert messages[-2:] == ["holding the warehouse dbt lock", "released the warehouse dbt lock"]
    finally:
        holder.kill()
    assert not list(on_lake.root.rglob("*.lock*"))


def load_one_day(on_lake, day: dt.date, commit_lock=contextlib.nullcontext):
    """The loader on the lake for `day`, as a raw step runs it (contract checks, validation, load)."""
    from assets.common.gated_load import contract_checked_files
    from flightdeck.datasets import FLIGHTS
    from resources.landing import LandingArea

    files, problems = contract_checked_files(
        LandingArea(data_dir=str(on_lake.root)), FLIGHTS, (day, day), "t"
    )
    con = lake.connect(
        settings.get(settings.DUCKLAKE_CATALOG),
        settings.get(settings.DUCKLAKE_DATA_PATH),
        settings.duckdb_extension_dir(),
    )
    try:
        gates = loader.Gates(max_quarantine_rate=0.01, min_volume_fraction=0.5)
        return loader.load_window(
            con, FLIGHTS, files, (day, day), "t", gates, [], problems, commit_lock=commit_lock
        )
    finally:
        con.close()


def assert_loaded_once(on_lake, day: dt.date, audited: int) -> None:
    rows = len(on_lake.landing_file(day.isoformat()).read_text().splitlines()) - 1
    assert lake_query(
        f"SELECT count(*), count(DISTINCT (carrier, flight, origin)) FROM raw.flights WHERE flight_date = '{day}'"
    ) == [(rows, rows)]
    assert lake_query(f"SELECT count(*) FROM ops.load_audit WHERE partition_date = '{day}'") == [(audited,)]


def in_threads(*targets) -> list:
    results = []
    threads = [threading.Thread(target=lambda t=t: results.append(t())) for t in targets]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # in this order
    for thread in threads:
        thread.join(timeout=120)
    return results


@requires_postgres
def test_two_first_loads_of_one_day_at_once_leave_it_loaded_once(on_lake, monkeypatch):
    """Two first loads of a day, the second starting while the first's transaction is open: neither
    deletes anything, so DuckLake would let both commit (the day twice); the commit lock makes the
    second wait for the first's commit, then replace its rows."""
    day = dt.date(2013, 1, 5)
    load_one_day(on_lake, dt.date(2013, 1, 4))  # the tables exist, as after any earlier load
    paused = threading.local()

    def hold_the_first_transaction_open():
        if not getattr(paused, "done", False):
            paused.done = True
            time.sleep(2)

    monkeypatch.setattr(loader, "pause_for_crash_test", hold_the_first_transaction_open)

    def locked():
        return lake.commit_lock(settings.get(settings.DUCKLAKE_CATALOG), "raw.flights")

    results = in_threads(*[lambda: load_one_day(on_lake, day, commit_lock=locked)] * 2)
    assert len(results) == 2 and all(r[0].rows_loaded > 0 for r in results)
    assert_loaded_once(on_lake, day, audited=2)


@requires_postgres
def test_a_commit_that_loses_to_another_writer_s_is_written_again(on_lake, monkeypatch):
    """Without the commit lock, two loads of a day that already has rows, both transactions open at once:
    DuckLake undoes the second commit whole, the loader gates and writes it again, the day holds its rows
    once (the fallback for any writer that does not take the lock)."""
    day = dt.date(2013, 1, 3)
    load_one_day(on_lake, day)
    both_open = threading.Barrier(2, timeout=30)
    waited = threading.local()

    def wait_for_the_other():  # where the crash tests pause: inside the open transaction, before COMMIT
        if not getattr(waited, "done", False):
            waited.done = True
            both_open.wait()

    monkeypatch.setattr(loader, "pause_for_crash_test", wait_for_the_other)
    conflicts = []
    real_is_conflict = lake.is_commit_conflict
    monkeypatch.setattr(
        lake, "is_commit_conflict", lambda exc: conflicts.append(exc) or real_is_conflict(exc)
    )
    results = in_threads(*[lambda: load_one_day(on_lake, day)] * 2)
    assert len(results) == 2
    assert conflicts and all(real_is_conflict(exc) for exc in conflicts)
    assert_loaded_once(on_lake, day, audited=3)

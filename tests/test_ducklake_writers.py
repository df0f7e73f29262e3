"""Several writers on a DuckLake warehouse (issue: beyond one machine): two backfills at once, on two Celery
workers too, and two writers of one day. A scratch catalog on the local PostgreSQL per test; skipped with
the reason where PostgreSQL (or, for Celery, RabbitMQ) is absent."""

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import threading
import time
from types import SimpleNamespace

import dagster as dg
import pytest

from flightdeck import cpu_share, lake, loader, settings
from tests.celery_workers import BIN, BROKER, purge_default_queue, requires_rabbitmq, start_worker
from tests.conftest import ROOT
from tests.dagster_dev import stop_process_group, wait_until
from tests.lake_fixtures import lake_query
from tests.postgres import requires_postgres


def two_ranged_backfills_at_once(home, env: dict[str, str], ranges=None, while_running=None) -> list[str]:
    """The README's CLI range command twice at once, for two ranges (after the reference bootstrap, in
    process); the outputs, once both succeeded. `while_running()` is called once both have started."""
    ranges = ranges or RANGES
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
    ranged = [[*cli, "--select", "raw/flights*", "--partition-range", f"{a}...{b}"] for a, b in ranges]
    runs = [subprocess.Popen(cmd, cwd=ROOT, env=env, **output) for cmd in ranged]
    try:
        if while_running is not None:
            while_running()
    finally:
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
PUBLISHING = ("dbt publish", "dbt")  # the lock labels that include the publish lock


@pytest.mark.slow
@requires_rabbitmq
@requires_postgres
def test_two_celery_workers_write_two_backfills_to_the_lake_at_once(on_lake, catalog, tmp_path):
    """Two backfills at once on the lake, on the scale-out path (FLIGHTDECK_EXECUTOR=celery, two workers,
    each with a local folder of its own as two hosts have, so no file lock is shared): their loading steps
    run on the two workers at the same time (each commit takes the table's commit lock in the catalog;
    the test holds that lock until both steps have started, so on a busy machine too a short step cannot
    end before the other starts), dbt's publishes one after the other (the lake's publish lock), and
    every day is in raw and the marts once."""
    env = {**os.environ, "FLIGHTDECK_EXECUTOR": "celery", "FLIGHTDECK_CELERY_BROKER_URL": BROKER,
           "DAGSTER_HOME": str(tmp_path / "home"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    purge_default_queue()
    (tmp_path / "home").mkdir()  # the workers read the instance too
    workers, holder = [], None
    try:
        for name in ("lake-worker-a", "lake-worker-b"):
            folder = tmp_path / name
            folder.mkdir()
            own_files = {"FLIGHTDECK_DUCKDB_PATH": str(folder / "warehouse.duckdb")}  # this "host"'s
            workers.append(start_worker(name, env | own_files, folder))
        holder = holding(HOLD_COMMIT_LOCK, catalog, "raw.flights")

        def release_once_both_load():
            wait_until(
                lambda: len(runs_that_started(tmp_path / "home", "raw__flights")) == 2,
                timeout=240,
                what="both loading steps started",
            )
            holder.kill()

        two_ranged_backfills_at_once(tmp_path / "home", env, while_running=release_once_both_load)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        for worker, log in workers:
            stop_process_group(worker, log)

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        loads = []  # (pid, started, finished) of each run's raw/flights step
        dbt_holds = []  # (took, released) the lake's publish lock, each run's dbt step
        for run in instance.get_runs(dg.RunsFilter(job_name="__ASSET_JOB")):
            messages = [(e.user_message, e.timestamp) for e in instance.all_logs(run.run_id)]
            # The publish lock: taken at dbt's gate, or with the window's for the whole build (no launcher).
            took = [t for m, t in messages if m in (f"holding the warehouse {n} lock" for n in PUBLISHING)]
            released = [
                t for m, t in messages if m in (f"released the warehouse {n} lock" for n in PUBLISHING)
            ]
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
    assert first[1] <= second[0], f"two dbt publishes overlapped: {dbt_holds}"
    assert not list(tmp_path.rglob("*.dbt.lock*"))  # the lock is the lake's, not a file of one host
    assert_every_day_landed_once(on_lake)


# Holds a table's commit lock on the lake (lake.commit_lock) until killed (run by `holding`).
HOLD_COMMIT_LOCK = """
import sys, time
from flightdeck import lake
with lake.commit_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(300)
"""


def runs_that_started(home, step_key: str) -> list[str]:
    """The runs of the instance at `home` in which the step `step_key` has started."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [
            run.run_id
            for run in instance.get_runs()
            if any(
                e.dagster_event
                and e.step_key == step_key
                and e.dagster_event.event_type_value == "STEP_START"
                for e in instance.all_logs(run.run_id)
            )
        ]


# Holds the lake's locks named after the catalog (the publish lock when none is named) until killed.
HOLD_LAKE_DBT_LOCK = """
import os, sys, time
from flightdeck import lake
from resources.warehouse import lake_dbt_lock
names = sys.argv[2:] or [lake.DBT_PUBLISH_LOCK]
run = os.environ.get("HOLDER_RUN", "run-on-host-a")
with lake_dbt_lock(sys.argv[1], names, {"run": run, "step": "daily_dbt_models"}, 5):
    print("held", flush=True)
    time.sleep(120)
"""


def holding(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A process (as on another host: nothing on disk in common) running a HOLD_* script, once it holds."""
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def hold_lake_locks(catalog: str, *names: str, run: str = "run-on-host-a") -> subprocess.Popen:
    """A process holding the lake's dbt locks `names` (the publish lock when none is named)."""
    return holding(HOLD_LAKE_DBT_LOCK, catalog, *names, env={**os.environ, "HOLDER_RUN": run})


@requires_postgres
def test_the_lake_s_publish_lock_holds_across_hosts_names_its_holder_and_dies_with_it(
    on_lake, catalog, monkeypatch
):
    """dbt's publish lock on the lake is an advisory lock in the catalog: a step on another host (nothing
    on disk in common) waits for it, is told which run, step and host hold it (not the holder of the same
    lock of another lake on the same PostgreSQL server), gives up after its timeout saying so, and takes
    it at once when the holder is killed outright (its session ends, the lock with it)."""
    from tests.postgres import PG_HOST, PG_PORT, PG_USER, scratch_database

    with scratch_database() as other:  # another lake's catalog on the same server, its lock held first
        other_lake = hold_lake_locks(
            f"dbname={other} host={PG_HOST} port={PG_PORT} user={PG_USER}", run="other"
        )
        try:
            holder = hold_lake_locks(catalog)
            publish_lock_named_and_released(on_lake, holder, monkeypatch)
        finally:
            other_lake.kill()
            other_lake.wait()
    assert not list(on_lake.root.rglob("*.lock*"))


def publish_lock_named_and_released(on_lake, holder, monkeypatch) -> None:
    import logging
    import signal

    from resources.warehouse import DuckDBWarehouse

    messages = []
    log = logging.getLogger("flightdeck-test-dbt-lock")
    log.addHandler(logging.Handler())
    log.handlers[-1].emit = lambda record: messages.append(record.getMessage())
    log.setLevel(logging.INFO)
    step = SimpleNamespace(run_id="run-on-host-b", op_def=SimpleNamespace(name="daily_dbt_models"), log=log)
    warehouse = DuckDBWarehouse(path=str(on_lake.duckdb_path), kind="ducklake", writers=4)
    try:
        monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "1")
        held_by = r"held by run run-on-host-a, step daily_dbt_models on 127\.0\.0\.1 for more than 1 s"
        with pytest.raises(lake.LakeLockTimeout, match=held_by), warehouse.publish_lock(step):
            pass
        assert messages == [
            "waiting for the warehouse dbt publish lock, held by run run-on-host-a, step daily_dbt_models "
            "on 127.0.0.1"
        ]
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "10")
        started = time.monotonic()
        with warehouse.publish_lock(step):
            assert time.monotonic() - started < 2
        assert messages[-2:] == [
            "holding the warehouse dbt publish lock",
            "released the warehouse dbt publish lock",
        ]
    finally:
        holder.kill()


def test_a_build_s_window_locks_are_its_months_in_order():
    assert lake.dbt_window_lock_names(dt.date(2013, 1, 30), dt.date(2013, 3, 1)) == [
        "dbt window 2013-01", "dbt window 2013-02", "dbt window 2013-03",
    ]  # fmt: skip
    assert lake.dbt_window_lock_names(dt.date(2012, 12, 31), dt.date(2013, 1, 1)) == [
        "dbt window 2012-12", "dbt window 2013-01",
    ]  # fmt: skip
    assert len(lake.dbt_window_lock_names(dt.date(2013, 1, 1), dt.date(2013, 12, 31))) == 12
    with pytest.raises(ValueError, match="empty window"):
        lake.dbt_window_lock_names(dt.date(2013, 1, 2), dt.date(2013, 1, 1))


@requires_postgres
def test_builds_whose_windows_share_a_month_take_turns_and_others_do_not_wait(on_lake, catalog, monkeypatch):
    """A build holds its window's months (lake.dbt_window_lock_names): one of another month takes its own
    at once; one that shares a month waits, named who holds it, and takes them all once it is let go."""
    import signal

    from resources.warehouse import DuckDBWarehouse

    holder = hold_lake_locks(catalog, "dbt window 2013-02")
    warehouse = DuckDBWarehouse(path=str(on_lake.duckdb_path), kind="ducklake", writers=4)
    step = SimpleNamespace(run_id="run-b", op_def=SimpleNamespace(name="daily_dbt_models"), log=None)
    try:
        monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "10")
        started = time.monotonic()
        with warehouse.dbt_lock(step, (dt.date(2013, 1, 1), dt.date(2013, 1, 31)), publish=False):
            assert time.monotonic() - started < 2  # January: not held by anyone
        monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "1")
        with (
            pytest.raises(
                lake.LakeLockTimeout, match="dbt window 2013-02 lock was held by run run-on-host-a"
            ),
            warehouse.dbt_lock(step, (dt.date(2013, 1, 15), dt.date(2013, 2, 15)), publish=False),
        ):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "10")
        with warehouse.dbt_lock(step, (dt.date(2013, 1, 15), dt.date(2013, 2, 15)), publish=False):
            pass
    finally:
        holder.kill()


@pytest.mark.slow
@requires_postgres
def test_builds_of_two_months_run_side_by_side_and_publish_one_after_the_other(on_lake, catalog, tmp_path):
    """Two backfills of different months at once on the lake (the README's CLI range command): a dbt
    build is its own until it publishes (dbt_project/macros/generate_database_name.sql), so both build
    while another host holds the publish lock, and both wait for it at their publish, each holding only
    its own month. Once it is let go they publish one after the other; every day of both months is in
    the marts once, and the lake holds the published staging view and no build's tables."""
    import signal
    import sys

    subprocess.run(
        [sys.executable, "scripts/prepare_demo_data.py", "--data-dir", str(tmp_path / "more"), "--days", "34",
         "--skip-reference"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    for day in ("2013-02-01", "2013-02-02", "2013-02-03"):
        shutil.copy(tmp_path / "more" / "landing" / "flights" / f"{day}.csv", on_lake.landing_file(day))
    ranges = [("2013-01-01", "2013-01-03"), ("2013-02-01", "2013-02-03")]
    home, holder = tmp_path / "home", hold_lake_locks(catalog)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    third_share = holding(HOLD_A_CPU_SHARE, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def both_wait_at_their_publish() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if len(runs_waiting_to_publish(home)) == 2:
                third_share.kill()
                third_share.wait()
                holder.send_signal(signal.SIGKILL)  # as a host that dies: its session, and lock, go
                return
            time.sleep(1)
        raise AssertionError("the two builds did not both reach their publish while it was held")

    try:
        two_ranged_backfills_at_once(home, env, ranges, while_running=both_wait_at_their_publish)
    finally:
        holder.kill()
        third_share.kill()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        holds, spill_to, threads = [], [], []
        for run in instance.get_runs(dg.RunsFilter(job_name="__ASSET_JOB")):
            messages = [(e.user_message, e.timestamp) for e in instance.all_logs(run.run_id)]
            said = [m for m, _ in messages if "warehouse dbt" in m]
            if not said:  # the reference data's run
                continue
            assert said[:2] == ["holding the warehouse dbt window lock", said[1]], said
            assert said[1].startswith("waiting for the warehouse dbt publish lock, held by run run-on-host-a")
            took = next(t for m, t in messages if m == "holding the warehouse dbt publish lock")
            holds.append(
                (took, next(t for m, t in messages if m == "released the warehouse dbt publish lock"))
            )
            spill_to.append(dbt_temp_directory(run.run_id))
            threads.append((took, dbt_settings(run.run_id, "threads")))
    # A build takes the cores that others leave (internals/dbt_launcher.py, gate_callback): the first to
    # publish started beside the other build and a third share, and published with every core (the
    # third gone, the other build waiting for the lock with its share given up).
    cores = cpu_share.host_cores()
    first_to_publish = min(threads)[1]
    assert first_to_publish[0] == str(max(1, cores // 3)) and first_to_publish[-1] == str(cores), threads
    first, second = sorted(holds)
    assert len(holds) == 2 and first[1] <= second[0], holds
    # each build spilled (had it needed to) to a folder of its own (macros/use_own_temp_directory.sql)
    assert len(set(spill_to)) == 2 and all("/flightdeck-dbt-" in folder for folder in spill_to), spill_to
    days = [f.stem for f in sorted(on_lake.landing.glob("*.csv")) if any(a <= f.stem <= b for a, b in ranges)]
    rows_in_files = {
        dt.date.fromisoformat(d): len(on_lake.landing_file(d).read_text().splitlines()) - 1 for d in days
    }
    assert len(rows_in_files) == 6
    assert (
        dict(lake_query("SELECT flight_date, count(*) FROM marts.fct_flights GROUP BY ALL")) == rows_in_files
    )
    assert lake_query("SELECT view_name FROM duckdb_views() WHERE schema_name = 'staging'") == [
        ("stg_flights",)
    ]
    assert lake_query(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%\\_\\_audit' ESCAPE '\\'"
    ) == [(0,)]


def dbt_settings(run_id: str, name: str) -> list[str]:
    """Each value the run's dbt build set DuckDB's setting `name` to, in order (macros of on-run-start,
    the models' pre-hooks, the publish), from its invocation's dbt log."""
    import json

    [folder] = (ROOT / "dbt_project" / "target").glob(f"daily_dbt_models-{run_id[:7]}-*")
    values = []
    for line in (folder / "dbt.log").read_text().splitlines():
        event = json.loads(line)
        sql = event["data"].get("sql", "") if event["info"]["name"] == "SQLQuery" else ""
        if f"set {name} = " in sql:
            values.append(sql.split(f"set {name} = ")[1].split(";")[0].strip().strip("'"))
    return values


def dbt_setting(run_id: str, name: str) -> str:
    """What the run's dbt build set DuckDB's setting `name` to first (macros of on-run-start)."""
    values = dbt_settings(run_id, name)
    assert values, f"the dbt build of run {run_id} set no {name}"
    return values[0]


def dbt_temp_directory(run_id: str) -> str:
    """The folder the run's dbt build set DuckDB to spill to."""
    return dbt_setting(run_id, "temp_directory")


def runs_waiting_to_publish(home) -> list[str]:
    """The runs in the instance at `home` whose dbt step waits for the lake's publish lock."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [
            run.run_id
            for run in instance.get_runs(dg.RunsFilter(job_name="__ASSET_JOB"))
            if any(
                (e.user_message or "").startswith("waiting for the warehouse dbt publish lock")
                for e in instance.all_logs(run.run_id)
            )
        ]


SPILL_ON_THE_LAKE = """
import duckdb, os, sys
from flightdeck import lake, settings
con = lake.connect(settings.get(settings.DUCKLAKE_CATALOG), settings.get(settings.DUCKLAKE_DATA_PATH),
                   settings.duckdb_extension_dir())
con.execute("SET memory_limit = '64MB'; SET threads = 1")
con.execute(f"CREATE TEMP TABLE spilled AS SELECT range AS n, md5((range * {sys.argv[1]})::VARCHAR) AS h FROM range(3000000)")
folder = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
spilled = os.path.isdir(folder) and bool(os.listdir(folder))
print(con.execute("SELECT count(*), sum(n), count(DISTINCT h) FROM spilled").fetchone() == (3000000, 4499998500000, 3000000), spilled, folder)
con.close()
"""


@requires_postgres
def test_two_lake_connections_spilling_at_once_in_one_folder_each_spill_to_their_own(on_lake, tmp_path):
    """An in-memory DuckDB spills to ./.tmp by default, under fixed file names: two processes spilling
    in one working directory at once overwrite each other's blocks (seen: both crashed, one with a
    segfault). Each connection to the lake spills to a folder of its own, removed when it closes."""
    import sys

    runs = [
        subprocess.Popen([sys.executable, "-c", SPILL_ON_THE_LAKE, str(k)], cwd=tmp_path, env={**os.environ,
                         "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in (1, 2)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    results = [out.splitlines()[-1].split() for out, _ in outputs]  # after DuckDB's progress bar, if any
    assert all(right == "True" and spilled == "True" for right, spilled, _ in results), results
    folders = {folder for _, _, folder in results}
    assert len(folders) == 2 and not any(os.path.exists(f) for f in folders)
    assert not (tmp_path / ".tmp").exists()


ATTACH_THE_LAKE = """
from flightdeck import lake, settings
lake.connect(settings.get(settings.DUCKLAKE_CATALOG), settings.get(settings.DUCKLAKE_DATA_PATH),
             settings.duckdb_extension_dir()).close()
print("attached")
"""


@requires_postgres
def test_steps_starting_at_once_on_a_new_lake_all_attach_it(on_lake):
    """The first ATTACH of a new catalog creates its tables; several at once race to (two backfills, or a
    sensor's burst, started on a new lake): the losers failed with "Failed to initialize DuckLake"
    (seen: 5 of 6). They attach once the winner has made them."""
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    steps = [subprocess.Popen([sys.executable, "-c", ATTACH_THE_LAKE], env=env, **output) for _ in range(6)]
    outputs = [step.communicate(timeout=120) for step in steps]
    said = [out.strip().splitlines()[-1:] for out, _ in outputs]  # after DuckDB's progress bar, if any
    assert said == [["attached"]] * 6, [err[-1000:] for _, err in outputs]


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


# Holds a share of this host's cores for the lake warehouse of the environment, as a step working it.
HOLD_A_CPU_SHARE = """
import time
from flightdeck import settings
from resources.warehouse import DuckDBWarehouse
with DuckDBWarehouse(path=settings.get(settings.DUCKDB_PATH), kind="ducklake").cpu_share():
    print("held", flush=True)
    time.sleep(120)
"""


@requires_postgres
def test_steps_working_the_lake_at_once_divide_the_host_s_cores(on_lake):
    """Two steps of one host working the lake at once each run DuckDB with half the host's cores
    (flightdeck/cpu_share.py): the loader before its scan and its write, dbt for its build; alone again,
    a step gets every core."""
    from flightdeck.datasets import FLIGHTS
    from resources.warehouse import DuckDBWarehouse
    from tests.runs import load_reference, run_job

    cores = cpu_share.host_cores()
    other = holding(HOLD_A_CPU_SHARE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        with dg.instance_for_test() as instance:
            load_reference(instance)
            result = run_job("flights_pipeline", instance, partition="2013-01-03")
            assert result.success
            # at dbt's start, before each model (asked through the gate) and at the publish
            threads = dbt_settings(result.run_id, "threads")
            assert len(threads) > 3 and set(threads) == {str(max(1, cores // 2))}, threads

        from assets.common.gated_load import contract_checked_files
        from resources.landing import LandingArea

        day = dt.date(2013, 1, 4)
        files, problems = contract_checked_files(
            LandingArea(data_dir=str(on_lake.root)), FLIGHTS, (day, day), "t"
        )
        gates = loader.Gates(max_quarantine_rate=0.01, min_volume_fraction=0.5)
        warehouse = DuckDBWarehouse(
            path=str(on_lake.duckdb_path), kind="ducklake", lake_data_path=str(on_lake.root / "lake")
        )
        with warehouse.cpu_share(), warehouse.connect() as con:
            assert con.execute("SELECT current_setting('threads')").fetchone() == (max(1, cores // 2),)
            con.execute(f"SET threads = {cores + 1}")  # as a connection opened before the other began
            loader.load_window(con, FLIGHTS, files, (day, day), "t", gates, [], problems)
            assert con.execute("SELECT current_setting('threads')").fetchone() == (max(1, cores // 2),)
            other.kill()
            other.wait()
            loader.load_window(con, FLIGHTS, files, (day, day), "t", gates, [], problems)
            assert con.execute("SELECT current_setting('threads')").fetchone() == (cores,)
    finally:
        other.kill()
        other.wait()

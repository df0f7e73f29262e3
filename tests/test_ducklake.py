"""The warehouse as a DuckLake on a real PostgreSQL catalog (issue: beyond one machine).

Each test gets a scratch catalog database on 127.0.0.1:5432, dropped afterwards, and its own data folder;
skipped with the reason where PostgreSQL is absent.
"""

import contextlib
import datetime as dt
import os
import subprocess
import threading
import time

import dagster as dg
import pytest

from flightdeck import lake, loader, settings
from tests.celery_workers import BIN, BROKER, purge_default_queue, requires_rabbitmq, start_worker
from tests.conftest import ROOT
from tests.dagster_dev import stop_process_group
from tests.postgres import PG_HOST, PG_PORT, PG_USER, requires_postgres, scratch_database
from tests.runs import load_reference, run_job

DAYS = ("2013-01-02", "2013-01-04")
# trust authentication ignores it: it stands for a real password, which must never be shown
PASSWORD = "s3cret-pw"


# -- The settings: pure, no PostgreSQL needed -------------------------------------------------------------


def test_the_catalog_is_taken_in_libpq_or_url_form_and_a_bad_one_is_named_without_its_password():
    assert (
        lake.catalog_dsn("dbname=x host=127.0.0.1 user=postgres") == "dbname=x host=127.0.0.1 user=postgres"
    )
    assert lake.catalog_dsn(" dbname = x  password='a b\\'c' ") == "dbname=x password='a b\\'c'"
    assert (
        lake.catalog_dsn("postgresql://u:p%20w@db.example:5433/lake?sslmode=require")
        == "dbname=lake host=db.example port=5433 user=u password='p w' sslmode=require"
    )
    for bad in ("", "dbname=x junk", "mysql://u@h/db", "password=hunter2 ="):
        with pytest.raises(lake.LakeConfigError) as raised:
            lake.catalog_dsn(bad)
        assert "hunter2" not in str(raised.value)
    assert lake.redact("dbname=x password=hunter2 user=u") == "dbname=x password=*** user=u"
    assert lake.redact("postgresql://u:hunter2@h/db") == "postgresql://u:***@h/db"
    assert lake.data_path("s3://bucket/lake/") == "s3://bucket/lake/"
    assert lake.data_path("relative/lake").endswith("/relative/lake/")


def test_the_lake_needs_a_catalog_and_a_bad_catalog_is_shown_redacted():
    with pytest.raises(settings.SettingsError, match="FLIGHTDECK_DUCKLAKE_CATALOG"):
        settings.validate({"FLIGHTDECK_WAREHOUSE": "ducklake"})
    with pytest.raises(settings.SettingsError) as raised:
        settings.validate(
            {"FLIGHTDECK_WAREHOUSE": "ducklake", "FLIGHTDECK_DUCKLAKE_CATALOG": "password=hunter2 x"}
        )
    assert "hunter2" not in str(raised.value) and "FLIGHTDECK_DUCKLAKE_CATALOG" in str(raised.value)
    with pytest.raises(settings.SettingsError, match="FLIGHTDECK_WAREHOUSE='lakehouse'"):
        settings.validate({"FLIGHTDECK_WAREHOUSE": "lakehouse"})
    settings.validate({"FLIGHTDECK_WAREHOUSE": "ducklake", "FLIGHTDECK_DUCKLAKE_CATALOG": "dbname=x"})


# -- On a real catalog ------------------------------------------------------------------------------------


@pytest.fixture
def catalog():
    with scratch_database() as name:
        yield f"dbname={name} host={PG_HOST} port={PG_PORT} user={PG_USER} password={PASSWORD}"


@pytest.fixture
def on_lake(env, catalog, monkeypatch):
    """The test's environment with its warehouse on a DuckLake."""
    monkeypatch.setenv("FLIGHTDECK_WAREHOUSE", "ducklake")
    monkeypatch.setenv("FLIGHTDECK_DUCKLAKE_CATALOG", catalog)
    monkeypatch.setenv("FLIGHTDECK_DUCKLAKE_DATA_PATH", str(env.root / "lake"))
    return env


def lake_query(sql: str) -> list[tuple]:
    con = lake.connect(
        settings.get(settings.DUCKLAKE_CATALOG),
        settings.get(settings.DUCKLAKE_DATA_PATH),
        settings.duckdb_extension_dir(),
        read_only=True,
    )
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


CONTENT = {
    "raw": "SELECT * EXCLUDE (_loaded_at, _run_id, _source_file) FROM raw.flights ORDER BY ALL",
    "quarantine": "SELECT partition_date, line_number, kind, reasons, status FROM quarantine.flights ORDER BY ALL",
    "audit": "SELECT partition_date, rows_read, rows_loaded, rows_quarantined, outcome FROM ops.load_audit "
    "WHERE dataset = 'flights' ORDER BY ALL",
    **{
        mart: f"SELECT * FROM marts.{mart} ORDER BY ALL"
        for mart in ("fct_flights", "agg_daily_carrier_performance", "agg_daily_origin_weather")
    },
}


def run_the_days(instance, replay: tuple | None = None) -> None:
    """A ranged run of DAYS through the marts, then one of its days again (delete + insert, publish);
    `replay` (file, corrected text): that file corrected and its day loaded again (its quarantine rows
    resolved)."""
    load_reference(instance)
    assert run_job("flights_pipeline", instance, partition_range=DAYS).success
    assert run_job("flights_pipeline", instance, partition=DAYS[0]).success
    if replay:
        path, text = replay
        path.write_text(text)
        assert run_job("flights_pipeline", instance, partition=path.stem).success


@requires_postgres
def test_the_pipeline_on_the_lake_holds_what_it_holds_on_the_file(on_lake, monkeypatch):
    """Raw, quarantine, load audit and every mart are the same on the lake as on the DuckDB file, for the
    same days (a ranged run, a re-run day, a bad line quarantined then replayed from the corrected file),
    and the catalog's password is in no event of the runs."""
    day = on_lake.landing_file(DAYS[1])
    corrected = day.read_text()
    lines = corrected.splitlines()
    lines[5] = lines[5].replace(",EWR,", ",XXX,").replace(",JFK,", ",XXX,").replace(",LGA,", ",XXX,")
    bad = "\n".join(lines) + "\n"
    day.write_text(bad)

    with dg.instance_for_test() as instance:
        run_the_days(instance, replay=(day, corrected))
        on_lake_content = {name: lake_query(sql) for name, sql in CONTENT.items()}
        everything = "".join(
            str(record.event_log_entry)
            for run in instance.get_runs()
            for record in instance.get_records_for_run(run.run_id, limit=100_000).records
        )
    assert PASSWORD not in everything and "ducklake:postgres" not in everything
    assert not on_lake.duckdb_path.exists()  # nothing went to the file
    assert on_lake_content["quarantine"] and on_lake_content["fct_flights"]

    assert ("resolved",) in lake_query("SELECT DISTINCT status FROM quarantine.flights")
    monkeypatch.setenv("FLIGHTDECK_WAREHOUSE", "duckdb")
    day.write_text(bad)
    with dg.instance_for_test() as instance:
        run_the_days(instance, replay=(day, corrected))
    on_file = {name: on_lake.query(sql) for name, sql in CONTENT.items()}
    assert on_lake_content == on_file


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
    runs = [
        subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "dagster"),
                "asset",
                "materialize",
                "-f",
                "definitions.py",
                "--select",
                "raw/flights*",
                "--partition-range",
                f"{first}...{last}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for first, last in RANGES
    ]
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


@requires_postgres
def test_two_ranged_backfills_write_the_lake_at_once_and_both_land_whole(on_lake, tmp_path):
    """On the lake both loads run side by side (the writer lock has several slots; a commit that lost to
    the other's is written again), dbt's steps one after the other, and every day is in raw and the marts
    once."""
    outputs = two_ranged_backfills_at_once(tmp_path / "home", dict(os.environ))
    # Both held a writer slot at the same time: neither waited for the other's load.
    assert not any("waiting for the warehouse writer lock" in output for output in outputs)
    assert_every_day_landed_once(on_lake)


@pytest.mark.slow
@requires_rabbitmq
@requires_postgres
def test_two_celery_workers_write_two_backfills_to_the_lake_at_once(on_lake, tmp_path):
    """The scale-out path: FLIGHTDECK_EXECUTOR=celery with two workers; the two backfills' loading steps
    run on the two workers at the same time, and every day lands once."""
    env = {**os.environ, "FLIGHTDECK_EXECUTOR": "celery", "FLIGHTDECK_CELERY_BROKER_URL": BROKER,
           "DAGSTER_HOME": str(tmp_path / "home"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    purge_default_queue()
    (tmp_path / "home").mkdir()  # the workers read the instance too
    workers = []
    try:
        for name in ("lake-worker-a", "lake-worker-b"):
            folder = tmp_path / name
            folder.mkdir()
            workers.append(start_worker(name, env, folder))
        two_ranged_backfills_at_once(tmp_path / "home", env)
    finally:
        for worker, log in workers:
            stop_process_group(worker, log)

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        loads = []  # (pid, started, finished) of each run's raw/flights step
        for run in instance.get_runs(dg.RunsFilter(job_name="__ASSET_JOB")):
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
    assert_every_day_landed_once(on_lake)


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


@requires_postgres
def test_the_nightly_maintenance_compacts_and_expires_without_changing_what_the_lake_holds(
    on_lake, monkeypatch
):
    with dg.instance_for_test() as instance:
        run_the_days(instance)
        before = {name: lake_query(sql) for name, sql in CONTENT.items()}
        snapshots = lake_query("SELECT count(*) FROM ducklake_snapshots('lake')")[0][0]
        monkeypatch.setenv("FLIGHTDECK_DUCKLAKE_SNAPSHOT_RETENTION_DAYS", "0")
        result = run_job("lake_maintenance", instance)
        assert result.success
        [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        expired = output.event_specific_data.metadata["ducklake_expire_snapshots"].value
        assert expired >= snapshots - 1  # every snapshot but the current one (maintenance adds its own)
    assert {name: lake_query(sql) for name, sql in CONTENT.items()} == before
    assert lake_query("SELECT count(*) FROM ducklake_snapshots('lake')") == [(1,)]


def test_the_maintenance_has_nothing_to_do_on_the_duckdb_file(env, instance):
    result = run_job("lake_maintenance", instance)
    assert result.success and not env.duckdb_path.exists()


@requires_postgres
def test_a_failed_run_on_the_lake_is_alerted_once_and_recorded_in_its_alert_log(on_lake, instance):
    from resources.alerting import AlertChannels
    from resources.warehouse import DuckDBWarehouse
    from sensors.alert_sensors import run_failure_alert_sensor

    warehouse = DuckDBWarehouse(
        path=str(on_lake.duckdb_path), kind="ducklake", lake_data_path=str(on_lake.root / "lake")
    )
    for _ in range(2):  # the same failure twice: recorded twice, sent (here: logged) once
        on_lake.landing_file("2013-01-03").unlink(missing_ok=True)
        result = run_job("flights_pipeline", instance, partition="2013-01-03")
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
            resources={"alert_channels": AlertChannels(), "warehouse": warehouse},
        ).for_run_failure()
        run_failure_alert_sensor(context)
    assert lake_query("SELECT kind, status FROM ops.alerts ORDER BY created_at") == [
        ("run_failure", "logged"),
        ("run_failure", "suppressed"),
    ]
    assert not on_lake.duckdb_path.exists()

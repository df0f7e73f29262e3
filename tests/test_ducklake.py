"""The warehouse as a DuckLake on a real PostgreSQL catalog (issue: beyond one machine).

Each test gets a scratch catalog database on 127.0.0.1:5432, dropped afterwards, and its own data folder;
skipped with the reason where PostgreSQL is absent.
"""

import os
import time

import dagster as dg
import psycopg2
import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from flightdeck import lake, settings
from internals import dbt_launcher
from tests.lake_fixtures import PASSWORD, lake_query
from tests.postgres import requires_postgres
from tests.runs import load_reference, run_job

DAYS = ("2013-01-02", "2013-01-04")
settings_for_catalogs = hypothesis_settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXPLORE", "200")),
    deadline=None,
    derandomize="HYPOTHESIS_EXPLORE" not in os.environ,
)


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
    assert lake.redact("dbname=x password=hun\\ ter2 user=u") == "dbname=x password=*** user=u"
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


# Any text a connection string's value may hold: spaces, quotes, backslashes, '=', '@', '/', non-ASCII.
VALUE = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1
)
# A password that cannot occur by chance in the rest of the string (the check is "never shown").
PASSWORDS = st.builds(lambda core: f"Pw{core}#9", VALUE)
KEYS = ["dbname", "host", "port", "user", "sslmode", "application_name"]


@settings_for_catalogs
@given(st.dictionaries(st.sampled_from(KEYS), VALUE, min_size=1), PASSWORDS, st.data())
def test_any_libpq_catalog_means_what_libpq_reads_and_never_shows_its_password(parts, password, data):
    from psycopg2.extensions import make_dsn, parse_dsn

    parts = {**parts, "password": password}
    assume(all(password not in v for k, v in parts.items() if k != "password"))
    catalog = make_dsn(**parts)  # libpq's own quoting
    assert parse_dsn(lake.catalog_dsn(catalog)) == parts
    assert password not in lake.redact(lake.catalog_dsn(catalog)) and password not in lake.redact(catalog)
    # Broken, it is refused with a LakeConfigError that does not show the password.
    broken = data.draw(st.sampled_from([catalog + " junk", catalog + " =x", "junk " + catalog]))
    with pytest.raises(lake.LakeConfigError) as raised:
        lake.catalog_dsn(broken)
    assert password not in str(raised.value)


@settings_for_catalogs
@given(VALUE, PASSWORDS, st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True), st.integers(1, 65535), VALUE)
def test_any_catalog_url_means_what_it_says_and_never_shows_its_password(user, password, host, port, dbname):
    from urllib.parse import quote

    from psycopg2.extensions import parse_dsn

    assume(all(password not in v for v in (user, host, dbname)))
    url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(dbname, safe='')}"
    expected = {"dbname": dbname, "host": host, "port": str(port), "user": user, "password": password}
    assert parse_dsn(lake.catalog_dsn(url)) == expected
    assert password not in lake.redact(url) and quote(password, safe="") not in lake.redact(url)
    assert password not in lake.redact(lake.catalog_dsn(url))
    for broken in (url.replace(f":{port}/", ":port/"), url.replace("postgresql://", "mysql://")):
        with pytest.raises(lake.LakeConfigError) as raised:
            lake.catalog_dsn(broken)
        assert password not in str(raised.value) and quote(password, safe="") not in str(raised.value)


# -- On a real catalog ------------------------------------------------------------------------------------


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
    # One mart alone, as the UI's Materialize on it: what the build does not select is read as published
    # (macros/prepare_unselected_models.sql; on the lake the staging view too, a build's being its own).
    fct_flights = [dg.AssetKey(["marts", "fct_flights"])]
    assert run_job("flights_pipeline", instance, partition=DAYS[1], asset_selection=fct_flights).success
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
        # The runs' dbt commands went to the host's dbt server (internals/dbt_launcher.py, serve_host).
        assert dbt_launcher.server_pid(dbt_launcher.server_socket_path(str(settings.DBT_PROJECT_DIR)))
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


def catalog_sessions() -> int:
    """Sessions open on the test's lake catalog database (the lake's own, DuckDB's postgres scanner)."""
    from tests.postgres import PG_HOST, PG_PORT, PG_USER

    database = psycopg2.extensions.parse_dsn(lake.catalog_dsn(settings.get(settings.DUCKLAKE_CATALOG)))[
        "dbname"
    ]
    con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    try:
        with con.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            )
            return cursor.fetchone()[0]
    finally:
        con.close()


@requires_postgres
def test_a_run_s_connections_to_the_lake_share_one_instance_that_ends_with_the_run(on_lake, monkeypatch):
    """Within a run's resources (a run, a sensor's evaluation) every connection to the lake is a cursor
    of one DuckDB that attached the lake once: its own transactions and temp tables, the others'
    commits seen; the catalog sessions end with the resources. Outside a run each connection is its
    own."""
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(
        path=str(on_lake.duckdb_path), kind="ducklake", lake_data_path=str(on_lake.root / "lake")
    )
    spill_folder = "SELECT current_setting('temp_directory')"  # one of its own per DuckDB instance
    with dg.build_resources({"warehouse": warehouse}) as resources:
        with resources.warehouse.connect() as first, resources.warehouse.connect() as second:
            assert first.execute(spill_folder).fetchone() == second.execute(spill_folder).fetchone()
            first.execute("CREATE TEMP TABLE mine AS SELECT 1 AS n")
            assert not second.execute("SELECT * FROM duckdb_tables() WHERE table_name = 'mine'").fetchall()
            second.execute("CREATE TABLE shared_probe AS SELECT 42 AS n")
            assert first.execute("SELECT n FROM shared_probe").fetchall() == [(42,)]
        assert catalog_sessions() > 0
        with warehouse.connect() as own, resources.warehouse.connect() as shared:
            assert own.execute(spill_folder).fetchone() != shared.execute(spill_folder).fetchone()
    deadline = time.monotonic() + 10  # a server process ends a moment after its client hung up
    while catalog_sessions() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert catalog_sessions() == 0
    assert lake_query("SELECT n FROM shared_probe") == [(42,)]


@requires_postgres
def test_the_nightly_maintenance_compacts_and_expires_without_changing_what_the_lake_holds(
    on_lake, monkeypatch
):
    with dg.instance_for_test() as instance:
        load_reference(instance)
        assert run_job("flights_pipeline", instance, partition_range=DAYS).success
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
    from tests.test_alerts import evaluate_failure_sensor

    warehouse = DuckDBWarehouse(
        path=str(on_lake.duckdb_path), kind="ducklake", lake_data_path=str(on_lake.root / "lake")
    )
    for _ in range(2):  # the same failure twice: recorded twice, sent (here: logged) once
        on_lake.landing_file("2013-01-03").unlink(missing_ok=True)
        result = run_job("flights_pipeline", instance, partition="2013-01-03")
        assert not result.success
        evaluate_failure_sensor(result, instance, AlertChannels(), on_lake, warehouse)
    assert lake_query("SELECT kind, status FROM ops.alerts ORDER BY created_at") == [
        ("run_failure", "logged"),
        ("run_failure", "suppressed"),
    ]
    assert not on_lake.duckdb_path.exists()


def rollback(instance, run_id: str):
    from definitions import defs

    config = {"ops": {"rollback_marts": {"config": {"run_id": run_id}}}}
    return defs.resolve_job_def("lake_rollback").execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )


MARTS = {name: sql for name, sql in CONTENT.items() if name.startswith(("fct_", "agg_"))}


@requires_postgres
def test_a_wrong_publish_is_rolled_back_to_the_snapshot_before_it(on_lake, instance):
    """A day re-loaded from a file that passed every gate and test but was wrong (half its flights
    missing): `lake_rollback` with that run's id puts every mart it published back as it was, in one
    snapshot; a publish that a later one overwrote is refused, naming the later run."""
    load_reference(instance)
    assert run_job("flights_pipeline", instance, partition_range=DAYS).success
    good = {name: lake_query(sql) for name, sql in MARTS.items()}
    day = on_lake.landing_file(DAYS[0])
    lines = day.read_text().splitlines()
    day.write_text("\n".join(lines[: len(lines) // 2]) + "\n")  # a truncated file: still a valid one
    wrong = run_job("flights_pipeline", instance, partition=DAYS[0])
    assert wrong.success
    assert {name: lake_query(sql) for name, sql in MARTS.items()} != good

    result = rollback(instance, wrong.run_id)
    assert result.success
    assert {name: lake_query(sql) for name, sql in MARTS.items()} == good
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    rows = output.event_specific_data.metadata["rows"].value
    assert rows["fct_flights"] == len(good["fct_flights"])
    [(message, extra)] = lake_query(
        "SELECT commit_message, commit_extra_info FROM ducklake_snapshots('lake') "
        "ORDER BY snapshot_id DESC LIMIT 1"
    )
    assert message == lake.ROLLBACK_MESSAGE and wrong.run_id in extra

    # The day re-run after the fix publishes again; undoing the first run's publish now would undo
    # that one too: refused, naming it.
    day.write_text("\n".join(lines) + "\n")
    again = run_job("flights_pipeline", instance, partition=DAYS[0])
    assert again.success
    [first] = [r for r in instance.get_runs() if r.job_name == "flights_pipeline"][-1:]
    refused = rollback(instance, first.run_id)
    assert not refused.success
    [failure] = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
    assert again.run_id in failure.event_specific_data.error.message
    assert "undo those first" in failure.event_specific_data.error.message
    unknown = rollback(instance, "no-such-run")
    assert not unknown.success


def test_there_is_nothing_to_roll_back_on_the_duckdb_file(env, instance):
    result = rollback(instance, "any-run")
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "keeps no snapshots" in failure.event_specific_data.error.message

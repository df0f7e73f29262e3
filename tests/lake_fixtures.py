"""A DuckLake warehouse for a test: a scratch catalog database on the local PostgreSQL and a data folder."""

import pytest

from flightdeck import lake, settings
from tests.postgres import PG_HOST, PG_PORT, PG_USER, scratch_database

# trust authentication ignores it: it stands for a real password, which must never be shown
PASSWORD = "s3cret-pw"


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

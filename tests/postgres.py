"""A scratch PostgreSQL database on 127.0.0.1:5432 for the production-path tests; dropped afterwards."""

import uuid
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
ADMIN_URL = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"


def postgres_available() -> bool:
    try:
        engine = sa.create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


requires_postgres = pytest.mark.skipif(
    not postgres_available(), reason=f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} (user {PG_USER})"
)


@contextmanager
def scratch_database():
    """Yields the name of a new, empty database; drops it (and its connections) on exit."""
    name = f"flightdeck_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

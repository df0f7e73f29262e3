"""The operational database that holds the reference tables (SQLite by default, PostgreSQL in prod)."""

from __future__ import annotations

import time

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from flightdeck.backoff import backoff_delays


def redact(url: str) -> str:
    """The URL without its password, for logs and metadata."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


class ReferenceDatabase(dg.ConfigurableResource):
    """Reads whole reference tables; connection failures are retried with bounded backoff."""

    url: str
    connect_attempts: int = 4
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 8.0

    @property
    def display_url(self) -> str:
        return redact(self.url)

    def read_table(self, table: str) -> pd.DataFrame:
        engine = sa.create_engine(self.url, pool_pre_ping=True)
        delays = backoff_delays(self.connect_attempts - 1, self.retry_base_seconds, self.retry_max_seconds)
        try:
            for delay in [*delays, None]:
                try:
                    with engine.connect() as conn:
                        return pd.read_sql_table(table, conn)
                except sa.exc.OperationalError as exc:
                    if delay is None:
                        # The message of an OperationalError can echo the DSN; never let it reach the logs.
                        raise dg.Failure(
                            f"reference database {self.display_url} unreachable after "
                            f"{self.connect_attempts} attempts: {type(exc.orig).__name__}"
                        ) from None
                    time.sleep(delay)
        finally:
            engine.dispose()
        raise AssertionError("unreachable")

"""The DuckDB warehouse: short-lived connections, opened only by code that reads or writes.

DuckDB allows one writer process per file. Nothing holds the file at import, in the webserver or in the
daemon; a run opens it for writing only while it writes. Writers are serialised by the `duckdb_writer`
pool (dagster.yaml); a conflicting lock that still happens (an analyst's session, a CLI run outside the
queue) is retried with bounded exponential backoff and jitter, then fails with a clear message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from resources import settings

WRITER_POOL = "duckdb_writer"


class WarehouseLockedError(Exception):
    pass


class WarehouseCorruptError(Exception):
    """The warehouse file is not a readable DuckDB database: retrying cannot help."""


# DuckDB's own words for a lock another process holds (duckdb/src/common/file_system.cpp): nothing else
# counts as a lock, so a corrupt file is never retried as one.
LOCK_MESSAGE = "Could not set lock on file"
# ... and for a file that is not (or no longer) a whole DuckDB database.
CORRUPT_MESSAGES = (
    "is not a valid DuckDB database file",
    "Corrupt database file",
    "Could not read enough bytes from file",
    "does not match stored checksum",
)


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and LOCK_MESSAGE in str(exc)


def is_corrupt_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.Error) and any(m in str(exc) for m in CORRUPT_MESSAGES)


def backoff_delays(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> list[float]:
    """Full-jitter exponential backoff: attempt k waits uniform(0, min(cap, base * 2**k))."""
    rng = rng or random.Random()
    return [rng.uniform(0, min(cap, base * 2**k)) for k in range(attempts)]


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """UTC session; memory bounded (DuckDB spills larger intermediates to its temp directory)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def connect_with_retry(
    path: Path, read_only: bool, attempts: int, base: float, cap: float, memory_limit: str
):
    delays = backoff_delays(attempts, base, cap)
    for attempt, delay in enumerate([*delays, None]):
        try:
            return configure(duckdb.connect(str(path), read_only=read_only), memory_limit)
        except duckdb.Error as exc:
            if is_corrupt_error(exc):
                raise WarehouseCorruptError(
                    f"DuckDB warehouse {path} is corrupt or truncated ({str(exc).splitlines()[0]}); nothing "
                    "was written. Restore it from a backup, or move it aside and rebuild it with a backfill "
                    "(README, Troubleshooting)"
                ) from exc
            if not is_lock_error(exc):
                raise
            if delay is None:
                raise WarehouseLockedError(
                    f"DuckDB file {path} is locked by another process after {attempt + 1} attempts; "
                    "close other sessions writing to it (see README, Troubleshooting)"
                ) from exc
            time.sleep(delay)
    raise AssertionError("unreachable")


class DuckDBWarehouse(dg.ConfigurableResource):
    """Opens the warehouse file on demand; every connection is closed when its block ends."""

    path: str
    lock_retry_attempts: int = 8
    lock_retry_base_seconds: float = 0.2
    lock_retry_max_seconds: float = 5.0
    memory_limit: str = "1GB"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The file a run writes is the deployment's (FLIGHTDECK_DUCKDB_PATH), never a launchpad's choice.
        expected = settings.get(settings.DUCKDB_PATH)
        if Path(self.path).resolve() != Path(expected).resolve():
            raise dg.Failure(
                description=f"the warehouse path cannot be set in a run's configuration ({self.path!r}); "
                f"it is {settings.DUCKDB_PATH} ({expected})",
                allow_retries=False,
            )

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.path)
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_with_retry(
            path,
            read_only,
            self.lock_retry_attempts,
            self.lock_retry_base_seconds,
            self.lock_retry_max_seconds,
            self.memory_limit,
        )
        try:
            yield con
        finally:
            con.close()

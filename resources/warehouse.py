"""The DuckDB warehouse: short-lived connections, opened only by code that reads or writes.

DuckDB allows one writer process per file. Nothing holds the file at import, in the webserver or in the
daemon; a run opens it for writing only while it writes.

One writing step at a time, however its run was launched: every step that writes holds the warehouse's
writer lock (`writer()`, an flock on <warehouse>.writer.lock) from its first write to its end, dbt's
process included. The run queue's `duckdb_writer` pool (dagster.yaml, run granularity) keeps queued runs
from even starting meanwhile, but a run from a shell (`dagster asset materialize`, `dg launch`) never
passes the queue, so the lock is what serialises it. Why a file lock and not the pool at op
granularity: a pool slot is held in the instance's storage and a run process killed outright (SIGKILL,
out of memory) never gives it back unless run monitoring fails the run, which it cannot for a shell's
run, so every later writer would wait forever; the kernel releases an flock the moment its process dies.

A DuckDB lock held by something outside flightdeck (an analyst's session) is retried with exponential
backoff and jitter for FLIGHTDECK_DUCKDB_LOCK_WAIT_SECONDS, then fails with a clear message.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from flightdeck import cpu_share, lake, settings
from flightdeck.backoff import backoff_delay, wait_for

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


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """UTC session; memory bounded (DuckDB spills larger intermediates to its temp directory)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def connect_with_retry(
    path: Path, read_only: bool, wait_seconds: float, base: float, cap: float, memory_limit: str
):
    """Opens the file, waiting out a lock held by another process for up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    for attempt in itertools.count(1):
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
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseLockedError(
                    f"DuckDB file {path} is locked by another process after {attempt} attempts in "
                    f"{wait_seconds:g} s (FLIGHTDECK_DUCKDB_LOCK_WAIT_SECONDS); close other sessions writing "
                    "to it (see README, Troubleshooting)"
                ) from exc
            time.sleep(min(backoff_delay(attempt - 1, base, cap), left))
    raise AssertionError("unreachable")


WRITER_LOCK_POLL_SECONDS = 0.5


class WriterLockTimeout(Exception):
    pass


def _try_slot(lock_paths: list[Path]) -> int | None:
    """The descriptor of the first of `lock_paths` this process could lock, or None if all are held."""
    taken = cpu_share.lock_first_free(lock_paths)
    return None if taken is None else taken[1]


def lock_paths(path: Path, name: str, slots: int) -> list[Path]:
    """<path>.<name>.lock, and <path>.<name>.lock.<i> for every further slot."""
    first = path.with_name(f"{path.name}.{name}.lock")
    return [first] + [first.with_name(f"{first.name}.{i}") for i in range(1, slots)]


@contextmanager
def writer_lock(
    path: Path, holder: dict[str, str], timeout: float, log=None, slots: int = 1, name: str = "writer"
) -> Iterator[None]:
    """Hold one of `slots` locks <path>.<name>.lock[.i] exclusively; wait for one (saying who holds the
    first, once) up to `timeout` s. One slot on the DuckDB file; several on a DuckLake (module docstring)."""
    paths = lock_paths(path, name, slots)
    paths[0].parent.mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        if log is not None:
            log.info(f"waiting for the warehouse {name} lock, held by {_holder_of_path(paths[0])}")

    def timed_out() -> Exception:
        return WriterLockTimeout(
            f"the warehouse {name} lock {paths[0]} was held by {_holder_of_path(paths[0])} for more than "
            f"{timeout:.0f} s (FLIGHTDECK_STEP_TIMEOUT_SECONDS)"
        )

    fd = wait_for(lambda: _try_slot(paths), timeout, WRITER_LOCK_POLL_SECONDS, waiting, timed_out)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**holder, "pid": os.getpid()}).encode(), 0)
        try:
            with _announced(log, name):
                yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock; so does the process's death


@contextmanager
def _announced(log, name: str) -> Iterator[None]:
    """The step's log says when it held a warehouse lock (tests read these lines to find overlaps)."""
    if log is not None:
        log.info(f"holding the warehouse {name} lock")
    try:
        yield
    finally:
        if log is not None:
            log.info(f"released the warehouse {name} lock")


@contextmanager
def lake_dbt_lock(
    catalog: str, names: list[str], holder: dict[str, str], timeout: float, log=None, label: str = "dbt"
) -> Iterator[None]:
    """dbt's locks on a DuckLake (`names`: lake.dbt_window_lock_names, lake.DBT_PUBLISH_LOCK), held in the
    catalog database so they hold on any host (lake.lake_lock); the step's log names them `label`."""
    who = ", ".join(f"{k} {v}" for k, v in holder.items())

    def waiting(held_by: str) -> None:
        if log is not None:
            log.info(f"waiting for the warehouse {label} lock, held by {held_by}")

    with lake.lake_lock(catalog, names, who, timeout, on_wait=waiting), _announced(log, label):
        yield


@contextmanager
def _waiting_aside(lock: contextlib.AbstractContextManager[None]) -> Iterator[None]:
    """Enter `lock` with this process's share of the cores given up while it waits (cpu_share.aside)."""
    with contextlib.ExitStack() as held:
        with cpu_share.aside():
            held.enter_context(lock)
        yield


def _holder(context) -> dict[str, str]:
    """Who holds a lock: the run and the step (an asset's, a check's or an op's context)."""
    op = getattr(context, "op_execution_context", context)
    return {"run": op.run_id, "step": op.op_def.name}


def _step_timeout() -> float:
    return float(settings.get(settings.STEP_TIMEOUT))


def _holder_of_path(lock_path: Path) -> str:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        return _holder_of(fd)
    finally:
        os.close(fd)


def _holder_of(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        holder = {}
    return ", ".join(f"{k} {v}" for k, v in holder.items()) or "another process"


class DuckDBWarehouse(dg.ConfigurableResource):
    """Opens the warehouse on demand; every connection is closed when its block ends.

    The warehouse is the DuckDB file at `path`, or with `kind="ducklake"` a DuckLake on the PostgreSQL
    catalog FLIGHTDECK_DUCKLAKE_CATALOG with its data under `lake_data_path` (flightdeck/lake.py): the
    connection is then an in-memory DuckDB whose default catalog is the lake, so every caller's SQL is the
    same. The catalog's connection string may hold a password: it is read from the settings when a
    connection opens, never part of the resource's configuration the UI shows.
    """

    path: str
    lock_wait_seconds: float = 30.0  # FLIGHTDECK_DUCKDB_LOCK_WAIT_SECONDS
    lock_retry_base_seconds: float = 0.2
    lock_retry_max_seconds: float = 5.0
    memory_limit: str = "1GB"
    kind: str = "duckdb"
    lake_data_path: str = ""
    writers: int = 1  # steps that may write at once on a DuckLake (FLIGHTDECK_WAREHOUSE_WRITERS)
    _lake: lake.SharedInstance | None = PrivateAttr(default=None)

    @property
    def is_lake(self) -> bool:
        return self.kind.strip().lower() == "ducklake"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The file a run writes is the deployment's (FLIGHTDECK_DUCKDB_PATH), never a launchpad's choice.
        expected = settings.get(settings.DUCKDB_PATH)
        if Path(self.path).resolve() != Path(expected).resolve():
            raise dg.Failure(
                description=f"the warehouse path cannot be set in a run's configuration ({self.path!r}); "
                f"it is {settings.DUCKDB_PATH} ({expected})",
                allow_retries=False,
            )
        if self.is_lake:  # one lake instance for the run's connections, opened at the first
            self._lake = lake.SharedInstance(self._open_lake)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # With a teardown the resource is a context manager to Dagster: a test building a sensor's
        # context with it does so in a `with` block.
        if self._lake is not None:
            self._lake.close()
            self._lake = None

    @contextmanager
    def writer(self, context) -> Iterator[None]:
        """The warehouse's writer lock for the rest of a step (module docstring). On a DuckLake, up to
        `writers` steps of this host write at once, each with its share of the host's cores."""
        slots = self.writers if self.is_lake else 1
        holder, timeout = _holder(context), _step_timeout()
        with writer_lock(Path(self.path), holder, timeout, log=context.log, slots=slots), self.cpu_share():
            yield

    def cpu_share(self) -> contextlib.AbstractContextManager[None]:
        """On a DuckLake, a share of this host's cores for the block (flightdeck/cpu_share.py): the
        connections it opens, and the statements that fit their threads, divide the cores with the other
        steps working the lake on this host. Nothing on the DuckDB file, written by one step at a time."""
        if not self.is_lake:
            return contextlib.nullcontext()
        return cpu_share.share(Path(self.path).with_name(f"{Path(self.path).name}.cpu"))

    def dbt_lock(
        self, context, window: tuple, publish: bool = True
    ) -> contextlib.AbstractContextManager[None]:
        """What a dbt step holds around its build of `window`. On the DuckDB file, the writer lock: dbt
        writes the warehouse from its first model. On a DuckLake, where a build is dbt's own until it
        publishes (dbt_project/macros/generate_database_name.sql), the locks of the window's months:
        builds of overlapping windows take turns, so a build never publishes over the window's build by a
        newer load that it did not see, and builds of other months run side by side; with `publish`,
        the publish lock too, for a dbt that cannot be stopped at its publish (no gate)."""
        if not self.is_lake:
            return self.writer(context)
        names = lake.dbt_window_lock_names(*window) + ([lake.DBT_PUBLISH_LOCK] if publish else [])
        label = "dbt" if publish else "dbt window"
        return lake_dbt_lock(
            settings.get(settings.DUCKLAKE_CATALOG),
            names,
            _holder(context),
            _step_timeout(),
            context.log,
            label,
        )

    def publish_lock(self, context) -> contextlib.AbstractContextManager[None]:
        """On a DuckLake, one publish of the marts at a time in the deployment (publishes replace rows of
        the same tables, which DuckLake would refuse as a commit conflict); taken at dbt's gate, with the
        step's share of the cores given up while it waits."""
        return _waiting_aside(lake_dbt_lock(
            settings.get(settings.DUCKLAKE_CATALOG), [lake.DBT_PUBLISH_LOCK], _holder(context),
            _step_timeout(), context.log, "dbt publish",
        ))  # fmt: skip

    def commit_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Writers of one table one at a time around their transaction on a DuckLake (lake.commit_lock);
        nothing on the DuckDB file, whose writer lock already admits one writer."""
        if not self.is_lake:
            return contextlib.nullcontext()
        return _waiting_aside(lake.commit_lock(settings.get(settings.DUCKLAKE_CATALOG), name))

    def _open_lake(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A DuckDB with the lake attached; the catalog is read from the settings, never configured."""
        return lake.connect(
            settings.get(settings.DUCKLAKE_CATALOG),
            self.lake_data_path,
            settings.duckdb_extension_dir(),
            read_only,
        )

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.is_lake:
            shared = self._lake is not None and not read_only
            con = configure(self._lake.cursor() if shared else self._open_lake(read_only), self.memory_limit)
            try:
                cpu_share.fit_threads(con)
                yield con
            finally:
                con.close()
            return
        path = Path(self.path)
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_with_retry(
            path,
            read_only,
            self.lock_wait_seconds,
            self.lock_retry_base_seconds,
            self.lock_retry_max_seconds,
            self.memory_limit,
        )
        try:
            yield con
        finally:
            con.close()

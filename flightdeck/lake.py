"""The warehouse as a DuckLake: table metadata in a PostgreSQL catalog, data as Parquet files under a
data path (a folder here; an object-store prefix in production, docs/scaling.md).

`FLIGHTDECK_WAREHOUSE=ducklake` turns it on; the embedded default stays the DuckDB file. Every connection
is an in-memory DuckDB that attaches the lake as `lake` and makes it the default catalog, so the same SQL
(`raw.flights`, `marts.fct_flights`, temp tables) runs on either warehouse.

DuckDB installs extensions by downloading them, which these machines cannot do; PyPI ships the two the
lake needs as packages for this DuckDB release (`duckdb-extension-ducklake`, `duckdb-extension-postgres`).
DuckDB looks for an extension as `<extension_directory>/v<version>/<platform>/<name>.duckdb_extension`, and
knows the postgres extension as `postgres_scanner`: `extension_directory()` lays the packages' files out
that way (links, made once) and DuckDB autoloads them on `ATTACH 'ducklake:postgres:…'`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import json
import os
import platform
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb

from flightdeck.backoff import retrying, wait_for

ALIAS = "lake"
# How often a transaction that lost a commit conflict to another writer is run again.
COMMIT_CONFLICT_RETRIES = 8
T = TypeVar("T")
# The extension each package ships, and the name DuckDB loads it by.
_EXTENSIONS = {
    "duckdb_extension_ducklake": ("ducklake", "ducklake"),
    "duckdb_extension_postgres": ("postgres", "postgres_scanner"),
}


class LakeConfigError(ValueError):
    """The lake's settings cannot work; the message says which and why."""


def _platform() -> str:
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    if machine is None or platform.system() != "Linux":
        raise LakeConfigError(f"no DuckDB extension packages for {platform.system()} {platform.machine()}")
    return f"linux_{machine}"


@functools.cache  # once per process: every connection to the lake asks for it
def extension_directory(root: Path) -> Path:
    """`root`, laid out as DuckDB's extension directory for the installed extension packages."""
    version = "v" + duckdb.__version__
    target = root / version / _platform()
    target.mkdir(parents=True, exist_ok=True)
    for package, (shipped, loaded_as) in _EXTENSIONS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise LakeConfigError(f"the DuckLake warehouse needs the package {package.replace('_', '-')}")
        source = Path(next(iter(spec.submodule_search_locations))) / "extensions" / version
        source = source / f"{shipped}.duckdb_extension"
        if not source.exists():
            raise LakeConfigError(f"{package} has no extension for DuckDB {duckdb.__version__} ({source})")
        link = target / f"{loaded_as}.duckdb_extension"
        if not (link.is_symlink() and link.resolve() == source.resolve()):
            temporary = link.with_name(f".{link.name}.{os.getpid()}")
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(source)
            temporary.replace(link)  # atomic: a concurrent process sees the old link or the new one
    return root


# One `key=value` of a libpq connection string: the value bare, or single-quoted with \\ escapes.
# A libpq value: quoted, or unquoted up to a blank; in both a backslash escapes the next character.
_LIBPQ_VALUE = r"'(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*"
_LIBPQ_PAIR = re.compile(rf"\s*(\w+)\s*=\s*({_LIBPQ_VALUE})\s*")


def catalog_dsn(catalog: str) -> str:
    """The catalog in libpq `key=value` form, from that form or a `postgresql://` URL."""
    catalog = catalog.strip()
    if not catalog:
        raise LakeConfigError(
            "FLIGHTDECK_DUCKLAKE_CATALOG is empty: set it to the catalog's PostgreSQL connection string "
            "(dbname=… host=… user=…, or postgresql://user@host:port/dbname)"
        )
    if "://" not in catalog:
        pairs, at = [], 0
        while at < len(catalog):
            match = _LIBPQ_PAIR.match(catalog, at)
            if match is None:
                raise LakeConfigError(
                    f"FLIGHTDECK_DUCKLAKE_CATALOG is not a libpq connection string (key=value ...): {redact(catalog)}"
                )
            pairs.append(match.groups())
            at = match.end()
        return " ".join(f"{k}={v}" for k, v in pairs)
    url = urlsplit(catalog)
    if url.scheme not in ("postgres", "postgresql"):
        raise LakeConfigError(f"FLIGHTDECK_DUCKLAKE_CATALOG must be a PostgreSQL URL, not {url.scheme}://")
    try:
        port = url.port
    except ValueError:
        raise LakeConfigError(
            f"FLIGHTDECK_DUCKLAKE_CATALOG's port is not a number from 1 to 65535: {redact(catalog)}"
        ) from None
    parts = {
        "dbname": unquote(url.path.lstrip("/")),
        "host": unquote(url.hostname or ""),
        "port": str(port or ""),
        "user": unquote(url.username or ""),
        "password": unquote(url.password or ""),
        **dict(parse_qsl(url.query)),
    }
    return " ".join(f"{k}={_libpq_value(v)}" for k, v in parts.items() if v)


def _libpq_value(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def redact(text: str) -> str:
    """`text` with every catalog password replaced: for logs, errors and metadata."""
    text = re.sub(
        r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|(?:[^\s\\]|\\.)+)", r"\1***", text, flags=re.IGNORECASE
    )
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def data_path(value: str) -> str:
    """The lake's data path as DuckLake stores it: an object-store prefix as given, a folder absolute and
    ending in a slash (DuckLake joins file names to it)."""
    if not value.strip():
        raise LakeConfigError(
            "FLIGHTDECK_DUCKLAKE_DATA_PATH is empty: set it to the lake's data folder or prefix"
        )
    if "://" in value:
        return value.strip()
    return str(Path(value.strip()).resolve()) + "/"


def attach_sql(catalog: str, data_path_: str, read_only: bool = False) -> str:
    """The ATTACH statement of the lake."""
    target = "ducklake:postgres:" + catalog_dsn(catalog)
    options = [f"DATA_PATH {_sql_string(data_path(data_path_))}"] + (["READ_ONLY"] if read_only else [])
    return f"ATTACH {_sql_string(target)} AS {ALIAS} ({', '.join(options)})"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def connect(
    catalog: str, data_path: str, extensions: Path, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as its default catalog. Errors name no password.

    It spills to a folder of its own (`own_temp_directory`): an in-memory DuckDB spills to `./.tmp` by
    default, under fixed file names, and two of them spilling in one working directory at once (two
    loading steps on one host, or dbt beside a load) write over each other's blocks and crash."""
    if not read_only and "://" not in data_path:
        Path(data_path).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "extension_directory": str(extension_directory(extensions)),
            "temp_directory": own_temp_directory(),
        }
    )
    try:
        _attach(con, attach_sql(catalog, data_path, read_only))
        con.execute(f"USE {ALIAS}")
    except duckdb.Error as exc:
        con.close()
        raise type(exc)(redact(str(exc))) from None
    return con


class SharedInstance:
    """One DuckDB with the lake attached (`open_instance()`, on first use), handing out a cursor per
    connection: a connection of its own (its transactions, temp tables, `USE`) to the same instance.

    Why: each new DuckDB instance loads the lake's two extensions again, verifying their signatures, and
    attaches the catalog anew, a fixed cost that a run paid at every connection its steps opened. The
    warehouse resource keeps one for the life of a run's resources (DuckDBWarehouse.setup_for_execution
    to teardown_after_execution), so no process holds a catalog session or a buffer cache beyond a run
    or a sensor's evaluation. A process forked from the owner opens its own."""

    def __init__(self, open_instance: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._open, self._instance, self._pid = open_instance, None, None
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._instance is None or self._pid != os.getpid():
                self._instance, self._pid = self._open(), os.getpid()
            con = self._instance.cursor()
        con.execute(f"USE {ALIAS}")
        return con

    def close(self) -> None:
        with self._lock:
            if self._instance is not None and self._pid == os.getpid():
                self._instance.close()
            self._instance = self._pid = None


# DuckDB's words when the lake's first ATTACH could not create the catalog's tables.
FAILED_TO_INITIALIZE = "Failed to initialize DuckLake"


def _attach(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """ATTACH the lake; on a new catalog, again while another process's first ATTACH wins the race to
    create the catalog's tables (two steps starting at once on a new lake: the loser's creation fails
    on PostgreSQL's unique names, then finds the tables made)."""
    retrying(
        lambda: con.execute(sql),
        lambda exc: isinstance(exc, duckdb.Error) and FAILED_TO_INITIALIZE in str(exc),
        COMMIT_CONFLICT_RETRIES, 0.2, 2.0,
    )  # fmt: skip


def own_temp_directory() -> str:
    """A folder no other DuckDB spills to, under the system's temporary folder. DuckDB creates it when it
    first spills and removes it when the connection closes."""
    return os.path.join(tempfile.gettempdir(), f"flightdeck-duckdb-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def _catalog_session(catalog: str, application_name: str = "flightdeck"):
    """A session of its own on the catalog database (autocommit), for the lake's locks: a lock held by a
    session is released when the session ends, however its process ends. `application_name` is how
    PostgreSQL shows the session to others (pg_stat_activity), so a waiter can say who holds a lock."""
    import psycopg2

    try:
        session = psycopg2.connect(
            catalog_dsn(catalog), connect_timeout=10, application_name=application_name[:63]
        )
    except psycopg2.Error as exc:
        raise LakeConfigError(f"the lake's catalog is not reachable: {redact(str(exc)).strip()}") from None
    session.autocommit = True
    return session


def _lock_key(name: str) -> str:
    return f"flightdeck:{name}"


@contextlib.contextmanager
def commit_lock(catalog: str, name: str) -> Iterator[None]:
    """Hold the lake-wide lock `name` (a PostgreSQL advisory lock in the catalog database, so it holds
    across processes and hosts) until the block ends; the session's end releases it, whatever ends it.

    Why: DuckLake detects two writers of one table only when one of them deleted rows the other's commit
    touches; two first loads of the same day delete nothing, so both would commit and the day would hold
    its rows twice. Writers of one table take this lock around their transaction (not around their
    reading and validating, which still run side by side), so each sees the other's committed rows.
    """
    session = _catalog_session(catalog)
    try:
        with session.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [_lock_key(name)])
        yield
    finally:
        session.close()


# dbt's locks on the lake (resources/warehouse.py, DuckDBWarehouse.dbt_lock and publish_lock).
DBT_PUBLISH_LOCK = "dbt publish"


def dbt_window_lock_names(first: dt.date, last: dt.date) -> list[str]:
    """The locks a dbt build of the inclusive window takes: one per month it touches. By month, not by
    day: a year's build takes 12 advisory locks, not 365, at the cost of builds of different days of one
    month taking turns (a daily build is short)."""
    if last < first:
        raise ValueError(f"empty window {first}..{last}")
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(f"dbt window {month:%Y-%m}")
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


class LakeLockTimeout(TimeoutError):
    pass


LAKE_LOCK_POLL_SECONDS = 0.5


@contextlib.contextmanager
def lake_lock(
    catalog: str,
    names: Sequence[str],
    holder: str,
    timeout: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lake-wide locks `names` for a long step (a dbt build), as `holder`; wait for them up to
    `timeout` s in all, telling `on_wait` once per lock who holds it (their `holder` and host), then fail
    saying so.

    Advisory locks in the catalog database, like commit_lock, so one holder in the whole deployment
    whatever host its step runs on (a file lock would be one per host); polled rather than blocked on,
    so the wait is bounded and a waiter can name the holder. Taken one by one in sorted order, so two
    holders of overlapping sets never each wait for a lock the other holds.
    """
    session = _catalog_session(catalog, holder)
    try:
        deadline = time.monotonic() + timeout
        with session.cursor() as cursor:
            for name in sorted(set(names)):

                def take(name: str = name) -> bool | None:
                    cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [_lock_key(name)])
                    return cursor.fetchone()[0] or None

                def waiting(name: str = name) -> None:
                    if on_wait is not None:
                        on_wait(_lock_holder(cursor, name))

                def timed_out(name: str = name) -> Exception:
                    return LakeLockTimeout(
                        f"the lake's {name} lock was held by {_lock_holder(cursor, name)} for more than "
                        f"{timeout:.0f} s (FLIGHTDECK_STEP_TIMEOUT_SECONDS)"
                    )

                wait_for(take, deadline - time.monotonic(), LAKE_LOCK_POLL_SECONDS, waiting, timed_out)
        yield
    finally:
        session.close()


def _lock_holder(cursor, name: str) -> str:
    """Who holds the advisory lock `name`: its session's application name and client host. A bigint
    advisory key shows in pg_locks as its high 32 bits (classid) and low 32 bits (objid); advisory locks
    are per database, and pg_locks shows every database's: only this catalog's holder counts."""
    cursor.execute(
        """SELECT a.application_name, coalesce(host(a.client_addr), 'this host (socket)')
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid::bigint = (hashtext(%(key)s)::bigint >> 32) & 4294967295
             AND l.objid::bigint = hashtext(%(key)s)::bigint & 4294967295""",
        {"key": _lock_key(name)},
    )
    row = cursor.fetchone()
    return f"{row[0] or 'a session with no name'} on {row[1]}" if row else "another session (gone now)"


def is_commit_conflict(exc: BaseException) -> bool:
    """A DuckLake commit that lost to another writer's: its whole transaction was undone, none of it kept."""
    return isinstance(exc, duckdb.TransactionException) and "Transaction conflict" in str(exc)


def retrying_conflicts(transaction: Callable[[], T]) -> T:
    """`transaction()`, run again (with backoff) while its commit loses to another writer's. On a DuckLake
    writers of one table conflict at commit even on different rows (two first loads creating the same
    table, two loads replacing days of it); on the DuckDB file there is one writer and no conflict."""
    # is_commit_conflict looked up at each failure (a test counts the conflicts through it)
    return retrying(transaction, lambda exc: is_commit_conflict(exc), COMMIT_CONFLICT_RETRIES, 0.2, 5.0)


def maintenance_sql(retention_days: float) -> list[str]:
    """DuckLake's own maintenance, in order: merge the small Parquet files many small commits leave
    (daily loads, inlined inserts flushed), expire snapshots older than the retention (time travel and
    rollback reach back that far), then delete the files no snapshot references any more."""
    older_than = f"now() - to_seconds({float(retention_days) * 86400:.0f})"
    return [
        f"CALL ducklake_flush_inlined_data('{ALIAS}')",
        f"CALL ducklake_merge_adjacent_files('{ALIAS}')",
        f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => {older_than})",
        f"CALL ducklake_cleanup_old_files('{ALIAS}', older_than => {older_than})",
    ]


# Every publish of the marts on the lake is one snapshot whose commit says so (publish_marts.sql): its
# author, and extra_info a JSON object with the run id and the marts it replaced.
COMMIT_AUTHOR = "flightdeck"
PUBLISH_MESSAGE = "publish marts"
ROLLBACK_MESSAGE = "rollback marts"


class RollbackRefused(Exception):
    """The publish cannot be undone as asked (no such publish, or a later one of the same marts)."""


@dataclass(frozen=True)
class UndonePublish:
    publish_snapshot: int
    to_snapshot: int
    marts: tuple[str, ...]
    rows: dict[str, int | None]  # each mart's rows after the rollback (None: it did not exist before)


def publishes(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, tuple[str, ...]]]:
    """(snapshot id, run id, marts) of every publish the lake still holds, oldest first."""
    rows = con.execute(
        f"SELECT snapshot_id, commit_extra_info FROM ducklake_snapshots('{ALIAS}') "
        "WHERE author = ? AND commit_message = ? ORDER BY snapshot_id",
        [COMMIT_AUTHOR, PUBLISH_MESSAGE],
    ).fetchall()
    return [
        (snapshot, (info := json.loads(extra))["run_id"], tuple(info["marts"])) for snapshot, extra in rows
    ]


def rollback_publish(con: duckdb.DuckDBPyConnection, run_id: str, by_run_id: str) -> UndonePublish:
    """Put every mart the latest publish of `run_id` replaced back as it was in the snapshot before it,
    in one transaction (DuckLake's time travel, `AT (VERSION => n)`); refused when a later publish
    replaced one of them too, since undoing this one would undo that one silently."""
    held = publishes(con)
    mine = [p for p in held if p[1] == run_id]
    if not mine:
        raise RollbackRefused(
            f"run {run_id} published nothing the lake still holds (never on the lake, failed before "
            "publishing, or its snapshot expired: FLIGHTDECK_DUCKLAKE_SNAPSHOT_RETENTION_DAYS)"
        )
    snapshot, _, marts = mine[-1]
    later = [p for p in held if p[0] > snapshot and set(p[2]) & set(marts)]
    if later:
        runs = ", ".join(dict.fromkeys(p[1] for p in later))
        raise RollbackRefused(
            f"a later publish replaced these marts too (runs {runs}): undo those first, newest first"
        )
    before = snapshot - 1
    rows: dict[str, int | None] = {}

    def transaction() -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            for mart in marts:
                try:
                    con.execute(f"SELECT 1 FROM marts.{mart} AT (VERSION => {before}) LIMIT 0")
                except duckdb.CatalogException:  # published for the first time by that run
                    con.execute(f"DROP TABLE IF EXISTS marts.{mart}")
                    rows[mart] = None
                    continue
                con.execute(
                    f"CREATE OR REPLACE TABLE marts.{mart} AS SELECT * FROM marts.{mart} AT (VERSION => {before})"
                )
                rows[mart] = con.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0]
            extra = json.dumps({"undid_run_id": run_id, "to_snapshot": before, "run_id": by_run_id})
            con.execute(
                f"CALL {ALIAS}.set_commit_message(?, ?, extra_info => ?)",
                [COMMIT_AUTHOR, ROLLBACK_MESSAGE, extra],
            )
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise

    retrying_conflicts(transaction)
    return UndonePublish(snapshot, before, marts, rows)

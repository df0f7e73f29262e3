"""Retry, backfill and ownership policies shared by assets."""

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

from flightdeck import settings

OWNERS = ["team:data-platform"]

# Transient failures (a DuckDB lock held outside the pool, a dropped connection) are retried with
# exponential backoff and jitter, bounded. Validation failures raise Failure(allow_retries=False).
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# A backfill of any range is one run, one step per asset: the loader and dbt each process the whole
# window in one pass (see README, Backfills).
RANGED_BACKFILL = dg.BackfillPolicy.single_run()


@contextmanager
def retry_only_transient(*transient: type[BaseException]) -> Iterator[None]:
    """Let RetryPolicy retry only `transient` errors; anything else fails the step for good.

    A bug or bad data fails the same way on every attempt, so retrying it only delays the alert.
    """
    try:
        yield
    except (dg.Failure, dg.RetryRequested, *transient):
        raise
    except Exception as exc:
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc


@contextmanager
def step_deadline(seconds: float, stop: Callable[[], None], what: str) -> Iterator[None]:
    """Bound a step's own work: past `seconds`, call `stop` (and again every second) until the block ends.

    Dagster bounds runs (`dagster/max_runtime`, enforced by run monitoring) but not steps, and a run
    launched from the asset graph or the CLI carries no job tags. `stop` interrupts the work itself (a
    DuckDB query, the dbt process); the step then fails for good with the reason, and is reported.
    Written here because Dagster has no step timeout to configure.
    """
    expired, finished = threading.Event(), threading.Event()

    def watch() -> None:
        if finished.wait(seconds):
            return
        expired.set()
        while not finished.is_set():  # the work may be between two statements: keep stopping it
            stop()
            finished.wait(1.0)

    watcher = threading.Thread(target=watch, name=f"step deadline: {what}", daemon=True)
    watcher.start()
    try:
        yield
    except Exception as exc:
        if expired.is_set():
            raise dg.Failure(
                description=f"{what} exceeded its step timeout of {seconds:g} s and was stopped "
                f"(FLIGHTDECK_STEP_TIMEOUT_SECONDS)",
                metadata={"step_timeout_seconds": seconds},
                allow_retries=False,  # the same work would hang the same way
            ) from exc
        raise
    finally:
        finished.set()
        watcher.join()


def within_step_timeout(stop: Callable[[], None], what: str):
    """`step_deadline` at the configured FLIGHTDECK_STEP_TIMEOUT_SECONDS."""
    return step_deadline(float(settings.get(settings.STEP_TIMEOUT)), stop, what)


# Daily data is expected within a day and a bit of the last load; reference snapshots nightly; ops nightly.
# Applied once, where Definitions are assembled (definitions.py), by group.
FRESHNESS_BY_GROUP = {
    "raw": dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25)
    ),
    "staging": dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=27), warn_window=dt.timedelta(hours=25)
    ),
    "marts": dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=27), warn_window=dt.timedelta(hours=25)
    ),
    "ops": dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26)),
}


def with_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    policy = FRESHNESS_BY_GROUP.get(spec.group_name or "")
    return spec.replace_attributes(freshness_policy=policy) if policy else spec

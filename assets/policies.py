"""Retry, backfill and ownership policies shared by assets."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

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

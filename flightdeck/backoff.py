"""Exponential backoff with full jitter, the one helper behind every bounded retry (warehouse lock,
reference database, weather API); and the bounded wait for a lock another process holds."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Attempt k (from 0) waits uniform(0, min(maximum, initial * 2**k))."""
    return (rng or random).uniform(0, min(maximum, initial * 2**attempt))


def backoff_delays(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> list[float]:
    """The waits of `attempts` retries in a row."""
    rng = rng or random.Random()
    return [backoff_delay(k, base, cap, rng) for k in range(attempts)]


def retrying(
    call: Callable[[], T], transient: Callable[[Exception], bool], retries: int, base: float, cap: float
) -> T:
    """`call()`, again after a backoff wait while it raises an error `transient` says may pass, at most
    `retries` times; any other error, or the last, is raised."""
    for delay in [*backoff_delays(retries, base, cap), None]:
        try:
            return call()
        except Exception as exc:
            if delay is None or not transient(exc):
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def wait_for(
    take: Callable[[], T | None],
    timeout: float,
    interval: float,
    on_first_miss: Callable[[], None],
    timed_out: Callable[[], Exception],
) -> T:
    """`take()` every `interval` s until it returns something, which is returned: `on_first_miss()` once
    when the first try fails (to say who holds what is waited for), `timed_out()` raised past `timeout`."""
    deadline, missed = time.monotonic() + timeout, False
    while (taken := take()) is None:
        if not missed:
            on_first_miss()
        missed = True
        if time.monotonic() > deadline:
            raise timed_out()
        time.sleep(interval)
    return taken

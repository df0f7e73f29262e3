"""Exponential backoff with full jitter, the one helper behind every bounded retry (warehouse lock,
reference database, weather API)."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Attempt k (from 0) waits uniform(0, min(maximum, initial * 2**k))."""
    return (rng or random).uniform(0, min(maximum, initial * 2**attempt))


def backoff_delays(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> list[float]:
    """The waits of `attempts` retries in a row."""
    rng = rng or random.Random()
    return [backoff_delay(k, base, cap, rng) for k in range(attempts)]

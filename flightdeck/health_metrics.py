"""Pure computations behind ops/pipeline_health: percentiles and per-job run statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class RunSample:
    job: str
    succeeded: bool
    finished: bool
    duration_s: float | None


@dataclass(frozen=True)
class JobHealth:
    job: str
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    error_rate: float | None
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    sla_s: float | None
    sla_compliance: float | None  # share of finished runs that succeeded within the SLA


def job_health(job: str, samples: list[RunSample], sla_s: float | None) -> JobHealth:
    finished = [s for s in samples if s.finished]
    ok = [s for s in finished if s.succeeded]
    durations = [s.duration_s for s in finished if s.duration_s is not None]
    within = [s for s in ok if sla_s is None or (s.duration_s is not None and s.duration_s <= sla_s)]
    n = len(finished)
    return JobHealth(
        job=job,
        runs=n,
        succeeded=len(ok),
        failed=n - len(ok),
        success_rate=len(ok) / n if n else None,
        error_rate=(n - len(ok)) / n if n else None,
        p50_s=percentile(durations, 0.50),
        p95_s=percentile(durations, 0.95),
        p99_s=percentile(durations, 0.99),
        sla_s=sla_s,
        sla_compliance=len(within) / n if n and sla_s is not None else None,
    )

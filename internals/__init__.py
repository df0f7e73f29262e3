"""Everything flightdeck does with private or undocumented behaviour of Dagster, dagster-dbt or dbt, in
one place: the speed-ups and the failed-partition marking. Nothing outside this package (and the
instance plugin in deploy/instance_storage/, which dagster.yaml loads by its package name) imports a
private API.

Each part has one switch, a FLIGHTDECK_* setting (default on), and the versions it was verified with.
With its switch off, or with any other installed version, a part is off: the stock Dagster / dagster-dbt
path runs, and the process logs one line saying so. docs/performance.md says what each part saves.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from flightdeck import settings

log = logging.getLogger("flightdeck.internals")


@dataclass(frozen=True)
class Part:
    name: str
    switch: str  # the FLIGHTDECK_* setting that turns it off
    verified: dict[str, str]  # distribution -> version prefix it was verified with
    what: str


PARTS = {
    part.name: part
    for part in (
        Part(
            "mark_failed_partitions",
            settings.MARK_FAILED_PARTITIONS,
            {"dagster": "1.13."},
            "held-back partitions are shown failed",
        ),
        Part(
            "dbt_without_core",
            settings.DBT_WITHOUT_CORE,
            {"dagster-dbt": "0.29.", "dbt-core": "1.11."},
            "dagster-dbt loads without dbt-core and builds no in-process adapter",
        ),
        Part(
            "warm_dbt",
            settings.WARM_DBT,
            {"dbt-core": "1.11."},
            "the dbt step finds a dbt process already imported; its parse survives a new warehouse path",
        ),
        Part(
            "gc_pause",
            settings.GC_PAUSE,
            {},
            "the garbage collector is paused while the definitions load, then frozen",
        ),
        Part(
            "batched_event_log",
            settings.BATCHED_EVENT_LOG,
            {"dagster": "1.13."},
            "a ranged run's asset events are written in one SQLite transaction per batch",
        ),
    )
}


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


@functools.cache
def _unverified(name: str) -> str | None:
    """Why the installed versions rule this part out, or None."""
    for distribution, prefix in PARTS[name].verified.items():
        installed = _installed(distribution)
        if installed is None or not installed.startswith(prefix):
            return f"{distribution} {installed} is not the {prefix}x it was verified with"
    return None


@functools.cache
def _announce(name: str, reason: str) -> None:
    """One line per process and part."""
    log.warning(f"flightdeck internals: {name} is off ({reason}); the stock path runs")


def enabled(name: str) -> bool:
    part = PARTS[name]
    if not settings.flag(part.switch):
        return False
    reason = _unverified(name)
    if reason:
        _announce(name, reason)
        return False
    return True

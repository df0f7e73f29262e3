"""A circuit breaker whose state every run and process shares, persisted in a SQLite file.

Why not a library: pybreaker keeps state in memory or Redis, and a backfill's runs are separate
processes that must see one breaker that survives a restart; Redis is not part of the embedded default.
SQLite's `BEGIN IMMEDIATE` serialises the read-modify-write of concurrent processes.

closed --(N consecutive failures)--> open --(cool-down)--> half_open --(success)--> closed
                                       ^---------------(failure)-------------------'
While open, calls are rejected at once. In half_open one trial call at a time goes through.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitOpenError(Exception):
    """The service is considered down; the call was not made."""


@dataclass(frozen=True)
class BreakerState:
    name: str
    state: str
    consecutive_failures: int
    opened_at: float | None
    trial_started_at: float | None
    last_error: str


class CircuitBreaker:
    def __init__(
        self,
        path: Path,
        name: str,
        failure_threshold: int = 5,
        cooldown_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self.path, self.name = Path(path), name
        self.failure_threshold, self.cooldown_seconds, self.clock = failure_threshold, cooldown_seconds, clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute(
                """CREATE TABLE IF NOT EXISTS circuit_breakers (
                    name TEXT PRIMARY KEY, state TEXT NOT NULL, consecutive_failures INTEGER NOT NULL,
                    opened_at REAL, trial_started_at REAL, last_error TEXT NOT NULL DEFAULT '')"""
            )
            con.execute(
                "INSERT OR IGNORE INTO circuit_breakers VALUES (?, 'closed', 0, NULL, NULL, '')", [name]
            )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) below.
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        # WAL + NORMAL: a commit costs no fsync, and readers never wait for the writer.
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def _transition(self, update: Callable[[BreakerState, float], dict[str, object] | None]) -> BreakerState:
        """Read the state and apply `update` (columns to set, or None) in one write transaction."""
        now = self.clock()
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                row = con.execute(
                    "SELECT name, state, consecutive_failures, opened_at, trial_started_at, last_error "
                    "FROM circuit_breakers WHERE name = ?",
                    [self.name],
                ).fetchone()
                state = BreakerState(*row)
                changes = update(state, now)
                if changes:
                    assignments = ", ".join(f"{column} = ?" for column in changes)
                    con.execute(
                        f"UPDATE circuit_breakers SET {assignments} WHERE name = ?",
                        [*changes.values(), self.name],
                    )
                    state = BreakerState(**{**state.__dict__, **changes})
                con.execute("COMMIT")
            except BaseException:
                # Already ended by a failed COMMIT: keep the error that says why.
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise
        return state

    def state(self) -> BreakerState:
        return self._transition(lambda state, now: None)

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go through now."""

        def admit(state: BreakerState, now: float) -> dict[str, object] | None:
            if state.state == CLOSED:
                return None
            if state.state == OPEN and now - (state.opened_at or 0) < self.cooldown_seconds:
                retry_in = self.cooldown_seconds - (now - (state.opened_at or 0))
                raise CircuitOpenError(
                    f"circuit {self.name!r} is open after {state.consecutive_failures} consecutive failures "
                    f"(last: {state.last_error}); not calling the service, next trial in {retry_in:.0f} s"
                )
            if state.state == HALF_OPEN and now - (state.trial_started_at or 0) < self.cooldown_seconds:
                raise CircuitOpenError(
                    f"circuit {self.name!r} is half-open and a trial call is in flight; not calling"
                )
            return {"state": HALF_OPEN, "trial_started_at": now}  # this call is the trial

        self._transition(admit)

    def record_success(self) -> BreakerState:
        def close(state: BreakerState, now: float) -> dict[str, object] | None:
            if state.state == CLOSED and state.consecutive_failures == 0:
                return None  # the usual case: nothing to write
            return {
                "state": CLOSED,
                "consecutive_failures": 0,
                "opened_at": None,
                "trial_started_at": None,
            }

        return self._transition(close)

    def record_failure(self, error: str) -> tuple[BreakerState, bool]:
        """Count a failed call; returns the new state and whether this failure opened the circuit."""

        opened = []

        def fail(state: BreakerState, now: float) -> dict[str, object]:
            failures = state.consecutive_failures + 1
            changes: dict[str, object] = {"consecutive_failures": failures, "last_error": error[:500]}
            if state.state == HALF_OPEN or (state.state == CLOSED and failures >= self.failure_threshold):
                changes.update(state=OPEN, opened_at=now, trial_started_at=None)
                opened.append(True)
            return changes

        return self._transition(fail), bool(opened)

"""Pure builders of dbt arguments, unit-tested in tests/test_dbt_args.py."""

from __future__ import annotations

import datetime as dt
import json


def window_vars(first: dt.date, last: dt.date) -> dict[str, str]:
    """The inclusive partition window the daily models replace."""
    if last < first:
        raise ValueError(f"empty partition window {first}..{last}")
    return {"min_date": first.isoformat(), "max_date": last.isoformat()}


def build_args(dbt_vars: dict[str, str] | None = None) -> list[str]:
    """`dbt build` runs models and their tests in DAG order, so a failing test skips what is downstream."""
    args = ["build"]
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars, sort_keys=True)]
    return args


def mentions_lock_conflict(messages: list[str]) -> bool:
    """True when dbt failed because another process held the DuckDB file (a transient condition)."""
    return any("could not set lock" in m.lower() or "conflicting lock" in m.lower() for m in messages)

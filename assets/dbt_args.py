"""Pure builders of dbt arguments and environment, unit-tested in tests/test_dbt_args.py."""

from __future__ import annotations

import datetime as dt

# The daily models read the partition window as the vars min_date / max_date; dbt_project.yml defaults
# them to these environment variables. Dagster sets the window there rather than with `--vars`: any new
# `--vars` value makes dbt re-parse the whole project (~3-4 s a run), a changed environment variable only
# the files that read it. `dbt build --vars '{"min_date": …, "max_date": …}'` still overrides it by hand.
WINDOW_ENV_VARS = {"min_date": "FLIGHTDECK_WINDOW_MIN_DATE", "max_date": "FLIGHTDECK_WINDOW_MAX_DATE"}


def window_vars(first: dt.date, last: dt.date) -> dict[str, str]:
    """The inclusive partition window the daily models replace."""
    if last < first:
        raise ValueError(f"empty partition window {first}..{last}")
    return {"min_date": first.isoformat(), "max_date": last.isoformat()}


def window_env(dbt_vars: dict[str, str]) -> dict[str, str]:
    """The environment of a dbt process that gives its daily models the window `dbt_vars`."""
    return {WINDOW_ENV_VARS[name]: value for name, value in dbt_vars.items()}


def build_args() -> list[str]:
    """`dbt build` runs models and their tests in DAG order, so a failing test skips what is downstream."""
    return ["build"]


def mentions_lock_conflict(messages: list[str]) -> bool:
    """True when dbt failed because another process held the DuckDB file (a transient condition)."""
    return any("could not set lock" in m.lower() or "conflicting lock" in m.lower() for m in messages)

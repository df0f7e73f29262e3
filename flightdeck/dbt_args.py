"""Pure builders of dbt arguments and environment, and readers of what dbt reports; unit-tested in
tests/test_dbt_args.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

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
    """`dbt build` runs models and their tests in DAG order, so a failing test skips what is downstream.

    `--no-write-json`: dbt would write manifest.json (its 516 macros: ~0.3 s, on every run's critical
    path) and run_results.json; Dagster already holds the manifest, and failures are read from the
    invocation's own log (`build_errors`).
    """
    return ["build", "--no-write-json"]


def build_errors(log_lines: Iterable[str]) -> list[tuple[str | None, str]]:
    """What failed in a dbt invocation, from its JSON log lines: (unique_id, message) of every model or
    test that errored or failed; when none did (dbt stopped before any node, e.g. the warehouse was
    locked), (None, message) of each error dbt logged."""
    nodes, errors = [], []
    for line in log_lines:
        try:
            event = json.loads(line)
        except ValueError:  # not an event (dbt writes only events; be lenient anyway)
            continue
        info = event.get("info", {})
        if info.get("name") == "NodeFinished":
            result = event["data"]["run_result"]
            if result.get("status") in ("error", "fail"):
                nodes.append((event["data"]["node_info"]["unique_id"], str(result.get("message") or "")))
        elif info.get("level") == "error":
            errors.append((None, str(info.get("msg") or "")))
    return nodes or errors


def mentions_lock_conflict(messages: list[str]) -> bool:
    """True when dbt failed because another process held the DuckDB file (a transient condition)."""
    return any("could not set lock" in m.lower() or "conflicting lock" in m.lower() for m in messages)

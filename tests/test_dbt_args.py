"""The small pure functions that build dbt arguments."""

import datetime as dt
import json

import pytest

from assets.dbt_args import build_args, mentions_lock_conflict, window_vars


def test_window_vars_are_inclusive_iso_dates():
    assert window_vars(dt.date(2013, 1, 1), dt.date(2013, 12, 31)) == {
        "min_date": "2013-01-01",
        "max_date": "2013-12-31",
    }


def test_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty partition window"):
        window_vars(dt.date(2013, 1, 2), dt.date(2013, 1, 1))


def test_build_args_pass_vars_as_sorted_json():
    args = build_args({"min_date": "2013-01-01", "max_date": "2013-01-02"})
    assert args[:2] == ["build", "--vars"]
    assert json.loads(args[2]) == {"min_date": "2013-01-01", "max_date": "2013-01-02"}
    assert args[2].index("max_date") < args[2].index("min_date")  # stable text: same vars, same parse
    assert build_args(None) == ["build"]


def test_lock_conflicts_are_recognised():
    assert mentions_lock_conflict(["IO Error: Could not set lock on file x.duckdb: Conflicting lock is held"])
    assert not mentions_lock_conflict(["Got 3 results, configured to fail if != 0"])

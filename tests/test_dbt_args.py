"""The small pure functions that build dbt arguments and environment."""

import datetime as dt

import pytest
import yaml

from assets.dbt_args import WINDOW_ENV_VARS, build_args, mentions_lock_conflict, window_env, window_vars
from resources import settings


def test_window_vars_are_inclusive_iso_dates():
    assert window_vars(dt.date(2013, 1, 1), dt.date(2013, 12, 31)) == {
        "min_date": "2013-01-01",
        "max_date": "2013-12-31",
    }


def test_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty partition window"):
        window_vars(dt.date(2013, 1, 2), dt.date(2013, 1, 1))


def test_window_reaches_dbt_through_the_environment_not_cli_vars():
    # CLI --vars would change on every window and cost dbt a full re-parse; the arguments stay constant.
    assert build_args() == ["build"]
    assert window_env(window_vars(dt.date(2013, 1, 1), dt.date(2013, 1, 2))) == {
        "FLIGHTDECK_WINDOW_MIN_DATE": "2013-01-01",
        "FLIGHTDECK_WINDOW_MAX_DATE": "2013-01-02",
    }


def test_dbt_project_reads_the_window_vars_from_those_environment_variables():
    project = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    for name, env_var in WINDOW_ENV_VARS.items():
        assert project["vars"][name] == f"{{{{ env_var('{env_var}', '') }}}}"


def test_lock_conflicts_are_recognised():
    assert mentions_lock_conflict(["IO Error: Could not set lock on file x.duckdb: Conflicting lock is held"])
    assert not mentions_lock_conflict(["Got 3 results, configured to fail if != 0"])

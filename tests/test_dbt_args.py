"""The small pure functions that build dbt arguments and environment and read what dbt reports."""

import datetime as dt
import json

import pytest
import yaml

from flightdeck import settings
from flightdeck.dbt_args import (
    WINDOW_ENV_VARS,
    build_args,
    build_errors,
    mentions_lock_conflict,
    window_env,
    window_vars,
)


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
    assert build_args() == ["build", "--no-write-json"]
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


def _event(name: str, level: str = "info", msg: str = "", **data) -> str:
    return json.dumps({"info": {"name": name, "level": level, "msg": msg}, "data": data})


def _node_finished(unique_id: str, status: str, message: str) -> str:
    return _event(
        "NodeFinished",
        node_info={"unique_id": unique_id},
        run_result={"status": status, "message": message},
    )


def test_build_errors_name_the_nodes_that_failed():
    log = [
        _event("MainReportVersion", msg="Running with dbt=1.11"),
        _node_finished("model.flightdeck.fct_flights", "success", "OK"),
        _event("LogTestResult", level="error", msg="FAIL 3 relationships_fct_flights_carrier"),
        _node_finished("test.flightdeck.relationships_fct_flights_carrier", "fail", "Got 3 results"),
        _node_finished("test.flightdeck.relationships_fct_flights_dest", "warn", "Got 2 results"),
        _node_finished("model.flightdeck.agg_daily_carrier_performance", "skipped", ""),
        "not json",
    ]
    assert build_errors(log) == [("test.flightdeck.relationships_fct_flights_carrier", "Got 3 results")]


def test_build_errors_before_any_node_are_the_logged_errors():
    lock = "IO Error: Could not set lock on file wh.duckdb: Conflicting lock is held"
    log = [
        _event("MainReportVersion", msg="Running with dbt=1.11"),
        _event("MainEncounteredError", "error", lock),
    ]
    assert build_errors(log) == [(None, lock)]
    assert mentions_lock_conflict([message for _, message in build_errors(log)])

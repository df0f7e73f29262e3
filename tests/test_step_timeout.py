"""Steps have timeouts: past FLIGHTDECK_STEP_TIMEOUT_SECONDS a step's own work is stopped and it fails.

The run-level bound (`dagster/max_runtime`) needs the daemon and a job's tags; these bound each step,
however the run was launched.
"""

import time
import warnings

import dagster as dg
import duckdb
import pytest

from assets.common.policies import step_deadline
from tests.runs import failure_messages, load_reference, run_job

warnings.filterwarnings("ignore")


def test_a_hung_duckdb_query_is_interrupted_at_the_deadline():
    con = duckdb.connect()
    started = time.monotonic()
    with (
        pytest.raises(dg.Failure, match=r"probe query exceeded its step timeout of 0.5 s") as failure,
        step_deadline(0.5, con.interrupt, "probe query"),
    ):
        con.execute("SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3").fetchone()
    assert time.monotonic() - started < 5
    assert failure.value.allow_retries is False  # the same work would hang the same way
    assert con.execute("SELECT 42").fetchone() == (42,)  # the connection is usable afterwards


def test_work_that_ends_in_time_is_untouched():
    con = duckdb.connect()
    with step_deadline(30, con.interrupt, "quick query"):
        assert con.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)


def test_a_dbt_build_past_the_step_timeout_is_stopped_and_the_step_fails(env, instance, monkeypatch):
    load_reference(instance)
    # The raw load of one day takes well under a second; dbt alone needs longer than this to start.
    monkeypatch.setenv("FLIGHTDECK_STEP_TIMEOUT_SECONDS", "2")
    started = time.monotonic()
    result = run_job("flights_pipeline", instance, partition="2013-01-03")
    assert not result.success
    assert "dbt build exceeded its step timeout of 2 s and was stopped" in failure_messages(result)
    assert time.monotonic() - started < 60
    # The raw step finished within its bound and stays loaded; dbt's marts never saw the day.
    assert env.query("SELECT count(*) > 0 FROM raw.flights WHERE flight_date = '2013-01-03'") == [(True,)]

"""One writer on the warehouse at a time, however runs were launched: a `dagster asset materialize` run
from a shell while a UI backfill and the landing sensor's runs write waits for the warehouse's writer
lock instead of overlapping them, and every run succeeds; a writer killed outright releases the lock
at once."""

import itertools
import subprocess
import sys

import dagster as dg
import duckdb
import pytest

from tests.conftest import ROOT
from tests.dagster_dev import BIN, dagster_dev, flightdeck_env, launch_backfill, wait_until
from tests.production_stack import prepare_data

BACKFILL = [f"2013-01-0{d}" for d in range(1, 8)]
CLI_DAY = "2013-01-09"
FLIGHTS_PIPELINE = [["raw", "flights"], ["staging", "stg_flights"], ["marts", "fct_flights"]]
# Takes the warehouse's lock as soon as it is told to (and can), lets go when told: the backfill's dbt
# step holds the writer lock while it waits (for as long as OUTSIDE_LOCK_WAIT allows), so the CLI run
# surely meets the lock, however slowly its process starts on a busy machine.
ANALYST = """
import sys, time, duckdb
sys.stdin.readline()
while True:
    try:
        con = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException:
        time.sleep(0.005)
print("held", flush=True)
sys.stdin.readline()
con.close()
print("released", flush=True)
"""
OUTSIDE_LOCK_WAIT = {"FLIGHTDECK_DUCKDB_LOCK_WAIT_SECONDS": "600"}
HOLDING, RELEASED = "holding the warehouse writer lock", "released the warehouse writer lock"


def writer_intervals(instance: dg.DagsterInstance, run_id: str):
    """(start, end, run id, step) of every time a step of the run held the warehouse's writer lock."""
    held, intervals = {}, []
    for record in instance.all_logs(run_id):
        step = record.step_key
        if record.user_message == HOLDING:
            held[step] = record.timestamp
        elif record.user_message == RELEASED and step in held:
            intervals.append((held.pop(step), record.timestamp, run_id, step))
    assert not held, f"a step of {run_id} never released the lock: {held}"
    return intervals


@pytest.mark.slow
def test_a_cli_run_during_a_ui_backfill_and_sensor_runs_never_overlaps_a_writer(tmp_path):
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    prepare_data(data, [*BACKFILL, CLI_DAY])  # the landing sensor requests these too
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(data / "warehouse.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with dagster_dev(data, home, OUTSIDE_LOCK_WAIT) as (base_url, instance):
            backfill_id = launch_backfill(base_url, BACKFILL, FLIGHTS_PIPELINE)
            [run] = wait_until(
                lambda: instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id})),
                timeout=180, interval=0.5, what="the backfill's run",
            )  # fmt: skip
            wait_until(
                lambda: [
                    r for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
                    if r.dagster_event.step_key == "daily_dbt_models"
                ],
                timeout=300, interval=0.05, what="the backfill's dbt step",
            )  # fmt: skip
            analyst.stdin.write("go\n")
            analyst.stdin.flush()
            assert analyst.stdout.readline().strip() == "held"
            # The backfill's dbt step holds the writer lock while it waits out the analyst, then builds:
            # the shell's run starts now, in the middle of the backfill's run.
            cli = subprocess.Popen(
                [str(BIN / "dagster"), "asset", "materialize", "-f", "definitions.py",
                 "--select", "raw/flights", "--partition", CLI_DAY],
                cwd=ROOT, env=flightdeck_env(data, home) | OUTSIDE_LOCK_WAIT, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip

            def cli_run_waits():
                return [
                    r
                    for r in instance.get_runs(dg.RunsFilter(tags={"dagster/partition": CLI_DAY}))
                    if not r.tags.get("dagster/sensor_name")
                    and any(
                        log.user_message.startswith("waiting for the warehouse writer lock")
                        for log in instance.all_logs(r.run_id)
                    )
                ]

            try:  # without the wait the end's check says nothing was tested
                wait_until(cli_run_waits, timeout=180, interval=0.5, what="the CLI run to meet the lock")
            finally:
                analyst.stdin.write("release\n")
                analyst.stdin.flush()
            cli_output, _ = cli.communicate(timeout=600)
            assert cli.returncode == 0, cli_output[-3000:]
            assert analyst.stdout.readline().strip() == "released"

            def all_finished():
                runs = instance.get_runs()
                return (
                    all(r.is_finished for r in runs)
                    and instance.get_backfill(backfill_id).status.value.startswith("COMPLETED")
                    and runs
                )

            runs = wait_until(all_finished, timeout=420, interval=2, what="every run to finish")
            assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, [
                (r.job_name, r.status) for r in runs
            ]
            attempts = sorted(i for r in runs for i in writer_intervals(instance, r.run_id))
            writing = {(run_id, step) for _, _, run_id, step in attempts}
            assert {step for _, step in writing} >= {"raw__flights", "daily_dbt_models"}
            for earlier, later in itertools.pairwise(attempts):
                assert earlier[1] <= later[0], f"writers overlapped: {earlier} and {later}"

            [cli_run] = [
                r
                for r in runs
                if r.tags.get("dagster/partition") == CLI_DAY and not r.tags.get("dagster/sensor_name")
            ]
            # The CLI run wrote while the backfill's run was in progress: concurrent runs, serialised.
            cli_writes = [i for i in attempts if i[2] == cli_run.run_id]
            backfill_writes = [i for i in attempts if i[2] == run.run_id]
            assert cli_writes and backfill_writes
            during = [i for i in cli_writes if backfill_writes[0][0] < i[0] < i[1] < backfill_writes[-1][1]]
            assert during or any(
                r.user_message.startswith("waiting for the warehouse writer lock, held by run")
                for r in instance.all_logs(cli_run.run_id)
            ), "the CLI run and the backfill never met: nothing was tested"
    finally:
        analyst.kill()
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        days = con.execute(
            "SELECT DISTINCT flight_date::VARCHAR FROM marts.fct_flights ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert [d for (d,) in days] == sorted([*BACKFILL, CLI_DAY])

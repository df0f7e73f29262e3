"""Blocking checks on raw/flights really stop the dbt models downstream, and let them run once fixed."""

import dagster as dg

from tests.loading import csv_lines, set_field, write_lines
from tests.runs import failure_messages, load_reference, run_job

DAY = "2013-01-06"


def test_failing_quarantine_gate_blocks_marts_until_the_partition_is_fixed(env, instance):
    load_reference(instance)
    good = csv_lines(env, DAY)
    bad = list(good)
    for i in range(1, 1 + len(good) // 50):  # ~2% of rows, above the 1% gate
        bad[i] = set_field(bad[i], "origin", "XXX")
    write_lines(env, DAY, bad)

    blocked = run_job("flights_pipeline", instance, partition=DAY)
    assert not blocked.success
    gate = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["raw", "flights"]), "quarantine_rate_below_threshold")]
    )
    [execution] = gate.values()
    assert execution.status.value == "FAILED" and execution.partition == DAY
    evaluation = execution.event.asset_check_evaluation
    assert evaluation.description.startswith("quarantine rate above 1.00%")
    assert "quarantine rate above" in failure_messages(blocked)
    # The day was held back whole: nothing of it in raw, the dbt step never ran, no mart table exists.
    assert env.query("SELECT count(*) FROM raw.flights") == [(0,)]
    assert env.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts'") == [(0,)]
    assert instance.get_latest_materialization_event(dg.AssetKey(["marts", "fct_flights"])) is None
    assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "flights"])) is None
    assert evaluation.metadata["rows_quarantined"].value == len(good) // 50
    assert evaluation.metadata["schema_failures"].value == 0  # a bad code, not a bad type

    write_lines(env, DAY, good)  # the corrected file
    fixed = run_job("flights_pipeline", instance, partition=DAY)
    assert fixed.success, failure_messages(fixed)
    assert env.query("SELECT count(*) FROM marts.fct_flights WHERE flight_date = ?", [DAY]) == [
        (len(good) - 1,)
    ]

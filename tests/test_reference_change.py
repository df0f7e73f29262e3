"""Unchanged reference data rebuilds nothing; a change rebuilds the marts that read it (issue: sources)."""

import sqlite3
import warnings

import dagster as dg

from definitions import defs
from sensors.reference_change_sensor import reference_change_sensor
from tests.runs import failure_messages, load_reference, run_job

warnings.filterwarnings("ignore")
DAYS = ("2013-01-02", "2013-01-03")


def evaluate(instance, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    result = reference_change_sensor(context)
    return result.run_requests, result.skip_reason, result.cursor


def test_only_a_changed_snapshot_requests_a_marts_rebuild(env, instance):
    load_reference(instance)
    built = run_job("flights_pipeline", instance, partition_range=DAYS)
    assert built.success, failure_messages(built)
    requests, skip, cursor = evaluate(instance, None)
    assert requests == [] and "unchanged" in skip.skip_message

    load_reference(instance)  # the nightly refresh, same content: same data versions
    requests, skip, cursor = evaluate(instance, cursor)
    assert requests == [] and "unchanged" in skip.skip_message

    with sqlite3.connect(env.root / "reference.sqlite") as con:
        con.execute("UPDATE airlines SET name = 'United Airlines (renamed)' WHERE carrier = 'UA'")
    load_reference(instance)
    requests, _, cursor = evaluate(instance, cursor)
    assert len(requests) == 1
    request = requests[0]
    assert request.tags["flightdeck/changed"] == "raw/airlines"
    assert (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    ) == DAYS
    assert evaluate(instance, cursor)[0] == []  # requested once, not on every tick

    rebuilt = run_job("marts_rebuild", instance, partition_range=DAYS)
    assert rebuilt.success, failure_messages(rebuilt)
    assert env.query("SELECT DISTINCT carrier_name FROM marts.fct_flights WHERE carrier = 'UA'") == [
        ("United Airlines (renamed)",)
    ]

"""Reference snapshots: bad rows quarantined with pandera's reasons; the same gates block on too many."""

import sqlite3

import dagster as dg

from tests.runs import failure_messages, load_reference, run_job


def corrupt(env, sql):
    with sqlite3.connect(env.root / "reference.sqlite") as con:
        con.execute(sql)


def gate(instance, table):
    key = dg.AssetCheckKey(dg.AssetKey(["raw", table]), "quarantine_rate_below_threshold")
    return instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]


def test_a_bad_reference_row_is_quarantined_and_too_many_block_the_snapshot(env, instance):
    corrupt(env, "UPDATE planes SET seats = -3 WHERE tailnum = 'N10156'")  # 1 of 3,322 rows: under 1%
    load_reference(instance)
    assert env.query("SELECT count(*) FROM raw.planes WHERE tailnum = 'N10156'") == [(0,)]
    rows = env.query("SELECT kind, reasons, original_values FROM quarantine.planes WHERE status = 'open'")
    assert len(rows) == 1 and rows[0][0] == "invalid" and "seats:greater_than_or_equal_to(0)" in rows[0][1]
    assert '"seats":"-3"' in rows[0][2]
    assert gate(instance, "planes").status.value == "SUCCEEDED"

    corrupt(env, "UPDATE airlines SET carrier = 'not a code' WHERE carrier = 'UA'")  # 1 of 16: above 1%
    result = run_job("reference_refresh", instance)
    assert not result.success
    assert gate(instance, "airlines").status.value == "FAILED"
    assert (
        "quarantine rate above" in failure_messages(result)
        or gate(instance, "airlines").status.value == "FAILED"
    )

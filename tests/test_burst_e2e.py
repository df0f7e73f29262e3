"""A burst of landing files under a real `dagster dev`, some of them bad in every file-level way: the
sensor's one ranged run loads every good day through the marts, holds back and shows failed exactly
the bad days, raises one alert naming them, and a corrected file then loads by itself."""

import gzip
import shutil
import time

import dagster as dg
import duckdb
import pytest

from tests.conftest import DEMO_DIR
from tests.dagster_dev import dagster_dev, wait_until
from tests.runs import failed_partitions

pytestmark = pytest.mark.slow
RAW = dg.AssetKey(["raw", "flights"])
FCT = dg.AssetKey(["marts", "fct_flights"])


def break_files(landing) -> dict[str, str]:
    """Day -> the reason its file is held back, one file-level bad kind each."""

    def csv(day):
        return landing / f"{day}.csv"

    csv("2013-01-03").write_bytes(b"")  # zero bytes
    csv("2013-01-05").write_bytes(csv("2013-01-05").read_bytes().replace(b",", b";"))
    data = gzip.compress(csv("2013-01-07").read_bytes())
    (landing / "2013-01-07.csv.gz").write_bytes(data[: len(data) // 2])  # truncated gzip
    csv("2013-01-07").unlink()
    text = csv("2013-01-09").read_bytes()
    csv("2013-01-09").write_bytes(text.replace(b"UA", "Ü".encode("latin-1") + b"A", 1))  # not UTF-8
    lines = csv("2013-01-11").read_text().splitlines()
    csv("2013-01-11").write_text("\n".join([lines[0] + ",gate", *lines[1:]]) + "\n")  # extra column
    return {
        "2013-01-03": "empty_file",
        "2013-01-05": "bad_delimiter",
        "2013-01-07": "bad_compression",
        "2013-01-09": "bad_encoding",
        "2013-01-11": "bad_columns",
    }


def read_alerts(data):
    try:
        con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    except duckdb.Error:  # a run or sensor is writing; look again
        return None
    try:
        return con.execute("SELECT kind, details FROM ops.alerts WHERE kind = 'run_failure'").fetchall()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def test_a_burst_with_bad_files_loads_every_good_day_and_the_corrected_file_by_itself(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DEMO_DIR / "landing", data / "landing")
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    landing = data / "landing" / "flights"
    bad = break_files(landing)
    days = sorted(p.name[:10] for p in landing.iterdir())
    good = [d for d in days if d not in bad]

    with dagster_dev(data, tmp_path / "dagster_home") as (_, instance):

        def settled():
            runs = instance.get_runs(dg.RunsFilter(job_name="flights_pipeline"))
            return runs if runs and all(r.is_finished for r in runs) else None

        [run] = wait_until(settled, timeout=420, interval=2, what="the burst's ranged run")
        assert run.status == dg.DagsterRunStatus.FAILURE  # failed for the bad days, not the good ones
        assert failed_partitions(instance, RAW) == sorted(bad)
        assert failed_partitions(instance, FCT) == sorted(bad)

        [(_, details)] = wait_until(lambda: read_alerts(data), timeout=120, interval=2, what="one alert")
        for day, reason in bad.items():
            assert f"{day}: landing_file: {reason}" in details

        # The sender corrects one day: the sensor requests it, and it loads by itself.
        since = time.time()
        shutil.copy(DEMO_DIR / "landing" / "flights" / "2013-01-05.csv", landing / "2013-01-05.csv.part")
        (landing / "2013-01-05.csv.part").rename(landing / "2013-01-05.csv")
        wait_until(
            lambda: "2013-01-05" not in failed_partitions(instance, FCT),
            timeout=300,
            interval=2,
            what="the corrected day in the marts",
        )
        newest = [
            r
            for r in instance.get_runs(dg.RunsFilter(job_name="flights_pipeline"))
            if instance.get_run_record_by_id(r.run_id).create_timestamp.timestamp() > since
        ]
        assert [r.tags.get("dagster/partition") for r in newest] == ["2013-01-05"]
        wait_until(lambda: all(r.is_finished for r in instance.get_runs()), 120, 1, what="runs to end")

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        loaded = con.execute(
            "SELECT DISTINCT strftime(flight_date, '%Y-%m-%d') FROM marts.fct_flights ORDER BY 1"
        ).fetchall()
        assert [d for (d,) in loaded] == sorted([*good, "2013-01-05"])
        # Every file's rows counted once: raw holds exactly the landing files' data rows of loaded days.
        for day in [*good, "2013-01-05"]:
            expected = len((DEMO_DIR / "landing" / "flights" / f"{day}.csv").read_text().splitlines()) - 1
            assert con.execute(
                "SELECT count(*) FROM raw.flights WHERE flight_date = ?", [day]
            ).fetchone() == (expected,), day
    finally:
        con.close()

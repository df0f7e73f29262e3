"""Definitions load fast and without side effects; a snapshot catches accidental drift."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from definitions import defs
from tests.conftest import ROOT, printed_by_fresh_python

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def inventory() -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
        "checks": sorted(f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys),
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


def test_definitions_match_snapshot():
    """On purpose changes: regenerate with `UPDATE_SNAPSHOT=1 pytest tests/test_definitions.py`."""
    import os

    current = inventory()
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_required_asset_keys_groups_and_partitions():
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["raw/flights"] == "raw" and groups["raw/planes"] == "raw"
    assert groups["staging/stg_flights"] == "staging" and groups["marts/fct_flights"] == "marts"
    daily = [
        k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None
    ]
    assert sorted(daily) == [
        "marts/agg_daily_carrier_performance",
        "marts/agg_daily_origin_weather",
        "marts/fct_flights",
        "marts/live_flight_status",
        "raw/flights",
        "raw/weather",
        "staging/stg_flights",
    ]
    raw_flights = graph.get(dg.AssetKey(["raw", "flights"]))
    assert raw_flights.partitions_def.get_first_partition_key() == "2013-01-01"
    assert raw_flights.partitions_def.get_last_partition_key() == "2013-12-31"


def test_every_asset_is_described_and_owned():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.owners, key
        assert node.group_name in {"raw", "staging", "marts", "ops", "stream"}, key
        assert node.kinds, key  # the UI shows them as the asset's tags (duckdb, dbt, pandera, ...)


def test_loading_definitions_never_opens_the_warehouse(tmp_path):
    db = tmp_path / "never.duckdb"
    env = {"FLIGHTDECK_DUCKDB_PATH": str(db), "FLIGHTDECK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-c", "import definitions"],
        cwd=Path(__file__).parent.parent,
        env=env,
        check=True,
        capture_output=True,
    )
    assert not db.exists()


def test_loading_definitions_leaves_the_collector_running_with_the_definitions_frozen():
    """definitions.py pauses the cyclic collector while it imports; it must always resume it."""
    out = printed_by_fresh_python(
        "import gc, definitions; print(gc.isenabled(), gc.get_freeze_count())"
    ).split()
    assert out[0] == "True"
    assert int(out[1]) > 100_000  # the objects the imports built are out of the collector's view


def test_loading_definitions_does_not_import_dbt_core():
    """dbt runs in its own process; importing dbt-core here would cost every process ~0.9 s
    (internals/dagster_dbt_without_core.py)."""
    probe = (
        "import sys, definitions; print(sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')))"
    )
    assert printed_by_fresh_python(probe) == "[]"


def test_dg_checks_and_lists_the_definitions_on_this_layout():
    """The `dg` CLI works on this layout ([tool.dg] in pyproject.toml): `dg check defs`, `dg list defs`."""
    import os

    dg_cli = Path(sys.executable).parent / "dg"
    env = {**os.environ, "COLUMNS": "200"}
    checked = subprocess.run(
        [str(dg_cli), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert (
        checked.returncode == 0 and "All definitions loaded successfully" in checked.stdout + checked.stderr
    )
    listed = subprocess.run(
        [str(dg_cli), "list", "defs", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "raw/flights" in listed.stdout and "flights_landing_sensor" in listed.stdout

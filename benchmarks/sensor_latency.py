"""Sensor latency: a file dropped under a running `dagster dev` until the marts hold its rows.

`dagster dev` runs with the defaults a user gets (settle time, sensor interval, run queue interval). The initial
days are loaded first; then each held-back day's file is published (temp name, then rename) and timed
until marts/agg_daily_carrier_performance has been materialized for that partition, which happens
after dbt committed it. One drop at a time, so each figure is a single file's path through the system.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from flightdeck import settings  # noqa: E402
from tests.dagster_dev import dagster_dev, wait_until  # noqa: E402

MART = dg.AssetKey(["marts", "agg_daily_carrier_performance"])
RAW = dg.AssetKey(["raw", "flights"])


def measure(demo: Path, initial_days: int, drops: int) -> dict[str, object]:
    """`demo` holds landing files for at least initial_days + drops days and the reference database."""
    with tempfile.TemporaryDirectory(prefix="flightdeck-sensor-bench-") as tmp:
        data, held = Path(tmp) / "data", Path(tmp) / "held"
        landing = data / "landing" / "flights"
        landing.mkdir(parents=True)
        held.mkdir()
        shutil.copy(demo / "reference.sqlite", data / "reference.sqlite")
        files = sorted((demo / "landing" / "flights").glob("2013-*.csv"))
        for f in files[:initial_days]:
            shutil.copy(f, landing / f.name)
        for f in files[initial_days : initial_days + drops]:
            shutil.copy(f, held / f.name)
        # The user's default settle time (the test helper shortens it).
        settle = {settings.LANDING_SETTLE_SECONDS: settings.defaults()[settings.LANDING_SETTLE_SECONDS]}
        with dagster_dev(data, Path(tmp) / "home", settle) as (_, instance):
            wait_until(
                lambda: len(instance.get_materialized_partitions(MART)) == initial_days,
                timeout=600,
                interval=1,
                what="the initial days in the marts",
            )
            latencies = []
            for f in sorted(held.iterdir()):
                partition = f.name.removesuffix(".csv")
                started = time.monotonic()
                shutil.copy(f, landing / (f.name + ".part"))
                (landing / (f.name + ".part")).rename(landing / f.name)
                wait_until(
                    lambda p=partition: p in instance.get_materialized_partitions(MART),
                    timeout=600,
                    interval=0.5,
                    what=f"{partition} in the marts",
                )
                latencies.append(round(time.monotonic() - started, 1))
    return {
        "sensor_drops": drops,
        "sensor_latency_s": latencies,
        "sensor_latency_median_s": statistics.median(latencies),
        "sensor_latency_worst_s": max(latencies),
    }

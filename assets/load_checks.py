"""The gates on a daily raw load, evaluated right after the load, before anything downstream runs.

Severity is chosen per check (see README, Quality gates):
- reconciliation — ERROR: rows unaccounted for means the loader itself is wrong; nothing may build on it.
- quarantine rate — ERROR: above the threshold the marts would silently under-report; fix or replay first.
- volume — ERROR: a day far below its trailing 7-day median is almost always a partial delivery. The
  threshold is a fraction of the median (default 0.5; the real 2013 minimum, Thanksgiving, is 0.64).
- null rates of key columns — WARN: reported as metadata for plotting; real data has known nulls.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from assets.daily_loader import DailyDataset, PartitionLoad

RECONCILES = "rows_reconcile"
QUARANTINE_RATE = "quarantine_rate_below_threshold"
VOLUME = "volume_within_expected_range"
MIN_HISTORY_DAYS = 3


def check_specs(asset_key: dg.AssetKey, daily: bool = True) -> list[dg.AssetCheckSpec]:
    """The gates of a raw asset; the volume gate needs daily history, so snapshots go without it."""
    specs = [
        dg.AssetCheckSpec(
            RECONCILES,
            asset=asset_key,
            blocking=True,
            description="rows_read = rows_loaded + rows_quarantined + rows_duplicate, per partition",
        ),
        dg.AssetCheckSpec(
            QUARANTINE_RATE,
            asset=asset_key,
            blocking=True,
            description="share of quarantined rows per partition is at most FLIGHTDECK_MAX_QUARANTINE_RATE",
        ),
        dg.AssetCheckSpec(
            VOLUME,
            asset=asset_key,
            blocking=True,
            description="rows loaded per day >= FLIGHTDECK_MIN_VOLUME_FRACTION x trailing 7-day median",
        ),
    ]
    return specs if daily else specs[:2]


def _dates(loads: list[PartitionLoad]) -> str:
    names = [str(load.partition_date or load.source_file) for load in loads[:10]]
    return ", ".join(names) + (" …" if len(loads) > 10 else "")


def reconciliation(loads: list[PartitionLoad]) -> dg.AssetCheckResult:
    broken = [load for load in loads if not load.reconciles]
    return dg.AssetCheckResult(
        check_name=RECONCILES,
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"does not reconcile on {_dates(broken)}" if broken else "every row is accounted for",
        metadata={"partitions_checked": len(loads), "partitions_failing": len(broken)},
    )


def quarantine_rate(loads: list[PartitionLoad], threshold: float) -> dg.AssetCheckResult:
    over = [load for load in loads if load.quarantine_rate > threshold]
    worst = max(loads, key=lambda load: load.quarantine_rate)
    return dg.AssetCheckResult(
        check_name=QUARANTINE_RATE,
        passed=not over,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"quarantine rate above {threshold:.2%} on {_dates(over)}" if over else "within threshold"
        ),
        metadata={
            "threshold": threshold,
            "worst_rate": float(worst.quarantine_rate),
            "worst_partition": str(worst.partition_date),
            "partitions_failing": len(over),
        },
    )


def volume(
    con: duckdb.DuckDBPyConnection,
    dataset: DailyDataset,
    window: tuple[dt.date, dt.date],
    min_fraction: float,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """Each day of the window against the median of the 7 days before it (history from raw itself)."""
    part = dataset.partition_column
    rows = con.execute(
        f"""WITH days AS (
                SELECT d::DATE AS on_date FROM generate_series(?::DATE - 7, ?::DATE, INTERVAL 1 DAY) t(d)
            ),
            counts AS (
                SELECT on_date, count(r.{part}) AS n
                FROM days LEFT JOIN raw.{dataset.name} r ON r.{part} = days.on_date
                GROUP BY on_date
            ),
            history AS (
                SELECT on_date, n,
                       median(n) FILTER (WHERE n > 0) OVER w AS median_n,
                       count(*) FILTER (WHERE n > 0) OVER w AS history_days
                FROM counts WINDOW w AS (ORDER BY on_date ROWS BETWEEN 7 PRECEDING AND 1 PRECEDING)
            )
            SELECT on_date, n, median_n FROM history
            WHERE on_date BETWEEN ? AND ? AND history_days >= ? AND n < ? * median_n
            ORDER BY on_date""",
        [window[0], window[1], window[0], window[1], MIN_HISTORY_DAYS, min_fraction],
    ).fetchall()
    low = [f"{day} ({n} rows, median {median:.0f})" for day, n, median in rows]
    return dg.AssetCheckResult(
        check_name=VOLUME,
        passed=not low,
        severity=severity,
        description=("low volume: " + "; ".join(low[:10])) if low else "volume as expected",
        metadata={"min_fraction_of_trailing_median": min_fraction, "partitions_failing": len(low)},
    )


def quality_metrics(
    con: duckdb.DuckDBPyConnection,
    dataset: DailyDataset,
    window: tuple[dt.date, dt.date],
    columns: list[str],
    run_id: str,
) -> dict[str, float]:
    """Null rates of key columns and schema failures of this load, as numeric metadata the UI plots."""
    part = dataset.partition_column
    selects = ", ".join(f'avg(("{c}" IS NULL)::INT) AS "{c}"' for c in columns)
    row = con.execute(
        f"SELECT {selects} FROM raw.{dataset.name} WHERE {part} BETWEEN ? AND ?", list(window)
    ).fetchone()
    metrics = {f"null_rate_{c}": float(v or 0.0) for c, v in zip(columns, row, strict=True)}
    # Schema failures: rows whose values do not have the declared type or whose line has the wrong shape.
    metrics["schema_failures"] = con.execute(
        f"""SELECT count(*) FROM quarantine.{dataset.name}
            WHERE run_id = ? AND (reasons LIKE '%wrong_type%' OR reasons LIKE 'malformed_line%')""",
        [run_id],
    ).fetchone()[0]
    return metrics

"""The gates on a daily raw load, as Dagster asset checks, evaluated per partition before anything is
written (the decisions are the loader's own, `flightdeck/loader.py`; this module reports them).

Severity is chosen per check (see README, Quality gates):
- reconciliation — ERROR: rows unaccounted for means the loader itself is wrong; nothing may build on it.
- quarantine rate — ERROR: above the threshold the marts would silently under-report; fix or replay first.
- volume — ERROR: a day far below its trailing 7-day median is almost always a partial delivery. The
  threshold is a fraction of the median (default 0.5; the real 2013 minimum, Thanksgiving, is 0.64).
- null rates of key columns — WARN: reported as metadata for plotting; real data has known nulls.

A partition failing an ERROR gate is held back on its own; the rest of its window loads. So in a ranged
run the checks report twice: each failing partition gets its own failed evaluation (Dagster records
check results per partition), and the run's result names the partitions held back. Passing partitions
of a ranged run get no evaluation of their own: each is one event-log write, and a year has 365 of them.
"""

from __future__ import annotations

import dagster as dg

from assets.common.partitions import DAILY_PARTITIONS
from flightdeck.loader import QUARANTINE_RATE, RECONCILES, VOLUME, Gates, PartitionLoad

DAILY_GATES = (RECONCILES, QUARANTINE_RATE, VOLUME)
_DESCRIPTIONS = {
    RECONCILES: "rows_read = rows_loaded + rows_quarantined + rows_duplicate (+ rows_held_back), per partition",
    QUARANTINE_RATE: "share of quarantined rows per partition is at most the dataset's max quarantine rate",
    VOLUME: "rows per day >= FLIGHTDECK_MIN_VOLUME_FRACTION x trailing 7-day median",
}


def check_specs(asset_key: dg.AssetKey, daily: bool = True) -> list[dg.AssetCheckSpec]:
    """The gates of a raw asset; the volume gate needs daily history, so snapshots go without it."""
    names = DAILY_GATES if daily else DAILY_GATES[:2]
    return [
        dg.AssetCheckSpec(
            name,
            asset=asset_key,
            blocking=True,
            description=_DESCRIPTIONS[name],
            partitions_def=DAILY_PARTITIONS if daily else None,
        )
        for name in names
    ]


def _dates(loads: list[PartitionLoad]) -> str:
    names = [str(load.partition_date or load.source_file) for load in loads[:10]]
    return ", ".join(names) + (" …" if len(loads) > 10 else "")


def gate_results(
    asset_key: dg.AssetKey, loads: list[PartitionLoad], gates: Gates, ranged: bool
) -> tuple[list[dg.AssetCheckResult], list[dg.AssetCheckEvaluation]]:
    """(the run's result of each gate, one failed evaluation per failing partition of a ranged run).

    The run's result fails with ERROR only when nothing of the window passed it; when some partitions
    were held back and the others loaded it is a WARN that names them, so the partitions that passed
    still reach what is downstream (a failed ERROR result of a blocking check would stop them all).
    """
    results, evaluations = [], []
    for gate in DAILY_GATES:
        failing = [load for load in loads if gate in load.failed_gates]
        checked = [load for load in loads if load.rows_read or gate in load.failed_gates]
        blocks = gate in gates.blocking
        all_failed = bool(failing) and len(failing) == len(checked)
        severity = dg.AssetCheckSeverity.ERROR if blocks and all_failed else dg.AssetCheckSeverity.WARN
        action = "held back" if blocks else "reported"
        results.append(
            dg.AssetCheckResult(
                check_name=gate,
                passed=not failing,
                severity=severity if failing else dg.AssetCheckSeverity.ERROR,
                description=(
                    f"failed on {len(failing)} of {len(checked)} partition(s), {action}: {_dates(failing)}"
                    if failing
                    else f"passed on every partition ({len(checked)})"
                ),
                metadata={
                    "partitions_checked": len(checked),
                    "partitions_failing": len(failing),
                    "failing_partitions": dg.MetadataValue.md(
                        "\n".join(f"- {f.partition_date}: {f.failed_gates[gate]}" for f in failing) or "none"
                    ),
                },
            )
        )
        if ranged:
            evaluations.extend(
                dg.AssetCheckEvaluation(
                    asset_key=asset_key,
                    check_name=gate,
                    passed=False,
                    partition=load.partition_date.isoformat(),
                    severity=dg.AssetCheckSeverity.ERROR if blocks else dg.AssetCheckSeverity.WARN,
                    description=load.failed_gates[gate],
                    metadata=evaluation_metadata(load),
                )
                for load in failing
            )
    return results, evaluations


def evaluation_metadata(load: PartitionLoad) -> dict[str, object]:
    """A partition's figures on its own failed gate evaluation."""
    return {
        "rows_read": load.rows_read,
        "rows_quarantined": load.rows_quarantined,
        "rows_duplicate": load.rows_duplicate,
        "quarantine_rate": float(load.quarantine_rate),
        "schema_failures": load.schema_failures,
    }


def snapshot_results(load: PartitionLoad, threshold: float) -> list[dg.AssetCheckResult]:
    """The gates of an unpartitioned snapshot (the reference tables): reconciliation and quarantine rate."""
    over = load.quarantine_rate > threshold
    return [
        dg.AssetCheckResult(
            check_name=RECONCILES,
            passed=load.reconciles,
            severity=dg.AssetCheckSeverity.ERROR,
            description="every row is accounted for" if load.reconciles else "rows do not reconcile",
            metadata={"rows_read": load.rows_read},
        ),
        dg.AssetCheckResult(
            check_name=QUARANTINE_RATE,
            passed=not over,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"quarantine rate above {threshold:.2%}" if over else "within threshold",
            metadata={"threshold": threshold, "quarantine_rate": float(load.quarantine_rate)},
        ),
    ]

"""Freshness of each asset against its FreshnessPolicy (the dagster 1.13 time-window policy).

The FreshnessDaemon shows the same states in the UI; computing them here from the instance's
materialization history lets ops/pipeline_health record them and the health alert sensor alert on them
with an injectable clock (tests), without depending on the daemon having run.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"


@dataclass(frozen=True)
class AssetFreshness:
    asset: str
    last_updated: float | None
    age_hours: float | None
    fail_after_hours: float
    state: str


def freshness_state(last_updated: float | None, policy, now: float) -> str:
    """pass / warn / fail by the age of the last materialization; unknown when never materialized."""
    if last_updated is None:
        return UNKNOWN
    age = now - last_updated
    if age > policy.fail_window.to_timedelta().total_seconds():
        return FAIL
    if policy.warn_window and age > policy.warn_window.to_timedelta().total_seconds():
        return WARN
    return PASS


def asset_freshness(instance: dg.DagsterInstance, asset_graph, now: float) -> list[AssetFreshness]:
    """Every materializable asset that has a time-window freshness policy."""
    states = []
    for key in sorted(asset_graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = asset_graph.get(key)
        policy = node.freshness_policy
        if not node.is_materializable or policy is None or not hasattr(policy, "fail_window"):
            continue
        event = instance.get_latest_materialization_event(key)
        last = event.timestamp if event else None
        states.append(
            AssetFreshness(
                asset=key.to_user_string(),
                last_updated=last,
                age_hours=(now - last) / 3600 if last else None,
                fail_after_hours=policy.fail_window.to_timedelta().total_seconds() / 3600,
                state=freshness_state(last, policy, now),
            )
        )
    return states

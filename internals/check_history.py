"""Failed executions of an asset check: the instance's public history query takes its status filter as an
enum Dagster keeps in a private module; this is the one place that imports it."""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


def failed_check_executions(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, limit: int):
    return instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=limit, status={AssetCheckExecutionRecordStatus.FAILED}
    )

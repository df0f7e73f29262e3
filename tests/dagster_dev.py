"""Start and stop a real `dagster dev` (webserver + daemon) on 127.0.0.1 for end-to-end tests."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def flightdeck_env(data_dir: Path, dagster_home: Path) -> dict[str, str]:
    """The environment a user's shell has for one data dir and one instance."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "FLIGHTDECK_DATA_DIR": str(data_dir),
        "FLIGHTDECK_DUCKDB_PATH": str(data_dir / "warehouse.duckdb"),
        "FLIGHTDECK_REFERENCE_DB_URL": f"sqlite:///{data_dir / 'reference.sqlite'}",
    }


@contextmanager
def dagster_dev(
    data_dir: Path,
    dagster_home: Path,
    extra_env: dict[str, str] | None = None,
    workspace: Path = ROOT / "workspace.yaml",
    command: str = "dagster",
):
    """Yields (base_url, instance); stops the whole process group on exit, bounded. `command="dg"` starts
    `dg dev` instead, which finds the project by pyproject.toml's [tool.dg] (no workspace file)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    env = flightdeck_env(data_dir, dagster_home) | {
        "FLIGHTDECK_LANDING_SETTLE_SECONDS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **(extra_env or {}),
    }
    where = ["-w", str(workspace)] if command == "dagster" else []
    proc, log = start_process_group(
        [str(BIN / command), "dev", *where, "--host", "127.0.0.1", "--port", str(port)],
        env,
        dagster_home / "dagster_dev.log",
    )
    base_url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise RuntimeError(f"{command} dev exited early; see {log.name}")
        try:
            with urllib.request.urlopen(f"{base_url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(up, timeout=180, what="the Dagster webserver")
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            yield base_url, instance
    finally:
        stop_process_group(proc, log)


def start_process_group(cmd: list[str], env: dict[str, str], log_path: Path):
    """Start `cmd` in its own session (so its children can be stopped with it), logging to `log_path`."""
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop_process_group
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return proc, log


def stop_process_group(proc: subprocess.Popen, log) -> None:
    """SIGTERM the whole group, SIGKILL it if it has not exited within a minute; bounded.

    The group's other members (a run worker, the code server) can outlive its leader by a moment while
    they record their own end; they are waited for too, so nothing writes into a folder being removed.
    """
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)  # ProcessLookupError once no member of the group is left
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    log.close()


def finished_runs(instance: dg.DagsterInstance, job_name: str | None = None):
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name) if job_name else None)
    return [r for r in runs if r.is_finished], [r for r in runs if not r.is_finished]


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""


def launch_backfill(web_url: str, partitions: list[str], asset_paths: list[list[str]]) -> str:
    """The same GraphQL call the UI's Materialize → Launch backfill makes."""
    params = {"partitionNames": partitions, "assetSelection": [{"path": p} for p in asset_paths]}
    result = graphql(web_url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def graphql(web_url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{web_url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    assert "errors" not in body, body["errors"]
    return body["data"]


LAUNCH_RUN = """
mutation($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def launch_assets(web_url: str, asset_paths: list[list[str]], location: str = "flightdeck") -> str:
    """The call the UI's Materialize button makes for unpartitioned assets: a run of the implicit asset
    job, queued on the instance; its run id."""
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": p} for p in asset_paths],
        },
        "mode": "default",
        "executionMetadata": {"tags": []},
    }
    result = graphql(web_url, LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


STOP_SENSOR = """
mutation($originId: String!, $selectorId: String!) {
  stopSensor(jobOriginId: $originId, jobSelectorId: $selectorId) {
    __typename
    ... on StopSensorMutationResult { instigationState { status } }
    ... on PythonError { message }
  }
}"""


def stop_sensor(web_url: str, instance: dg.DagsterInstance, name: str) -> None:
    """The UI's sensor toggle, switched off."""
    [state] = [s for s in instance.all_instigator_state() if s.name == name]
    result = graphql(
        web_url, STOP_SENSOR, {"originId": state.instigator_origin_id, "selectorId": state.selector_id}
    )["stopSensor"]
    assert result["__typename"] == "StopSensorMutationResult", result
    assert result["instigationState"]["status"] == "STOPPED", result

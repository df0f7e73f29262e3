"""Credentials in URLs never leak: a weather API, a webhook, the reference database and the Celery broker
whose URLs carry marker secrets all fail, and neither the instance, the data dir, ops.alerts, the run's
output nor the alert itself holds the marker."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from resources.alerting import AlertChannels
from tests.celery_workers import rabbitmq_reachable
from tests.conftest import ROOT
from tests.dagster_dev import BIN, free_port
from tests.runs import run_job
from tests.test_alerts import evaluate_failure_sensor

MARKER = "S3CRET-MARKER-7d1f"


def files_holding(root: Path, marker: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and marker.encode() in p.read_bytes()]


def test_marker_secrets_in_urls_appear_nowhere(env, instance, monkeypatch):
    dead = free_port()
    monkeypatch.setenv(
        "FLIGHTDECK_WEATHER_API_URL", f"http://weather:{MARKER}@127.0.0.1:{dead}/?api_key={MARKER}"
    )
    monkeypatch.setenv("FLIGHTDECK_WEATHER_MAX_ATTEMPTS", "1")
    result = run_job(
        "weather_pipeline",
        instance,
        partition="2013-01-02",
        asset_selection=[dg.AssetKey(["raw", "weather"])],
    )
    assert not result.success
    channels = AlertChannels(webhook_url=f"http://hook:{MARKER}@127.0.0.1:{free_port()}/x?token={MARKER}",
                             smtp_host="127.0.0.1", smtp_port=free_port(), email_to="a@example.com",
                             smtp_user="u", smtp_password=MARKER)  # fmt: skip
    evaluate_failure_sensor(result, instance, channels, env)

    alerts = env.query("SELECT summary, details, deliveries FROM ops.alerts")
    assert alerts and "failed" in alerts[0][2]
    assert MARKER not in repr(alerts)
    assert files_holding(Path(instance.root_directory), MARKER) == []
    assert files_holding(env.root, MARKER) == []
    for event in result.all_events:
        assert MARKER not in repr(event), event.event_type_value


def test_a_reference_database_password_appears_nowhere(env, instance, monkeypatch):
    monkeypatch.setenv(
        "FLIGHTDECK_REFERENCE_DB_URL", f"postgresql://flightdeck:{MARKER}@127.0.0.1:{free_port()}/reference"
    )
    result = run_job("reference_refresh", instance)
    assert not result.success
    for event in result.all_events:
        assert MARKER not in repr(event), event.event_type_value
    assert files_holding(Path(instance.root_directory), MARKER) == []
    assert files_holding(env.root, MARKER) == []


@pytest.mark.skipif(not rabbitmq_reachable(), reason="RabbitMQ is not reachable on 127.0.0.1:5672")
def test_a_celery_broker_password_appears_nowhere(env, tmp_path):
    """The broker refuses the marker password: the run fails, and neither its output, the instance nor
    the data dir holds the password; a malformed broker URL is refused at load without echoing it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    run_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FLIGHTDECK_EXECUTOR": "celery",
        "FLIGHTDECK_CELERY_BROKER_URL": f"pyamqp://guest:{MARKER}@127.0.0.1:5672//",
    }
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-f", "definitions.py", "-j", "reference_refresh"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "ACCESS_REFUSED" in done.stdout + done.stderr
    assert MARKER not in done.stdout + done.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert MARKER not in repr(run.run_config)
        for event in instance.all_logs(run.run_id):
            assert MARKER not in repr(event), event.dagster_event_type
    assert files_holding(home, MARKER) == []
    assert files_holding(env.root, MARKER) == []

    malformed = run_env | {"FLIGHTDECK_CELERY_BROKER_URL": f"pyamqp://guest:{MARKER}@127.0.0.1:port//"}
    refused = subprocess.run(
        [sys.executable, "-c", "import definitions"], cwd=ROOT, env=malformed, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "FLIGHTDECK_CELERY_BROKER_URL" in refused.stderr
    assert MARKER not in refused.stdout + refused.stderr

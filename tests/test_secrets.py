"""Credentials in URLs never leak: a weather API and a webhook whose URLs carry marker secrets both fail,
and neither the instance, the data dir, ops.alerts nor the alert itself holds the marker."""

from pathlib import Path

import dagster as dg

from resources.alerting import AlertChannels
from tests.dagster_dev import free_port
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

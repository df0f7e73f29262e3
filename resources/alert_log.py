"""ops.alerts: every alert, whichever channels deliver it, with throttling and redelivery state."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import duckdb

from flightdeck import settings
from flightdeck.warehouse_ddl import ALERTS_DDL
from resources.alerting import Alert, AlertChannels

MAX_DELIVERY_ATTEMPTS = 5


def throttle_seconds() -> float:
    return float(settings.get(settings.ALERT_THROTTLE_SECONDS))


def run_url(run_id: str) -> str:
    return f"{settings.get(settings.UI_URL).rstrip('/')}/runs/{run_id}"


def _status(outcomes: dict[str, str]) -> str:
    if not outcomes:
        return "logged"
    return "failed" if any(v != "sent" for v in outcomes.values()) else "sent"


def raise_alert(
    con: duckdb.DuckDBPyConnection, channels: AlertChannels, alert: Alert, throttle_seconds: float
) -> str:
    """Record `alert`; deliver it unless the same dedupe key was raised within the window. Returns status."""
    con.execute(ALERTS_DDL)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=throttle_seconds)
    recent = con.execute(
        "SELECT count(*) FROM ops.alerts WHERE dedupe_key = ? AND created_at >= ? AND status <> 'suppressed'",
        [alert.dedupe_key, since],
    ).fetchone()[0]
    outcomes = {} if recent else channels.deliver(alert)
    status = "suppressed" if recent else _status(outcomes)
    con.execute(
        "INSERT INTO ops.alerts VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, NULL)",
        [
            str(uuid.uuid4()),
            alert.kind,
            alert.dedupe_key,
            alert.summary,
            json.dumps(alert.details),
            status,
            json.dumps(outcomes),
            0 if recent else 1,
        ],
    )
    return status


def alerted_for_run(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether a failure alert was already recorded for this run (by any code location's sensor)."""
    con.execute(ALERTS_DDL)
    return con.execute(
        "SELECT count(*) > 0 FROM ops.alerts WHERE kind = 'run_failure' AND json_extract_string(details, 'run_id') = ?",
        [run_id],
    ).fetchone()[0]


def redeliver_failed(con: duckdb.DuckDBPyConnection, channels: AlertChannels) -> int:
    """Retry alerts whose delivery failed, up to MAX_DELIVERY_ATTEMPTS; returns how many now went out."""
    con.execute(ALERTS_DDL)
    pending = con.execute(
        "SELECT alert_id, kind, dedupe_key, summary, details FROM ops.alerts WHERE status = 'failed' AND attempts < ?",
        [MAX_DELIVERY_ATTEMPTS],
    ).fetchall()
    sent = 0
    for alert_id, kind, key, summary, details in pending:
        outcomes = channels.deliver(Alert(kind, key, summary, json.loads(details)))
        status = _status(outcomes)
        sent += status == "sent"
        con.execute(
            "UPDATE ops.alerts SET status = ?, deliveries = ?, attempts = attempts + 1 WHERE alert_id = ?",
            [status, json.dumps(outcomes), alert_id],
        )
    return sent


def open_failure_for(con: duckdb.DuckDBPyConnection, job_name: str) -> str | None:
    """The latest run_failure alert of a job that has not been followed by a recovery, if any."""
    con.execute(ALERTS_DDL)
    row = con.execute(
        """SELECT alert_id FROM ops.alerts
           WHERE kind = 'run_failure' AND json_extract_string(details, 'job') = ? AND recovered_at IS NULL
             AND status <> 'suppressed'
           ORDER BY created_at DESC LIMIT 1""",
        [job_name],
    ).fetchone()
    return row[0] if row else None


def mark_recovered(con: duckdb.DuckDBPyConnection, job_name: str) -> None:
    con.execute(
        """UPDATE ops.alerts SET recovered_at = now()
           WHERE kind = 'run_failure' AND json_extract_string(details, 'job') = ? AND recovered_at IS NULL""",
        [job_name],
    )

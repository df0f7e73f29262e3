"""Alert channels: email over SMTP and a Slack-compatible webhook, configured by environment.

Delivery never raises: each channel's outcome is returned so the caller records it in ops.alerts,
and a channel that is down cannot crash the sensor that raised the alert.
"""

from __future__ import annotations

import json
import smtplib
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

import dagster as dg

from flightdeck.settings import redact_url


@dataclass(frozen=True)
class Alert:
    kind: str  # run_failure, recovery, ...
    dedupe_key: str  # the same key within the throttle window is recorded but not sent again
    summary: str
    details: dict[str, str] = field(
        default_factory=dict
    )  # job, asset, partition, step, check, error, run_url

    def text(self) -> str:
        lines = [f"[flightdeck] {self.summary}"]
        lines += [f"{name}: {value}" for name, value in self.details.items() if value]
        return "\n".join(lines)


class AlertChannels(dg.ConfigurableResource):
    """Unset host / URL means the channel is off; alerts then go to the logs and ops.alerts only."""

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    email_from: str = "flightdeck@localhost"
    email_to: str = ""
    webhook_url: str = ""
    timeout_seconds: float = 10.0

    def _send_email(self, alert: Alert) -> None:
        message = EmailMessage()
        message["Subject"] = f"[flightdeck] {alert.summary}"
        message["From"] = self.email_from
        message["To"] = ", ".join(a.strip() for a in self.email_to.split(",") if a.strip())
        message.set_content(alert.text())
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as smtp:
            if self.smtp_starttls:
                smtp.starttls()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password)
            smtp.send_message(message)

    def _post_webhook(self, alert: Alert) -> None:
        body = {"text": alert.text(), "kind": alert.kind, "summary": alert.summary, "fields": alert.details}
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            if response.status >= 300:
                raise OSError(f"webhook answered {response.status}")

    def _without_secrets(self, text: str) -> str:
        """An error as it may be recorded: the webhook URL redacted, the SMTP password never shown."""
        if self.webhook_url:
            text = text.replace(self.webhook_url, redact_url(self.webhook_url))
        return text.replace(self.smtp_password, "***") if self.smtp_password else text

    def deliver(self, alert: Alert) -> dict[str, str]:
        """{channel: 'sent' | 'failed: <error>'} for each configured channel."""
        outcomes: dict[str, str] = {}
        channels = {
            "email": (self.smtp_host and self.email_to, self._send_email),
            "webhook": (self.webhook_url, self._post_webhook),
        }
        for name, (configured, send) in channels.items():
            if not configured:
                continue
            try:
                send(alert)
                outcomes[name] = "sent"
            except Exception as exc:  # any failure of a channel is recorded, never raised
                outcomes[name] = self._without_secrets(f"failed: {type(exc).__name__}: {exc}")[:500]
        return outcomes

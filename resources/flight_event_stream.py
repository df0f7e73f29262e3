"""The live flight events' broker: a Redis stream read through a consumer group.

Delivery is at least once: an entry stays pending in the group until it is acknowledged, which the
micro-batch does only after the warehouse commit that holds it (assets/flight_events.py). Entries a
consumer took and never acknowledged (its run was killed) are claimed by the next batch once they have
been idle `claim_idle_seconds`; their event_ids keep them from counting twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import redis

FIELD = "event"


@dataclass(frozen=True)
class StreamState:
    length: int
    lag: int | None  # entries not yet delivered to the group (None: unknown to this Redis)
    pending: int  # delivered, not acknowledged
    last_entry_id: str

    @property
    def has_work(self) -> bool:
        return bool(self.pending) or (self.lag is None and self.length > 0) or bool(self.lag)


class FlightEventStream(dg.ConfigurableResource):
    url: str
    key: str
    group: str = "flightdeck"
    claim_idle_seconds: float = 60.0
    connect_timeout_seconds: float = 3.0

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout_seconds,
            socket_timeout=max(self.connect_timeout_seconds, 10.0),
            decode_responses=True,
        )

    def ensure_group(self, client: redis.Redis) -> None:
        """The consumer group, reading the stream from its first entry (created with the stream)."""
        try:
            client.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def state(self) -> StreamState:
        client = self.client()
        try:
            self.ensure_group(client)
            [group] = [g for g in client.xinfo_groups(self.key) if g["name"] == self.group]
            info = client.xinfo_stream(self.key)
            return StreamState(
                int(info["length"]), group.get("lag"), int(group["pending"]), str(info["last-generated-id"])
            )
        finally:
            client.close()

    def read_batch(self, consumer: str, count: int) -> list[tuple[str, str | None]]:
        """Up to `count` entries for `consumer`: first those another consumer left unacknowledged for
        `claim_idle_seconds` (a killed run's), then new ones. (entry id, its `event` field or None)."""
        client = self.client()
        try:
            self.ensure_group(client)
            idle_ms = int(self.claim_idle_seconds * 1000)
            _, claimed, *_ = client.xautoclaim(self.key, self.group, consumer, idle_ms, "0-0", count=count)
            entries = [(entry_id, fields) for entry_id, fields in claimed if fields is not None]
            if len(entries) < count:
                for _, new in (
                    client.xreadgroup(self.group, consumer, {self.key: ">"}, count=count - len(entries)) or []
                ):
                    entries.extend(new)
            return [(entry_id, (fields or {}).get(FIELD)) for entry_id, fields in entries]
        finally:
            client.close()

    def ack(self, entry_ids: list[str]) -> int:
        if not entry_ids:
            return 0
        client = self.client()
        try:
            return int(client.xack(self.key, self.group, *entry_ids))
        finally:
            client.close()

    def release(self, consumer: str) -> None:
        """Forget `consumer` once it holds nothing pending (a run's consumer is used once)."""
        client = self.client()
        try:
            for info in client.xinfo_consumers(self.key, self.group):
                if info["name"] == consumer and int(info["pending"]) == 0:
                    client.xgroup_delconsumer(self.key, self.group, consumer)
        finally:
            client.close()

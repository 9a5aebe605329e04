"""Dead-letter records: what a consumer could not decode or handle, with the reason in headers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from quorum_common.schemas import dlq_topic

REASON_DECODE = "decode_error"
REASON_HANDLER = "handler_error"
REDRIVEN_FROM_HEADER = "dlq.redriven-from"
"""On a dead letter sent back to its topic (:mod:`quorum_common.bus.redrive`): where it was, ``dlq.<topic>/<partition>/
<offset>``."""
REDRIVEN_FOR_HEADER = "dlq.redriven-for"
"""On a dead letter sent back to its topic: the service that refused it, the only one that handles it again."""


def meant_for(headers: dict[str, str], service: str) -> bool:
    """Whether a consumer ``service`` handles a record: every record, but a dead letter sent back only by the service
    that refused it (the others handled the original)."""
    return headers.get(REDRIVEN_FOR_HEADER, service) == service


def dead_letter_payload(codec: object, topic: str, payload: bytes | dict) -> bytes:
    """Bytes to keep for a refused record: Avro when it still fits the topic's schema, else JSON."""
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    try:
        return codec.encode(topic, payload)  # type: ignore[attr-defined]
    except Exception:  # a record too broken for its schema is kept as JSON text
        return json.dumps(payload, default=str, sort_keys=True).encode()


def readable_payload(codec: object, topic: str, payload: bytes) -> dict[str, Any]:
    """What a dead letter's bytes hold, for a person: the record when they decode with the topic's schema, or as the
    JSON :func:`dead_letter_payload` keeps a record too broken for it in; else their base64 under ``undecodable``."""
    try:
        return codec.decode(topic, payload)[1]  # type: ignore[attr-defined]
    except Exception:  # not Avro of this schema: JSON, or bytes no reader takes
        try:
            record = json.loads(payload)
        except ValueError:
            record = None
        return record if isinstance(record, dict) else {"undecodable": base64.b64encode(payload).decode()}


@dataclass(frozen=True)
class DeadLetter:
    """A record that went to ``dlq.<topic>``, kept byte for byte with the reason it was refused."""

    topic: str
    key: str | None
    payload: bytes
    reason: str
    error: str
    service: str
    partition: int = -1
    offset: int = -1
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def dlq_topic(self) -> str:
        """The dead-letter topic it belongs to."""
        return dlq_topic(self.topic)

    def dlq_headers(self) -> dict[str, str]:
        """The original headers plus ``dlq.*`` headers that say where the record came from and why."""
        return {
            **self.headers,
            "dlq.reason": self.reason,
            "dlq.error": self.error[:1000],
            "dlq.service": self.service,
            "dlq.source.topic": self.topic,
            "dlq.source.partition": str(self.partition),
            "dlq.source.offset": str(self.offset),
        }

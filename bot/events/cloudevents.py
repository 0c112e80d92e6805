"""The CloudEvents 1.0 envelope of a stored event (structured JSON mode) and its HMAC-SHA256 signature.

The body is built the same way on every attempt (sorted keys, no spaces), so a redelivery is byte-for-byte the
first delivery and carries the same signature; receivers de-duplicate on ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from bot.store.events import StoredEvent

__all__ = ["CONTENT_TYPE", "SIGNATURE_HEADER", "SOURCE", "body", "envelope", "signature"]

CONTENT_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Releasebot-Signature-256"
SOURCE = "/release-bot"


def envelope(event: StoredEvent) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 JSON object; ``releasebotseq`` is the sequence `?since=` takes."""
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": SOURCE,
        "type": event.type,
        "subject": event.subject,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "releasebotseq": event.seq,
        "data": event.data,
    }


def body(event: StoredEvent) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``."""
    return json.dumps(envelope(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: bytes, payload: bytes) -> str:
    """The ``X-Releasebot-Signature-256`` value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret, payload, hashlib.sha256).hexdigest()

"""POSTing one event to one webhook: CloudEvents structured mode, signed, over the shared HTTP session.

Any 2xx delivers it. A 429 or 503 with ``Retry-After`` (seconds or an HTTP date) is waited out; every other
answer, a timeout or a connection error is retried with backoff by the worker (bot/events/deliver.py). Redirects
are not followed: the signed body goes only where the config says. A redelivery is the same bytes with the same
``id``, which is what receivers de-duplicate on.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp

from bot.events.cloudevents import CONTENT_TYPE, SIGNATURE_HEADER, body, signature
from bot.events.deliver import Failure
from bot.http_session import HttpSession
from bot.store.events import Delivery

__all__ = ["WebhookSender", "retry_after"]


def retry_after(value: str | None, now: datetime) -> float:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); 0 when absent or unreadable."""
    if not value:
        return 0.0
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class WebhookSender:
    """Delivers events to ``url``, signed with ``secret``."""

    def __init__(
        self, url: str, secret: bytes, *, session: HttpSession, timeout: float, now: Callable[[], datetime]
    ) -> None:
        self._url = url
        self._secret = secret
        self._http = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = now

    def __repr__(self) -> str:
        return f"WebhookSender({self._url!r})"  # never the secret

    @property
    def target(self) -> str:
        return self._url

    async def send(self, delivery: Delivery) -> str | None:
        payload = body(delivery.event)
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: signature(self._secret, payload),
            "User-Agent": "release-bot",
        }
        try:
            async with self._http.get().post(
                self._url, data=payload, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                wait = retry_after(resp.headers.get("Retry-After"), self._now()) if status in (429, 503) else 0.0
                await resp.read()
        except aiohttp.ClientConnectorError as exc:
            raise Failure(f"cannot connect: {exc}", in_doubt=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failure(f"no answer: {str(exc) or type(exc).__name__}") from None
        if 200 <= status < 300:
            return None
        raise Failure(f"HTTP {status}", retry_after=wait, in_doubt=status >= 500)

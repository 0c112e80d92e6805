"""POSTing one event to one webhook: CloudEvents structured mode, signed, over the shared HTTP session.

Any 2xx delivers it. A 4xx other than 401, 403, 408 and 429 is the receiver refusing this event for good (a bad
request, no such hook, gone, too large): it is given up at once, so that one event does not hold back the
receiver's later ones for the 24 hours a delivery is retried. A 401 or 403 is about the credentials, not the event
— a signing secret the receiver does not share yet, in the middle of a rotation —: every event would meet it, so it
is retried like an outage until the secrets agree (giving each up would drop them all). A 429 or 503 with
``Retry-After`` (seconds or an HTTP date) is waited out; every other answer (401, 403, 408, 429, 5xx, a 3xx), a
timeout or a connection error is retried with backoff by the worker (bot/events/deliver.py). Redirects are not
followed: the signed body goes only where the config says. A redelivery is the same bytes with the same ``id``,
which is what receivers de-duplicate on.

The URL may carry the receiver's token in its path or query, so nothing here shows it: ``repr`` and every error
name the receiver by its label (its configured ``name``, or the URL's scheme, host and port).
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
from yarl import URL

from bot.config.events import target_label
from bot.events.cloudevents import CONTENT_TYPE, SIGNATURE_HEADER, body, signature
from bot.events.deliver import Failure
from bot.http_session import HttpSession
from bot.store.events import Delivery

__all__ = ["WebhookSender", "refused_for_good", "retry_after"]

# 4xx answers that may well change: credentials the receiver does not accept yet (a secret being rotated), a
# request timeout, and too many requests (which names its wait).
_RETRYABLE_4XX = frozenset({401, 403, 408, 429})


def refused_for_good(status: int) -> bool:
    """Whether a receiver's answer refuses the event so that sending it again cannot help: a 4xx other than 401,
    403, 408 and 429 (400, 404, 410, 413, 415, 422, …)."""
    return 400 <= status < 500 and status not in _RETRYABLE_4XX


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
    """Delivers events to ``url``, signed with ``secret``; ``label`` (the webhook's ``name``, default the URL's
    scheme, host and port) is how it is shown."""

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        session: HttpSession,
        timeout: float,
        now: Callable[[], datetime],
        label: str | None = None,
    ) -> None:
        self._url = url
        self._secret = secret
        self._http = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = now
        self.label = label or target_label(url)
        self._url_forms = {url}  # how an error may quote the URL: as configured, and as aiohttp normalised it
        with contextlib.suppress(ValueError):  # not for yarl: aiohttp's error then quotes the configured form
            self._url_forms.add(str(URL(url)))

    def __repr__(self) -> str:
        return f"WebhookSender({self.label!r})"  # never the URL (it may hold a token) nor the secret

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
            raise Failure(f"cannot connect: {self._shown(exc)}", in_doubt=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failure(f"no answer: {self._shown(exc)}") from None
        if 200 <= status < 300:
            return None
        if refused_for_good(status):
            raise Failure(f"HTTP {status}: refused by the receiver, not retried", fatal=True, in_doubt=False)
        raise Failure(f"HTTP {status}", retry_after=wait, in_doubt=status >= 500)

    def _shown(self, exc: BaseException) -> str:
        """An error's text fit for logs and the database: some aiohttp errors (an invalid URL, a bad answer)
        quote the request's URL, which is replaced by the label."""
        text = str(exc) or type(exc).__name__
        for form in self._url_forms:
            text = text.replace(form, self.label)
        return text

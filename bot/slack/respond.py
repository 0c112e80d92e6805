"""Answers through a request's response_url over one kept-alive HTTP session.

Bolt's `respond()` builds a new webhook client, and so a new connection, for every answer; under load
that connection churn is most of the cost of a `/release status`. The same slack_sdk webhook client,
given one shared session, reuses its connections.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.render import Message


class ResponseSender:
    """Posts answers to response_url; the session opens on first use and closes with the app."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, url: str, message: Message, *, public: bool) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        client = AsyncWebhookClient(url=url, session=self._session, timeout=int(self._timeout))
        await client.send(
            text=message.text,
            blocks=message.blocks,
            response_type="in_channel" if public else "ephemeral",
            replace_original=False,
        )

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

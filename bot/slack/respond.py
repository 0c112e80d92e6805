"""Answers through a request's response_url over the runtime's shared, kept-alive HTTP session.

Bolt's `respond()` builds a new webhook client, and so a new connection, for every answer; under load
that connection churn is most of the cost of a `/release status`. The same slack_sdk webhook client,
given the shared session, reuses its connections.
"""

from __future__ import annotations

import asyncio

from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.http_session import HttpSession
from bot.views.render import Message


class ResponseSender:
    """Posts answers to response_url; the runtime opens and closes the session it sends through."""

    def __init__(self, session: HttpSession, timeout: float = 10.0) -> None:
        self._http = session
        self._timeout = timeout

    async def send(self, url: str, message: Message, *, public: bool) -> None:
        client = AsyncWebhookClient(url=url, session=self._http.get(), timeout=int(self._timeout))
        # Given a session, slack_sdk sends without a timeout of its own (it relies on the session's), so
        # the bound on one answer is set here rather than on the shared session.
        async with asyncio.timeout(self._timeout):
            await client.send(
                text=message.text,
                blocks=message.blocks,
                response_type="in_channel" if public else "ephemeral",
                replace_original=False,
            )

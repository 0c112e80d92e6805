"""Socket Mode's handler: Bolt over Slack's WebSocket, with replays dropped and acks timed like HTTP ones."""

from __future__ import annotations

import time

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.observability import HTTP_LATENCY
from bot.slack.app import Deliveries, delivery_keys
from bot.store import AsyncStore


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Socket Mode with its acks timed like HTTP ones: dispatch through Bolt until the ack is on the socket.

    An envelope Slack delivers again (same ``envelope_id``, or the same trigger_id / event_id in a new
    envelope) is acked and not dispatched: it has had its effect already.
    """

    def __init__(self, app: AsyncApp, app_token: str, *, store: AsyncStore) -> None:
        super().__init__(app, app_token)
        self.deliveries = Deliveries(store)

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        try:
            payload = req.payload if isinstance(req.payload, dict) else {}
            keys = [f"envelope_id:{req.envelope_id}", *delivery_keys(payload)]
            retry = f", retry {req.retry_attempt}" if req.retry_attempt else ""
            if await self.deliveries.first(keys, f"Socket Mode{retry}"):
                await super().handle(client, req)
            else:
                # Bolt's own empty ack for this envelope id, as an ack() with nothing to say sends.
                await send_async_response(client, req, BoltResponse(status=200, body=""), time.time())
        finally:
            HTTP_LATENCY.labels(route="socket_mode").observe(time.perf_counter() - started)

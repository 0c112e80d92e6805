"""A fake Slack Socket Mode endpoint: a real aiohttp WebSocket server on 127.0.0.1, port 0.

Speaks the wire format slack_sdk's Socket Mode clients expect: on connect the server sends ``hello``;
``send_envelope`` pushes ``{"envelope_id", "type", "payload", "accepts_response_payload"}`` and awaits the
client's ack ``{"envelope_id": ..., "payload"?: ...}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any, Literal

from aiohttp import WSMsgType, web

from tests.fakes.server import LocalServer

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]

# Slack expects an answer for these payload kinds in the ack; everything else is ack-only.
_RESPONSE_PAYLOAD_INTERACTIVE = {"view_submission", "block_suggestion"}


class FakeSocketModeServer(LocalServer):
    """Socket Mode WebSocket server; use as ``async with FakeSocketModeServer() as server``."""

    def __init__(self, app_id: str = "A0APP00001") -> None:
        self.app_id = app_id
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._connections: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._conn_counter = itertools.count(1)
        self.connection_count = 0
        self.received: list[dict[str, Any]] = []  # every JSON message a client sent, in order

    async def start(self) -> None:
        """Start listening on an ephemeral port."""
        app = web.Application()
        app.router.add_get("/link/", self._handle_ws)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close every connection and stop listening; pending envelopes fail."""
        await self.close_connections()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("FakeSocketModeServer stopped before the ack arrived"))
        self._pending.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def ws_url(self) -> str:
        """The URL ``apps.connections.open`` hands out."""
        if not self._port:
            raise RuntimeError("FakeSocketModeServer is not started")
        return f"ws://127.0.0.1:{self._port}/link/?ticket={uuid.uuid4()}&app_id={self.app_id}"

    @property
    def is_connected(self) -> bool:
        """True while at least one client connection is open."""
        return any(not ws.closed for ws in self._connections)

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Wait until a client has connected (and been sent ``hello``)."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            raise TimeoutError(f"no Socket Mode client connected within {timeout}s") from None

    async def _handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connection_count += 1
        n = next(self._conn_counter)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len([c for c in self._connections if not c.closed]) + 1,
                "debug_info": {
                    "host": f"applink-fake-{n}",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._connections.append(ws)
        self._connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self.received.append(data)
                fut = self._pending.pop(str(data.get("envelope_id")), None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        finally:
            self._connections.remove(ws)
            if not self.is_connected:
                self._connected.clear()
        return ws

    def _current(self) -> web.WebSocketResponse:
        for ws in reversed(self._connections):
            if not ws.closed:
                return ws
        raise ConnectionError("no Socket Mode client is connected")

    async def send_envelope(
        self,
        type: EnvelopeType,
        payload: dict[str, Any],
        accepts_response_payload: bool | None = None,
        *,
        timeout: float = 5.0,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
    ) -> dict[str, Any]:
        """Send one envelope to the newest connection and return the client's ack message.

        ``accepts_response_payload`` defaults to what Slack sends: true for slash commands and
        view_submission, false otherwise. Waits up to ``timeout`` for a client to connect and ack.
        """
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in _RESPONSE_PAYLOAD_INTERACTIVE
            )
        envelope_id = envelope_id or str(uuid.uuid4())  # given: Slack redelivering an envelope
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = fut
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
                await self._current().send_json(envelope)
                return await fut
        except TimeoutError:
            kind = payload.get("type") or payload.get("command")
            raise TimeoutError(
                f"no ack for {type} envelope {envelope_id} ({kind}) within {timeout}s "
                f"(client connected: {self.is_connected})"
            ) from None
        finally:
            self._pending.pop(envelope_id, None)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message, asking the client to reconnect via apps.connections.open."""
        await self._current().send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )

    async def close_connections(self) -> None:
        """Drop every open connection (as a network blip would)."""
        for ws in list(self._connections):
            await ws.close()

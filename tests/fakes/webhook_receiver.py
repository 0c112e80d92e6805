"""A webhook receiver of the bot's CloudEvents: a real aiohttp server on 127.0.0.1, port 0.

It does what docs/events.md asks of a receiver, written independently of the bot's code: it checks the
`X-Releasebot-Signature-256` header (HMAC-SHA256 of the raw body with the shared secret, compared in constant
time) and refuses a bad one with 401, requires `application/cloudevents+json`, and de-duplicates on the
CloudEvents `id`. Tests read `events` (each accepted event once, in arrival order), `deliveries` (every request
that carried a valid signature, duplicates included) and `refused`.

Faults: `fail_next(status, retry_after=…)` answers the next requests with an error; `down` answers 503 to all;
`hold()` keeps the next request waiting (it has arrived: `arrived` is set) until `release()`, so a test can stop
the bot while a delivery is in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer


@dataclass
class _Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class WebhookReceiver(LocalServer):
    """``async with WebhookReceiver(secret) as hook:``; ``hook.url`` is what the config names."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.down = False
        self.arrived = asyncio.Event()
        self.finished = 0  # requests answered (or cut short)
        self._finish = asyncio.Condition()
        self._faults: list[_Fault] = []
        self._held: asyncio.Event | None = None
        self._seen: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- test set-up ---------------------------------------------------------------------------------------

    def fail_next(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._faults += [_Fault(status, headers) for _ in range(times)]

    def hold(self) -> None:
        """Keep the next request waiting (``arrived`` is set when it comes) until ``release()``."""
        self._held = asyncio.Event()
        self.arrived.clear()

    def release(self) -> None:
        if self._held is not None:
            self._held.set()
        self._held = None

    def ids(self) -> list[str]:
        return [event["id"] for event in self.events]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    # -- server ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()

    def _verified(self, raw: bytes, header: str | None) -> bool:
        expected = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

    async def settled(self, count: int) -> None:
        """Wait until ``count`` requests have been answered (or cut short) in all."""
        async with self._finish:
            await self._finish.wait_for(lambda: self.finished >= count)

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            return await self._answer(request)
        finally:
            async with self._finish:
                self.finished += 1
                self._finish.notify_all()

    async def _answer(self, request: web.Request) -> web.Response:
        raw = await request.read()
        held = self._held
        self.arrived.set()
        if held is not None:
            await held.wait()
        if self.down:
            return web.json_response({"error": "unavailable"}, status=503)
        if self._faults:
            fault = self._faults.pop(0)
            return web.json_response({"error": "fault"}, status=fault.status, headers=fault.headers)
        if request.content_type != "application/cloudevents+json":
            self.refused.append(f"content type {request.content_type}")
            return web.json_response({"error": "not a structured CloudEvent"}, status=415)
        if not self._verified(raw, request.headers.get("X-Releasebot-Signature-256")):
            self.refused.append("bad signature")
            return web.json_response({"error": "bad signature"}, status=401)
        event = json.loads(raw)
        self.deliveries.append(event)
        if event["id"] not in self._seen:  # at-least-once delivery: the id is what makes it once
            self._seen.add(event["id"])
            self.events.append(event)
        return web.Response(status=204)

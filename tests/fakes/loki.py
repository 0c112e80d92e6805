"""A fake of Loki's instant-query API (``GET /loki/api/v1/query``) on a real aiohttp server.

Loki has no Debian package, so the client is tested against this: it answers with the shapes in
``tests/data/loki/`` (see its README for where each comes from) — JSON bodies as ``application/json``, Loki's
query errors as ``text/plain`` as Loki writes them. Replies are queued with :meth:`FakeLoki.reply` (or
:meth:`FakeLoki.reply_file`); without one queued it answers ``default``. Every request is recorded with its
query parameters and headers; ``gate`` demands credentials (a 401 quoting what it got otherwise), ``hang``
holds every query until the fake stops, and tests await :meth:`FakeLoki.wait_queries` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.auth import Gate
from tests.fakes.server import LocalServer

DATA = Path(__file__).parent.parent / "data" / "loki"


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str


@dataclass(frozen=True)
class Request:
    """One query as the fake received it."""

    params: dict[str, str]
    headers: dict[str, str]


def vector_of(value: float | None, at: float = 1764174000.0) -> dict[str, Any]:
    """A ``sum(...)`` answer: one unlabelled sample of ``value``, or no series for None."""
    result = [] if value is None else [{"metric": {}, "value": [at, f"{value:g}"]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class FakeLoki(LocalServer):
    """``/loki/api/v1/query`` with queued replies; ``async with`` it, or ``start()`` / ``stop()``."""

    def __init__(self, default: Any = None) -> None:
        self.default = Reply(200, json.dumps(default if default is not None else vector_of(0)), "application/json")
        self.replies: list[Reply] = []
        self.requests: list[Request] = []
        self.gate = Gate()
        self.hang = False
        self._stopping = asyncio.Event()
        self._seen = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def reply(self, body: Any, status: int = 200) -> None:
        """Queue a JSON answer (a dict or list is dumped; a str is sent as it is)."""
        text = body if isinstance(body, str) else json.dumps(body)
        self.replies.append(Reply(status, text, "application/json"))

    def reply_text(self, text: str, status: int) -> None:
        """Queue a plain-text answer, as Loki writes its query errors."""
        self.replies.append(Reply(status, text, "text/plain"))

    def reply_file(self, name: str, status: int = 200) -> None:
        """Queue the answer stored in ``tests/data/loki/<name>`` (``.txt`` files go out as plain text)."""
        text = (DATA / name).read_text()
        self.replies.append(Reply(status, text, "text/plain" if name.endswith(".txt") else "application/json"))

    async def _query(self, request: web.Request) -> web.Response:
        self.requests.append(Request(dict(request.query), dict(request.headers)))
        async with self._seen:
            self._seen.notify_all()
        if self.hang:
            await self._stopping.wait()  # held open until the fake stops: the client must time out
        reply = self.replies.pop(0) if self.replies else self.default
        return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)

    async def wait_queries(self, count: int, timeout: float = 15.0) -> None:
        """Wait until at least ``count`` queries arrived."""
        async with asyncio.timeout(timeout), self._seen:
            await self._seen.wait_for(lambda: len(self.requests) >= count)

    async def start(self) -> None:
        """Listen on a free loopback port; ``url`` is then the base URL to configure."""
        app = web.Application(middlewares=[self.gate.middleware()])
        app.router.add_get("/loki/api/v1/query", self._query)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Release held queries and stop the server."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

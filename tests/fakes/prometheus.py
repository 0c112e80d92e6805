"""A fake of Prometheus's instant-query API (``POST /api/v1/query``) on a real aiohttp server.

It answers a vector with one sample of ``value`` (no series when None), or first the values queued in
``script``; ``down`` answers 503 as a Prometheus behind a failing proxy does, ``blocking`` holds every
query until the fake stops, and ``gate`` (an event) holds every query until the test sets it. Tests await
``wait_queries`` instead of sleeping. For a real Prometheus see tests/prometheus_harness.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from tests.fakes.server import LocalServer


class FakePrometheus(LocalServer):
    """``/api/v1/query`` answering ``value``; ``async with`` it, or ``start()`` / ``stop()``."""

    def __init__(self, value: float | None = 0.001) -> None:
        self.value = value
        self.down = False  # True: answer 503, as a Prometheus behind a failing proxy does
        self.blocking = False  # True: never answer (until the fake stops)
        self.gate: asyncio.Event | None = None  # set: hold each query until the event is set, then answer
        self.script: list[float | None] = []  # answered first, in order, before ``value``
        self.queries: list[tuple[str, datetime]] = []
        self._seen = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _query(self, request: web.Request) -> web.Response:
        form = await request.post()
        at = datetime.fromtimestamp(float(str(form["time"])), UTC)
        self.queries.append((str(form["query"]), at))
        async with self._seen:
            self._seen.notify_all()
        if self.blocking:
            await self._stopping.wait()
            return web.Response(status=503, text="stopping")
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            return web.Response(status=503, text="upstream unavailable")
        value = self.script.pop(0) if self.script else self.value
        result = [] if value is None else [{"metric": {}, "value": [at.timestamp(), f"{value:g}"]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    async def wait_queries(self, count: int, timeout: float = 15.0) -> None:
        """Wait until at least ``count`` queries arrived."""
        async with asyncio.timeout(timeout), self._seen:
            await self._seen.wait_for(lambda: len(self.queries) >= count)

    async def start(self) -> None:
        """Listen on a free loopback port; ``url`` is then the base URL to configure."""
        app = web.Application()
        app.router.add_post("/api/v1/query", self._query)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Release held queries and stop the server."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

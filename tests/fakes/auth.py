"""Credentials a fake server demands: an aiohttp middleware that answers 401 to a request without them.

The 401 quotes the ``Authorization`` header it got, as careless servers do, so tests can show that the bot
never passes the body of a refusal on to a person or a log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gate:
    """``required`` headers (exact values; none by default) must all be present; ``refused`` counts 401s."""

    def __init__(self) -> None:
        self.required: dict[str, str] = {}
        self.refused = 0

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """The middleware for ``web.Application(middlewares=[gate.middleware()])``."""

        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if any(request.headers.get(name) != value for name, value in self.required.items()):
                self.refused += 1
                got = request.headers.get("Authorization", "")
                return web.Response(status=401, text=f"invalid credentials: {got!r}")
            return await handler(request)

        return gate

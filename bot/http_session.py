"""The bot's one outgoing HTTP session, handed to every client before it exists.

aiohttp makes a `ClientSession` only inside a running event loop, but the runtime and its clients
(Prometheus, HTTP checks, deploy providers, GitHub, response_url answers) are built before the loop
runs: `web.run_app` starts it after `http_app` returned. Making the build async would ripple through
every mode and test harness, so the runtime builds this holder instead, gives it to each client's
constructor, opens the session in `Runtime.start()` and closes it in `Runtime.close()`. Clients ask
for the session per request and pass their own `aiohttp.ClientTimeout` with each one, so one
connection pool serves them all while each keeps its own time budget.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp

__all__ = ["HttpSession"]


class HttpSession:
    """Holds one `aiohttp.ClientSession`: `open()` makes it, `get()` hands it out, `close()` ends it."""

    def __init__(self, session: aiohttp.ClientSession | None = None, *, own: bool = False) -> None:
        self._session = session
        self._own = own  # a client's private session: made on first use, closed by release()

    @classmethod
    def of(cls, session: HttpSession | aiohttp.ClientSession | None) -> HttpSession:
        """A client's session: the runtime's shared one, an open aiohttp session it was lent, or (None) its
        own, for a client used on its own (a test, a script)."""
        if isinstance(session, HttpSession):
            return session
        return cls(session, own=session is None)

    async def open(self) -> None:
        """Make the session (inside the running loop); a no-op while one is open."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()

    def get(self) -> aiohttp.ClientSession:
        """The open session; refusing beats silently making a second one nobody closes (a client's own
        session is made here, on first use, and again after release())."""
        if self._own and (self._session is None or self._session.closed):
            self._session = aiohttp.ClientSession()
        if self._session is None:
            raise RuntimeError("the HTTP session is not open: the runtime opens it in start()")
        return self._session

    @property
    def closed(self) -> bool:
        """True before `open()` and after `close()`."""
        return self._session is None or self._session.closed

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def release(self) -> None:
        """Close the session if it is the client's own; a shared or lent one is closed by its owner."""
        if self._own:
            await self.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

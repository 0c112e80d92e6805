"""What a log line is about — the release being run, the request being handled — carried in contextvars.

Wrap the work in :func:`log_context`; every log line emitted inside carries the values (the JSON log
format writes them as ``release_id`` / ``request_id``). Context variables follow the work, not the
thread: asyncio tasks created inside the block and ``asyncio.to_thread`` calls made inside it copy them,
while concurrent tasks never see each other's. Work handed to a thread some other way (an executor, the
store's own thread) does not carry them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current", "log_context"]

_release_id: ContextVar[int | None] = ContextVar("release_id", default=None)
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


@contextmanager
def log_context(*, release_id: int | None = None, request_id: str | None = None) -> Iterator[None]:
    """Within the block, log lines carry these values; None (or "") keeps the surrounding value."""
    release_token = _release_id.set(release_id) if release_id is not None else None
    request_token = _request_id.set(request_id) if request_id else None
    try:
        yield
    finally:
        if request_token is not None:
            _request_id.reset(request_token)
        if release_token is not None:
            _release_id.reset(release_token)


def current() -> dict[str, int | str]:
    """The values known here, by field name (``release_id``, ``request_id``); unknown ones are absent."""
    known: dict[str, int | str] = {}
    if (release_id := _release_id.get()) is not None:
        known["release_id"] = release_id
    if request_id := _request_id.get():
        known["request_id"] = request_id
    return known

"""A fake Slack Web API: a real aiohttp server on 127.0.0.1, port 0, speaking Slack's wire format.

Point slack_sdk at it with ``AsyncWebClient(token="xoxb-test", base_url=fake.base_url)`` (or env
``SLACK_API_URL``). It keeps message/view/file state, records every call, can inject rate limits, server
errors, delays and outages, and lets tests await calls instead of sleeping.

This module is the server: HTTP plumbing, recording, fault injection, response_url and the upload flow.
The workspace state (messages, views, files, users) is in slack_state.py, the Web API methods answered
from it in slack_methods.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.server import LocalServer
from tests.fakes.slack_methods import REQUIRED_ARGS, Handler, ResponseUrl, SlackMethods
from tests.fakes.slack_state import (
    Args,
    Ephemeral,
    Message,
    SlackError,
    UploadedFile,
)
from tests.fakes.socket_mode import FakeSocketModeServer

__all__ = [
    "Ephemeral",
    "FakeSlackWebAPI",
    "Message",
    "RecordedCall",
    "SlackError",
    "UploadedFile",
]

# Arguments Slack accepts as JSON strings inside a form body; decoded before recording.
_JSON_ARGS = ("blocks", "attachments", "view", "files", "metadata")
RESPONSE_URL_USES = 5


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake received: decoded args, lower-cased headers and what it answered."""

    method: str
    args: Args
    headers: dict[str, str]
    time: float
    status: int = 200
    response: Args = field(default_factory=dict)
    fault: str | None = None  # e.g. "429", "500", "down" for injected failures
    delay: float = 0.0

    @property
    def ok(self) -> bool:
        """True when Slack would have answered ``ok: true``."""
        return self.status == 200 and self.response.get("ok") is True

    @property
    def error(self) -> str | None:
        """The Slack ``error`` string of the answer, if any."""
        err = self.response.get("error")
        return str(err) if err is not None else None


@dataclass
class _Fault:
    remaining: int
    status: int = 0
    retry_after: int = 1
    error: str | None = None
    delay: float = 0.0
    drop: bool = False


class FakeSlackWebAPI(SlackMethods, LocalServer):
    """Fake Web API server. ``async with FakeSlackWebAPI() as fake: ...`` or ``start()``/``stop()``.

    With ``auto_create=True`` (default) unknown users/channels are synthesised on first use; set it False
    to get Slack's ``user_not_found``/``channel_not_found``. Tokens are checked by prefix (``xoxb-``/``xoxp-``
    for Web API methods, ``xapp-`` for apps.connections.open) unless exact ``bot_token``/``app_token`` given.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0TEAM0001",
        team_domain: str = "acme",
        bot_user_id: str = "U0BOT00001",
        bot_id: str = "B0BOT00001",
        app_id: str = "A0APP00001",
        bot_token: str | None = None,
        app_token: str | None = None,
        auto_create: bool = True,
        default_tz: str = "UTC",
        ts_base: int = 1_700_000_000,
    ) -> None:
        super().__init__(
            team_id=team_id,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            auto_create=auto_create,
            default_tz=default_tz,
            ts_base=ts_base,
        )
        self.bot_token, self.app_token = bot_token, app_token
        self.calls: list[RecordedCall] = []
        self.faulted_calls: list[RecordedCall] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._down: str | None = None
        self._upload_tokens: dict[str, str] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._socket_mode: FakeSocketModeServer | None = None
        self._cond = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening on an ephemeral port on 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{token}", self._handle_upload)
        app.router.add_post("/response_url/{token}", self._handle_response_url)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Release delayed requests and stop the server."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if not self._port:
            raise RuntimeError("FakeSlackWebAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """Value for ``AsyncWebClient(base_url=...)`` / ``SLACK_API_URL`` (slack_sdk urljoins the method)."""
        return f"{self.root_url}/api/"

    def attach_socket_mode(self, server: FakeSocketModeServer) -> None:
        """Make ``apps.connections.open`` hand out ``server``'s WebSocket URL."""
        self._socket_mode = server

    # ----------------------------------------------------------------- configuration

    def new_response_url(
        self, *, channel: str | None = None, message_ts: str | None = None, user_id: str | None = None
    ) -> str:
        """A ``response_url`` served by the fake; posts to it act on ``channel``/``message_ts`` like Slack."""
        token = uuid.uuid4().hex
        self._response_urls[token] = ResponseUrl(channel, message_ts, user_id)
        return f"{self.root_url}/response_url/{token}"

    # ----------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        times: int = 1,
        status: int = 429,
        retry_after: int = 1,
        error: str | None = None,
        *,
        drop_connection: bool = False,
    ) -> None:
        """Fail the next ``times`` calls to ``method``.

        429 answers ``ratelimited`` with ``Retry-After``; 5xx answers that status; 200 needs ``error`` and
        answers ``ok: false`` with it; ``drop_connection`` closes the socket without any HTTP answer.
        """
        if status == 200 and error is None and not drop_connection:
            raise ValueError("status=200 needs an error string to answer ok:false with")
        fault = _Fault(times, 0 if drop_connection else status, retry_after, error, drop=drop_connection)
        self._faults.setdefault(method, []).append(fault)

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` calls to ``method`` for ``seconds`` before handling them normally."""
        self._faults.setdefault(method, []).append(_Fault(remaining=times, delay=seconds))

    def set_down(self, down: bool = True, *, close_connection: bool = False) -> None:
        """Make every request fail with 503 (or a dropped connection) until ``set_down(False)``."""
        self._down = ("close" if close_connection else "503") if down else None

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    # ----------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Calls to ``method`` that reached the method (injected faults excluded)."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[RecordedCall], bool] | None = None,
    ) -> list[RecordedCall]:
        """Wait until at least ``count`` (non-faulted) calls to ``method`` match; return all matching."""

        def matching() -> list[RecordedCall]:
            return [c for c in self.calls_to(method) if predicate is None or predicate(c)]

        try:
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            seen = [c.method for c in self.calls]
            raise AssertionError(
                f"expected {count} matching call(s) to {method} within {timeout}s, got {len(matching())}; "
                f"calls so far: {seen}"
            ) from None
        return matching()

    def clear_calls(self) -> None:
        """Forget recorded calls (state such as messages is kept)."""
        self.calls.clear()
        self.faulted_calls.clear()

    # ----------------------------------------------------------------- HTTP plumbing

    async def _record(self, call: RecordedCall, *, faulted: bool = False) -> None:
        (self.faulted_calls if faulted else self.calls).append(call)
        async with self._cond:
            self._cond.notify_all()

    async def _fault_response(
        self, request: web.Request, method: str, args: Args, headers: dict[str, str]
    ) -> tuple[web.StreamResponse | None, float]:
        """Answer an injected failure (recorded in faulted_calls) or return the delay to apply."""
        fault = None if self._down else self._take_fault(method)
        if self._down == "close" or (fault is not None and fault.drop):
            label = "down" if self._down else "drop"
            await self._record(RecordedCall(method, args, headers, time.time(), 0, {}, label), faulted=True)
            # Drop the TCP connection without an HTTP answer, like a dead load balancer.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503), 0.0
        if self._down == "503" or (fault is not None and fault.status):
            status = fault.status if fault is not None else 503
            default_error = {429: "ratelimited", 503: "service_unavailable"}.get(status, "internal_error")
            body: Args = {"ok": False, "error": (fault.error if fault else None) or default_error}
            hdrs = {"Retry-After": str(fault.retry_after)} if fault is not None and status == 429 else {}
            label = str(status) if fault is not None else "down"
            await self._record(RecordedCall(method, args, headers, time.time(), status, body, label), faulted=True)
            return web.json_response(body, status=status, headers=hdrs), 0.0
        delay = fault.delay if fault is not None else 0.0
        if delay:
            # Wait on the stop event so a stopping fake never hangs on a held request.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
        return None, delay

    async def _decode_args(self, request: web.Request) -> Args:
        args: Args = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.body_exists:
            for key, value in (await request.post()).items():
                args[key] = value.file.read() if isinstance(value, web.FileField) else value
        for key in _JSON_ARGS:
            if isinstance(args.get(key), str) and args[key][:1] in "[{":
                args[key] = json.loads(args[key])
        return args

    def _auth_error(self, method: str, token: str | None) -> str | None:
        if not token:
            return "not_authed"
        wants_app = method == "apps.connections.open"
        if token.startswith("xapp-") != wants_app:
            return "not_allowed_token_type"
        expected = self.app_token if wants_app else self.bot_token
        if expected is not None and token != expected:
            return "invalid_auth"
        if not token.startswith(("xapp-", "xoxb-", "xoxp-")):
            return "invalid_auth"
        return None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await self._decode_args(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        faulted, delay = await self._fault_response(request, method, args, headers)
        if faulted is not None:
            return faulted
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        handler = self._handlers().get(method)
        try:
            if (err := self._auth_error(method, token)) is not None:
                raise SlackError(err)
            if handler is None:
                raise SlackError("unknown_method", req_method=method)
            missing = [a for a in REQUIRED_ARGS.get(method, ()) if args.get(a) in (None, "")]
            if missing:
                raise SlackError(
                    "invalid_arguments",
                    response_metadata={"messages": [f"[ERROR] missing required field: {m}" for m in missing]},
                )
            body = {"ok": True, **await handler(args)}
        except SlackError as e:
            body = {"ok": False, "error": e.error, **e.extra}
        await self._record(RecordedCall(method, args, headers, time.time(), 200, body, delay=delay))
        return web.json_response(body)

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        file_id = self._upload_tokens.get(request.match_info["token"])
        data = await request.read()
        args: Args = {"file_id": file_id, "length": len(data)}
        faulted, _ = await self._fault_response(request, "upload", args, headers)
        if faulted is not None:
            return faulted
        if file_id is None:
            await self._record(RecordedCall("upload", args, headers, time.time(), 404, {}))
            return web.Response(status=404, text="not found", content_type="text/plain")
        self.uploads[file_id].data = data
        await self._record(RecordedCall("upload", args, headers, time.time(), 200, {"ok": True}))
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        args = await self._decode_args(request)
        faulted, _ = await self._fault_response(request, "response_url", args, headers)
        if faulted is not None:
            return faulted
        target = self._response_urls.get(request.match_info["token"])
        if target is None or target.uses >= RESPONSE_URL_USES:
            body: Args = {"ok": False, "error": "expired_url" if target is None else "used_url"}
            await self._record(RecordedCall("response_url", args, headers, time.time(), 404, body))
            return web.json_response(body, status=404)
        target.uses += 1
        try:
            self._apply_response_url(target, args)
        except SlackError as e:
            body = {"ok": False, "error": e.error, **e.extra}
            await self._record(RecordedCall("response_url", args, headers, time.time(), 400, body))
            return web.json_response(body, status=400)
        await self._record(RecordedCall("response_url", args, headers, time.time(), 200, {"ok": True}))
        return web.Response(text="ok", content_type="text/plain")

    # ----------------------------------------------------------------- methods bound to this server

    def _handlers(self) -> dict[str, Handler]:
        return {
            **super()._handlers(),
            "files.getUploadURLExternal": self._files_get_upload_url,
            "apps.connections.open": self._apps_connections_open,
        }

    async def _files_get_upload_url(self, a: Args) -> Args:
        length = int(a["length"])
        if length <= 0:
            raise SlackError("missing_argument")
        file_id = f"F{next(self._seq):09d}"
        self.uploads[file_id] = UploadedFile(file_id, str(a["filename"]), length)
        token = uuid.uuid4().hex
        self._upload_tokens[token] = file_id
        return {"upload_url": f"{self.root_url}/upload/v1/{token}", "file_id": file_id}

    async def _apps_connections_open(self, a: Args) -> Args:
        if self._socket_mode is None:
            raise SlackError("socket_mode_not_attached")
        return {"url": self._socket_mode.ws_url}

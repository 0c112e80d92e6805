"""A fake Slack Web API: a real aiohttp server on 127.0.0.1, port 0, speaking Slack's wire format.

Point slack_sdk at it with ``AsyncWebClient(token="xoxb-test", base_url=fake.base_url)`` (or env
``SLACK_API_URL``). It keeps message/view/file state, records every call, can inject rate limits, server
errors, delays and outages, and lets tests await calls instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from aiohttp import web
from slack_sdk.models.blocks import Block

from tests.fakes.socket_mode import FakeSocketModeServer

Args = dict[str, Any]
# Arguments Slack accepts as JSON strings inside a form body; decoded before recording.
_JSON_ARGS = ("blocks", "attachments", "view", "files", "metadata")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("channel",),
    "chat.update": ("channel", "ts"),
    "chat.delete": ("channel", "ts"),
    "chat.postEphemeral": ("channel", "user"),
    "chat.getPermalink": ("channel", "message_ts"),
    "conversations.info": ("channel",),
    "conversations.history": ("channel",),
    "conversations.replies": ("channel", "ts"),
    "users.info": ("user",),
    "usergroups.users.list": ("usergroup",),
    "views.open": ("trigger_id", "view"),
    "views.update": ("view",),
    "views.publish": ("user_id", "view"),
    "files.getUploadURLExternal": ("filename", "length"),
    "files.completeUploadExternal": ("files",),
}
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
MESSAGE_TEXT_LIMIT = 40_000
RESPONSE_URL_USES = 5


class SlackError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


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
class Message:
    """A message as users currently see it (chat.update edits it in place)."""

    channel: str
    ts: str
    text: str
    user: str
    blocks: list[Args] = field(default_factory=list)
    attachments: list[Args] = field(default_factory=list)
    thread_ts: str | None = None
    files: list[Args] = field(default_factory=list)
    metadata: Args | None = None
    edits: list[Args] = field(default_factory=list)  # previous versions, oldest first

    def as_slack(self, bot_id: str = "B0BOT00001", app_id: str = "A0APP00001") -> Args:
        """The message object as Slack returns it in API responses and interaction payloads."""
        msg: Args = {"type": "message", "user": self.user, "bot_id": bot_id, "app_id": app_id}
        msg.update(text=self.text, ts=self.ts, blocks=self.blocks)
        optional = {"attachments": self.attachments, "thread_ts": self.thread_ts, "files": self.files}
        msg.update({k: v for k, v in optional.items() if v})
        if self.metadata:
            msg["metadata"] = self.metadata
        if self.edits:
            msg["edited"] = {"user": self.user, "ts": self.edits[-1]["edited_ts"]}
        return msg


@dataclass
class Ephemeral:
    """An ephemeral message shown only to ``user``."""

    channel: str
    user: str
    text: str
    blocks: list[Args]
    thread_ts: str | None
    message_ts: str


@dataclass
class UploadedFile:
    """A file going through the v2 upload flow."""

    id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    shared_to: list[str] = field(default_factory=list)
    completed: bool = False


@dataclass
class _Fault:
    remaining: int
    status: int = 0
    retry_after: int = 1
    error: str | None = None
    delay: float = 0.0
    drop: bool = False


@dataclass
class _ResponseUrl:
    channel: str | None
    message_ts: str | None
    user_id: str | None
    uses: int = 0


def _tz_defaults(tz: str) -> tuple[str, int]:
    now = datetime.now(ZoneInfo(tz))
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset else 0


class FakeSlackWebAPI:
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
        self.team_id, self.team_domain = team_id, team_domain
        self.bot_user_id, self.bot_id, self.app_id = bot_user_id, bot_id, app_id
        self.bot_token, self.app_token = bot_token, app_token
        self.auto_create, self.default_tz = auto_create, default_tz
        self.calls: list[RecordedCall] = []
        self.faulted_calls: list[RecordedCall] = []
        self.users: dict[str, Args] = {}
        self.channels: dict[str, Args] = {}
        self.usergroups: dict[str, Args] = {}
        self.views: dict[str, Args] = {}
        self.home_views: dict[str, Args] = {}
        self.uploads: dict[str, UploadedFile] = {}
        self.ephemerals: list[Ephemeral] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._ts_base = ts_base
        self._seq = itertools.count(1)
        self._faults: dict[str, list[_Fault]] = {}
        self._down: str | None = None
        self._upload_tokens: dict[str, str] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._socket_mode: FakeSocketModeServer | None = None
        self._cond = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.add_user(bot_user_id, name="release-bot", is_bot=True)

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

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

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str | None = None,
        tz_label: str | None = None,
        tz_offset: int | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        email: str | None = None,
    ) -> Args:
        """Define (or replace) a user; tz_label/tz_offset default to the zone's current name/offset."""
        zone = tz or self.default_tz
        label, offset = _tz_defaults(zone)
        name = name or user_id.lower()
        real = real_name or name.title()
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "real_name": real,
            "tz": zone,
            "tz_label": tz_label or label,
            "tz_offset": offset if tz_offset is None else tz_offset,
            "is_bot": is_bot,
            "is_admin": False,
            "is_owner": False,
            "is_app_user": False,
            "updated": self._ts_base,
            "profile": {
                "real_name": real,
                "display_name": name,
                "email": email or f"{name}@{self.team_domain}.example",
                "team": self.team_id,
            },
        }
        return self.users[user_id]

    def add_channel(
        self, channel_id: str, name: str | None = None, *, is_private: bool = False, is_member: bool = True
    ) -> Args:
        """Define a channel; ``is_member=False`` makes posting fail with ``not_in_channel``."""
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name or channel_id.lower(),
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": channel_id.startswith("D"),
            "is_private": is_private,
            "is_archived": False,
            "is_general": False,
            "is_member": is_member,
            "created": self._ts_base,
            "creator": self.bot_user_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
        return self.channels[channel_id]

    def set_usergroup(
        self, usergroup_id: str, user_ids: list[str], *, handle: str | None = None, name: str | None = None
    ) -> None:
        """Define user group ``S…`` with members ``[U…]`` (for usergroups.users.list / usergroups.list)."""
        handle = handle or usergroup_id.lower()
        self.usergroups[usergroup_id] = {
            "id": usergroup_id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "name": name or handle,
            "handle": handle,
            "description": "",
            "date_delete": 0,
            "user_count": len(user_ids),
            "users": list(user_ids),
        }

    def new_response_url(
        self, *, channel: str | None = None, message_ts: str | None = None, user_id: str | None = None
    ) -> str:
        """A ``response_url`` served by the fake; posts to it act on ``channel``/``message_ts`` like Slack."""
        token = uuid.uuid4().hex
        self._response_urls[token] = _ResponseUrl(channel, message_ts, user_id)
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

    def messages(self, channel: str) -> list[Message]:
        """Current messages in ``channel`` (a user id means the bot's DM with them), oldest first."""
        ch = self._dm_id(channel)
        return sorted((m for (c, _), m in self._messages.items() if c == ch), key=lambda m: float(m.ts))

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The parent message followed by its replies, as a user sees the thread."""
        return [m for m in self.messages(channel) if m.ts == thread_ts or m.thread_ts == thread_ts]

    def message(self, channel: str, ts: str) -> Message:
        """The message at ``ts`` in ``channel`` (KeyError if absent)."""
        return self._messages[(self._dm_id(channel), ts)]

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
            missing = [a for a in _REQUIRED.get(method, ()) if args.get(a) in (None, "")]
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

    def _apply_response_url(self, target: _ResponseUrl, args: Args) -> None:
        """Apply a response_url post the way Slack shows it: delete/replace the original, or post anew."""
        blocks = self._check_blocks(args.get("blocks"), MESSAGE_BLOCK_LIMIT, "invalid_blocks")
        if target.channel is None:
            return
        original = self._messages.get((target.channel, target.message_ts or ""))
        if args.get("delete_original") in (True, "true") and original is not None:
            del self._messages[(original.channel, original.ts)]
        elif args.get("replace_original") in (True, "true") and original is not None:
            self._edit(original, {"text": args.get("text", ""), "blocks": blocks})
        elif args.get("response_type") == "in_channel":
            self._post(target.channel, args)
        else:
            self.ephemerals.append(
                Ephemeral(
                    target.channel,
                    target.user_id or "",
                    args.get("text", ""),
                    blocks,
                    args.get("thread_ts"),
                    self._next_ts(),
                )
            )

    # ----------------------------------------------------------------- state helpers

    def _next_ts(self) -> str:
        micros = next(self._seq) * 100
        return f"{self._ts_base + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _dm_id(self, channel: str) -> str:
        return "D" + channel[1:] if channel[:1] in ("U", "W") else channel

    def _channel(self, channel: str) -> Args:
        if channel.startswith("#"):
            for ch in self.channels.values():
                if ch["name"] == channel[1:]:
                    return ch
            raise SlackError("channel_not_found")
        ch_id = self._dm_id(channel)
        if ch_id not in self.channels:
            if not self.auto_create:
                raise SlackError("channel_not_found")
            self.add_channel(ch_id)
        return self.channels[ch_id]

    def _user(self, user_id: str) -> Args:
        if user_id not in self.users:
            if not self.auto_create or user_id[:1] not in ("U", "W"):
                raise SlackError("user_not_found")
            self.add_user(user_id)
        return self.users[user_id]

    @staticmethod
    def _check_blocks(blocks: Any, limit: int, error: str) -> list[Args]:
        if blocks in (None, ""):
            return []
        if not isinstance(blocks, list):
            raise SlackError(error, errors=["blocks must be an array"])
        if len(blocks) > limit:
            raise SlackError(error, errors=[f"no more than {limit} items allowed [json-pointer:/blocks]"])
        problems = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, raw in enumerate(blocks):
                try:
                    parsed = Block.parse(raw) if isinstance(raw, dict) else None
                    if parsed is None:
                        raise ValueError(f"unsupported block {raw!r:.80}")
                    parsed.to_dict()  # runs slack_sdk's Block Kit length/shape validation
                except Exception as e:
                    problems.append(f"{e} [json-pointer:/blocks/{i}]")
        if problems:
            raise SlackError(error, errors=problems, response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
        return blocks

    def _post(self, channel: str, a: Args) -> Message:
        ch = self._channel(channel)
        if not ch["is_member"]:
            raise SlackError("not_in_channel")
        blocks = self._check_blocks(a.get("blocks"), MESSAGE_BLOCK_LIMIT, "invalid_blocks")
        text = a.get("text") or ""
        if not (text or blocks or a.get("attachments") or a.get("files")):
            raise SlackError("no_text")
        if len(text) > MESSAGE_TEXT_LIMIT:
            raise SlackError("msg_too_long")
        msg = Message(
            ch["id"],
            self._next_ts(),
            text,
            self.bot_user_id,
            blocks,
            a.get("attachments") or [],
            a.get("thread_ts") or None,
            a.get("files") or [],
            a.get("metadata"),
        )
        self._messages[(msg.channel, msg.ts)] = msg
        return msg

    def _edit(self, msg: Message, a: Args) -> None:
        msg.edits.append(
            {
                "text": msg.text,
                "blocks": msg.blocks,
                "attachments": msg.attachments,
                "edited_ts": self._next_ts(),
            }
        )
        # Slack keeps fields chat.update omits; an empty list clears them.
        if "blocks" in a:
            msg.blocks = self._check_blocks(a["blocks"], MESSAGE_BLOCK_LIMIT, "invalid_blocks")
        if "attachments" in a:
            msg.attachments = a["attachments"] or []
        if "text" in a:
            msg.text = a["text"] or ""
        if "metadata" in a:
            msg.metadata = a["metadata"]

    def _find(self, a: Args, ts_key: str = "ts") -> Message:
        msg = self._messages.get((self._dm_id(str(a["channel"])), str(a[ts_key])))
        if msg is None:
            raise SlackError("message_not_found")
        return msg

    def _view(self, view: Any, view_id: str | None = None, external_id: str | None = None) -> Args:
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] invalid view"]})
        limit_error = "invalid_arguments"
        blocks = self._check_blocks(view.get("blocks"), VIEW_BLOCK_LIMIT, limit_error)
        vid = view_id or f"V{next(self._seq):09d}"
        return {
            "id": vid,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{self._ts_base}.{uuid.uuid4().hex[:8]}",
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": False,
            "notify_on_close": bool(view.get("notify_on_close")),
            "previous_view_id": None,
            "root_view_id": vid,
            "app_id": self.app_id,
            "external_id": external_id or view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    # ----------------------------------------------------------------- Web API methods

    def _handlers(self) -> dict[str, Callable[[Args], Awaitable[Args]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }

    async def _auth_test(self, a: Args) -> Args:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain.title(),
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _chat_post_message(self, a: Args) -> Args:
        msg = self._post(str(a["channel"]), a)
        return {"channel": msg.channel, "ts": msg.ts, "message": msg.as_slack(self.bot_id, self.app_id)}

    async def _chat_update(self, a: Args) -> Args:
        msg = self._find(a)
        self._edit(msg, a)
        return {
            "channel": msg.channel,
            "ts": msg.ts,
            "text": msg.text,
            "message": msg.as_slack(self.bot_id, self.app_id),
        }

    async def _chat_delete(self, a: Args) -> Args:
        msg = self._find(a)
        del self._messages[(msg.channel, msg.ts)]
        return {"channel": msg.channel, "ts": msg.ts}

    async def _chat_post_ephemeral(self, a: Args) -> Args:
        ch = self._channel(str(a["channel"]))
        self._user(str(a["user"]))
        blocks = self._check_blocks(a.get("blocks"), MESSAGE_BLOCK_LIMIT, "invalid_blocks")
        if not (a.get("text") or blocks or a.get("attachments")):
            raise SlackError("no_text")
        eph = Ephemeral(ch["id"], str(a["user"]), a.get("text") or "", blocks, a.get("thread_ts"), self._next_ts())
        self.ephemerals.append(eph)
        return {"message_ts": eph.message_ts}

    async def _chat_get_permalink(self, a: Args) -> Args:
        msg = self._find(a, "message_ts")
        link = f"https://{self.team_domain}.slack.com/archives/{msg.channel}/p{msg.ts.replace('.', '')}"
        if msg.thread_ts and msg.thread_ts != msg.ts:
            link += f"?thread_ts={msg.thread_ts}&cid={msg.channel}"
        return {"channel": msg.channel, "permalink": link}

    async def _conversations_info(self, a: Args) -> Args:
        return {"channel": self._channel(str(a["channel"]))}

    async def _conversations_history(self, a: Args) -> Args:
        """Top-level messages, newest first (replies live in their thread, as in Slack)."""
        ch = self._channel(str(a["channel"]))
        if not ch["is_member"]:
            raise SlackError("not_in_channel")
        top = [m for m in self.messages(ch["id"]) if m.thread_ts in (None, m.ts)]
        return self._page(list(reversed(top)), a, default_limit=100)

    async def _conversations_replies(self, a: Args) -> Args:
        """The thread of ``ts``: its parent first, then the replies, oldest first."""
        msg = self._messages.get((self._dm_id(str(a["channel"])), str(a["ts"])))
        if msg is None:
            raise SlackError("thread_not_found")
        return self._page(self.thread(msg.channel, msg.thread_ts or msg.ts), a, default_limit=1000)

    def _page(self, messages: list[Message], a: Args, *, default_limit: int) -> Args:
        """Slack's oldest/latest/inclusive/limit/cursor paging; metadata only with include_all_metadata."""
        inclusive = str(a.get("inclusive", "")).lower() in ("1", "true")
        oldest, latest = float(a.get("oldest") or 0), float(a.get("latest") or "inf")

        selected = [
            m for m in messages if (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        start = int(a.get("cursor") or 0)
        limit = int(a.get("limit") or default_limit)
        page = selected[start : start + limit]
        with_metadata = str(a.get("include_all_metadata", "")).lower() in ("1", "true")
        out = []
        for m in page:
            shown = m.as_slack(self.bot_id, self.app_id)
            if not with_metadata:
                shown.pop("metadata", None)
            out.append(shown)
        more = start + limit < len(selected)
        return {
            "messages": out,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _conversations_open(self, a: Args) -> Args:
        users = str(a.get("users", "")).split(",")
        if len(users) != 1 or not users[0]:
            raise SlackError("invalid_arguments")
        self._user(users[0])
        return {"channel": self._channel(users[0])}

    async def _users_info(self, a: Args) -> Args:
        return {"user": self._user(str(a["user"]))}

    async def _usergroups_list(self, a: Args) -> Args:
        include_users = str(a.get("include_users", "")).lower() in ("1", "true")
        groups = [
            g if include_users else {k: v for k, v in g.items() if k != "users"} for g in self.usergroups.values()
        ]
        return {"usergroups": groups}

    async def _usergroups_users_list(self, a: Args) -> Args:
        group = self.usergroups.get(str(a["usergroup"]))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    async def _views_open(self, a: Args) -> Args:
        view = self._view(a["view"])
        self.views[view["id"]] = view
        return {"view": view}

    async def _views_update(self, a: Args) -> Args:
        current = self.views.get(str(a.get("view_id", "")))
        if current is None and a.get("external_id"):
            current = next((v for v in self.views.values() if v["external_id"] == a["external_id"]), None)
        if current is None:
            raise SlackError("not_found")
        if a.get("hash") and a["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._view(a["view"], current["id"], current["external_id"])
        self.views[view["id"]] = view
        return {"view": view}

    async def _views_publish(self, a: Args) -> Args:
        user_id = str(a["user_id"])
        self._user(user_id)
        old = self.home_views.get(user_id)
        view = self._view(a["view"], old["id"] if old else None)
        self.home_views[user_id] = view
        return {"view": view}

    async def _files_get_upload_url(self, a: Args) -> Args:
        length = int(a["length"])
        if length <= 0:
            raise SlackError("missing_argument")
        file_id = f"F{next(self._seq):09d}"
        self.uploads[file_id] = UploadedFile(file_id, str(a["filename"]), length)
        token = uuid.uuid4().hex
        self._upload_tokens[token] = file_id
        return {"upload_url": f"{self.root_url}/upload/v1/{token}", "file_id": file_id}

    async def _files_complete_upload(self, a: Args) -> Args:
        entries = a["files"] if isinstance(a["files"], list) else []
        files = [self.uploads.get(str(e.get("id"))) for e in entries]
        if not entries or any(f is None or f.data is None for f in files):
            raise SlackError("file_not_found")
        channels = [c for c in [a.get("channel_id"), *str(a.get("channels") or "").split(",")] if c]
        out = []
        for entry, f in zip(entries, files, strict=True):
            assert f is not None
            f.title, f.completed = entry.get("title") or f.filename, True
            f.shared_to = [self._channel(str(c))["id"] for c in channels]
            out.append(
                {
                    "id": f.id,
                    "name": f.filename,
                    "title": f.title,
                    "size": len(f.data or b""),
                    "user": self.bot_user_id,
                    "created": self._ts_base,
                    "channels": f.shared_to,
                    "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{f.id}",
                    "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{f.id}/{f.filename}",
                }
            )
        # Sharing shows up in the channel/thread as a bot message carrying the files.
        for ch in channels:
            self._post(
                str(ch),
                {"text": a.get("initial_comment") or "", "thread_ts": a.get("thread_ts"), "files": out},
            )
        return {"files": out}

    async def _apps_connections_open(self, a: Args) -> Args:
        if self._socket_mode is None:
            raise SlackError("socket_mode_not_attached")
        return {"url": self._socket_mode.ws_url}

"""The workspace state behind the fake Slack Web API: users, channels, user groups, messages, views, files.

``SlackState`` keeps what Slack would show and applies Slack's rules when it changes (block limits, Block Kit
validation, ``not_in_channel``, edits kept as history); a ``SlackError`` raised here becomes an ``ok: false``
answer. The Web API methods are in slack_methods.py; the HTTP server, call recording and fault injection in
slack_api.py.
"""

from __future__ import annotations

import itertools
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block

Args = dict[str, Any]
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
MESSAGE_TEXT_LIMIT = 40_000


class SlackError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


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


def _tz_defaults(tz: str) -> tuple[str, int]:
    now = datetime.now(ZoneInfo(tz))
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset else 0


class SlackState:
    """Workspace state; with ``auto_create`` unknown users/channels are synthesised on first use."""

    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        auto_create: bool,
        default_tz: str,
        ts_base: int,
    ) -> None:
        self.team_id, self.team_domain = team_id, team_domain
        self.bot_user_id, self.bot_id, self.app_id = bot_user_id, bot_id, app_id
        self.auto_create, self.default_tz = auto_create, default_tz
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
        self.add_user(bot_user_id, name="release-bot", is_bot=True)

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

    # ----------------------------------------------------------------- inspection

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

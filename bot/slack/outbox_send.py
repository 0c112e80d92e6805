"""Sending one outbox row to Slack, and sorting a failed attempt by what it says about whether Slack acted.

``RowSender.send`` is one attempt at one row, as the worker (bot/slack/outbox.py) took it: the row with the
earlier row it replies under or edits (``Taken``), read in one round trip, and in the normal case with its
attempt begun in that same round trip (``ready``). It resolves the ts of the parent (thread replies) or of the
message being edited from that earlier row, marks the row "in doubt" before a request that may post leaves,
and, for a post or upload already in doubt, first looks for it in the channel (or thread) by the metadata
each post carries, so that a retry after a timeout never posts twice. ``classify`` turns whatever the
client raised into a ``Failure`` the worker schedules its retry from.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.notifier import SlackNotifier
from bot.store import AsyncStore
from bot.store.outbox import OutboxKind, OutboxRow

log = logging.getLogger("release_bot.outbox")
EVENT_TYPE = "release_bot_outbox"
# ok:false answers that mean "not done, try again later"; any other ok:false is final (bad channel, blocks…).
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# Kinds whose attempt is marked in doubt before it leaves: it may show a message. Edits and views are idempotent.
MAY_SHOW: frozenset[OutboxKind] = frozenset({"post", "upload", "ephemeral"})


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed: ``refused`` (not done), ``server`` (5xx), ``lost`` (no answer), ``fatal``."""

    kind: Literal["refused", "server", "lost", "fatal"]
    error: str
    retry_after: float = 0.0


def _answer(exc: SlackApiError) -> tuple[int, str | None, Mapping[str, str]]:
    """The HTTP status, Slack's ``error`` (if any) and the headers of the answer a SlackApiError carries.

    slack_sdk's async client raises it with the AsyncSlackResponse of a JSON answer (ok:false, or an HTTP
    error with a JSON body), or with the bare aiohttp response when the body was not JSON (a gateway's
    HTML 502, say), which has a status and headers but no data.
    """
    response = exc.response
    if isinstance(response, aiohttp.ClientResponse):
        return response.status, None, response.headers
    answer: AsyncSlackResponse = response
    data = answer.data
    error = data.get("error") if isinstance(data, dict) else None
    return answer.status_code, str(error) if error else None, answer.headers


def classify(exc: BaseException) -> Failure:
    """Sort a failed Web API call by what it says about whether Slack acted."""
    if isinstance(exc, SlackApiError):
        status, slack_error, headers = _answer(exc)
        error = slack_error or f"HTTP {status}"
        if status == 429:
            after = headers.get("Retry-After") or headers.get("retry-after") or "1"
            return Failure("refused", error, float(after) if str(after).replace(".", "", 1).isdigit() else 1.0)
        if status >= 500:
            return Failure("server", error)
        if status == 200 and error in TRANSIENT_ERRORS:
            return Failure("refused", error)
        return Failure("fatal", error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure("refused", f"cannot connect: {exc}")  # nothing was sent
    if isinstance(exc, TimeoutError):
        return Failure("lost", "timed out")
    return Failure("lost", f"{type(exc).__name__}: {exc}")


class Undeliverable(Exception):
    """The row can never be sent (e.g. the message it edits was never posted)."""


class LookupFailed(Exception):
    """Looking for a post in doubt failed: it stays in doubt whatever the failure was."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Taken:
    """A lane's next row as the worker took it, in one round trip with what its attempt needs from the store."""

    row: OutboxRow  # as it was before its attempt began (``attempts`` counts the earlier ones)
    ref: OutboxRow | None  # the row it replies under (``thread_ref``) or edits (``message_ref``), if any
    begun: bool  # its attempt was counted, and marked in doubt if it may show a message, in that round trip


def ref_id(row: OutboxRow) -> int | None:
    """The earlier row ``row`` depends on: the parent of a reply, or the message an edit changes."""
    return row.message_ref if row.kind == "update" else row.thread_ref


def ready(row: OutboxRow, ref: OutboxRow | None) -> bool:
    """Whether ``send`` would begin the attempt at ``row`` before anything else, so the worker may begin it
    where it takes the row: the row is not in doubt (a post in doubt is looked for first, an ephemeral one is
    not re-sent) and the row it depends on, if any, is posted."""
    return not row.in_doubt and (ref_id(row) is None or _posted_ts(ref) is not None)


@dataclass(frozen=True)
class RowSender:
    """Sends outbox rows through ``slack``, reading from ``db`` only off the normal path (``Taken`` holds the rest)."""

    slack: SlackNotifier
    db: AsyncStore
    lookup_pages: int  # pages of 200 messages searched for a post in doubt

    async def send(self, taken: Taken) -> tuple[str | None, str | None]:
        """Send the row; (the message ts if any, a note for the record). Raises what the client raises,
        ``Undeliverable`` when it can never be sent, ``LookupFailed`` when a post in doubt cannot be looked for."""
        row = taken.row
        p = row.payload
        channel = row.channel or ""
        if row.kind == "update":
            ts = _target_ts(row, taken.ref)
            await self._begin(taken)
            await self.slack.update(channel, ts, p["text"], p["blocks"])
            return ts, None
        if row.kind == "publish_home":
            await self._begin(taken)
            await self.slack.publish_home(p["user"], p["view"])
            return None, None
        if row.kind == "ephemeral":
            if row.in_doubt:
                return None, "not re-sent: an earlier attempt may have been shown, and it cannot be looked up"
            await self._begin(taken)
            await self.slack.ephemeral(channel, p["user"], p["text"], p["blocks"])
            return None, None
        thread_ts = _thread_ts(row, taken.ref)
        if row.in_doubt:
            try:
                found = await self._find(row, thread_ts)
            except Exception as exc:
                if classify(exc).kind != "fatal":
                    raise LookupFailed(exc) from exc
                # Refused outright (e.g. history scopes not granted yet): losing it would be worse.
                log.warning("outbox: cannot look for #%s (%s); re-sending, a duplicate is possible", row.id, exc)
                found = None
            if found is not None:
                return found, "found already posted after an attempt in doubt"
        await self._begin(taken)
        if row.kind == "upload":
            content = base64.b64decode(p["content"])
            await self.slack.upload(channel, thread_ts, p["filename"], content, p["title"])
            return None, None
        response = await self.slack.client.chat_postMessage(
            channel=channel,
            text=p["text"],
            blocks=p["blocks"],
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": EVENT_TYPE, "event_payload": {"outbox_id": row.id, "created": _created(row)}},
        )
        return str(response["ts"]), None

    async def _begin(self, taken: Taken) -> None:
        """Count the attempt and mark it (in doubt if it may show a message) before the request leaves,
        unless the worker did so where it took the row."""
        if not taken.begun:
            await self.db.run(self.db.sync.outbox_begin_attempt, taken.row.id, in_doubt=taken.row.kind in MAY_SHOW)

    async def _find(self, row: OutboxRow, thread_ts: str | None) -> str | None:
        """The ts of this row's message if an earlier attempt did post it (after the lane's last post)."""
        oldest = await self.db.run(self.db.sync.outbox_last_sent_ts, row.lane, row.id)
        channel = row.channel or ""
        cursor: str | None = None
        for _ in range(self.lookup_pages):
            args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
            if oldest is not None:
                args["oldest"] = oldest
            if cursor:
                args["cursor"] = cursor
            if thread_ts is not None:
                response = await self.slack.client.conversations_replies(ts=thread_ts, **args)
            else:
                response = await self.slack.client.conversations_history(**args)
            for message in response.get("messages") or []:
                if _is_ours(message, row):
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None


def _posted_ts(ref: OutboxRow | None) -> str | None:
    """The ts of a row Slack posted, else None."""
    return ref.sent_ts if ref is not None and ref.state == "sent" and ref.sent_ts else None


def _thread_ts(row: OutboxRow, parent: OutboxRow | None) -> str | None:
    """The parent's ts; a parent Slack never got is left out (the reply is posted, unthreaded)."""
    if row.thread_ref is None:
        return cast(str | None, row.payload.get("thread_ts"))
    if (ts := _posted_ts(parent)) is not None:
        return ts
    if parent is not None and parent.state == "pending":
        raise RuntimeError(f"parent #{parent.id} is still pending")  # retried: cannot happen in lane order
    log.warning("outbox: parent of #%s was never posted; posting it outside the thread", row.id)
    return None


def _target_ts(row: OutboxRow, target: OutboxRow | None) -> str:
    """The ts of the message an edit changes."""
    if row.message_ref is None:
        return str(row.payload["ts"])
    if (ts := _posted_ts(target)) is not None:
        return ts
    if target is not None and target.state == "pending":
        raise RuntimeError(f"message #{target.id} is still pending")
    raise Undeliverable(f"the message it edits (#{row.message_ref}) was never posted")


def _created(row: OutboxRow) -> str:
    return row.created_at.isoformat(timespec="microseconds")


def _is_ours(message: dict[str, Any], row: OutboxRow) -> bool:
    """Whether ``message`` is what ``row`` posts: metadata for posts, file name and title for uploads."""
    if row.kind == "upload":
        files = message.get("files") or []
        return any(f.get("name") == row.payload["filename"] and f.get("title") == row.payload["title"] for f in files)
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return bool(
        metadata.get("event_type") == EVENT_TYPE
        and str(payload.get("outbox_id")) == str(row.id)
        and payload.get("created") == _created(row)
    )

"""Sending one outbox row to Slack, and sorting a failed attempt by what it says about whether Slack acted.

``RowSender.send`` is one attempt at one row: it resolves the ts of the parent (thread replies) or of the
message being edited from earlier outbox rows, marks the row "in doubt" before a request that may post leaves,
and, for a post or upload already in doubt, first looks for it in the channel (or thread) by the metadata
each post carries, so that a retry after a timeout never posts twice. ``classify`` turns whatever the
client raised into a ``Failure`` the worker (bot/slack/outbox.py) schedules its retry from.
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
from bot.store.outbox import OutboxRow

log = logging.getLogger("release_bot.outbox")
EVENT_TYPE = "release_bot_outbox"
# ok:false answers that mean "not done, try again later"; any other ok:false is final (bad channel, blocks…).
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


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
class RowSender:
    """Sends outbox rows through ``slack``, reading the rows they refer to from ``db``."""

    slack: SlackNotifier
    db: AsyncStore
    lookup_pages: int  # pages of 200 messages searched for a post in doubt

    async def send(self, row: OutboxRow) -> tuple[str | None, str | None]:
        """Send ``row``; (the message ts if any, a note for the record). Raises what the client raises,
        ``Undeliverable`` when it can never be sent, ``LookupFailed`` when a post in doubt cannot be looked for."""
        p = row.payload
        channel = row.channel or ""
        if row.kind == "update":
            ts = await self._target_ts(row)
            await self.db.run(self.db.sync.outbox_begin_attempt, row.id, in_doubt=False)
            await self.slack.update(channel, ts, p["text"], p["blocks"])
            return ts, None
        if row.kind == "publish_home":
            await self.db.run(self.db.sync.outbox_begin_attempt, row.id, in_doubt=False)
            await self.slack.publish_home(p["user"], p["view"])
            return None, None
        if row.kind == "ephemeral":
            if row.in_doubt:
                return None, "not re-sent: an earlier attempt may have been shown, and it cannot be looked up"
            await self.db.run(self.db.sync.outbox_begin_attempt, row.id, in_doubt=True)
            await self.slack.ephemeral(channel, p["user"], p["text"], p["blocks"])
            return None, None
        thread_ts = await self._thread_ts(row)
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
        await self.db.run(self.db.sync.outbox_begin_attempt, row.id, in_doubt=True)
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

    async def _thread_ts(self, row: OutboxRow) -> str | None:
        """The parent's ts; a parent Slack never got is left out (the reply is posted, unthreaded)."""
        if row.thread_ref is None:
            return cast(str | None, row.payload.get("thread_ts"))
        parent = await self.db.run(self.db.sync.outbox_row, row.thread_ref)
        if parent is not None and parent.state == "sent" and parent.sent_ts:
            return parent.sent_ts
        if parent is not None and parent.state == "pending":
            raise RuntimeError(f"parent #{parent.id} is still pending")  # retried: cannot happen in lane order
        log.warning("outbox: parent of #%s was never posted; posting it outside the thread", row.id)
        return None

    async def _target_ts(self, row: OutboxRow) -> str:
        if row.message_ref is None:
            return str(row.payload["ts"])
        target = await self.db.run(self.db.sync.outbox_row, row.message_ref)
        if target is not None and target.state == "sent" and target.sent_ts:
            return target.sent_ts
        if target is not None and target.state == "pending":
            raise RuntimeError(f"message #{target.id} is still pending")
        raise Undeliverable(f"the message it edits (#{row.message_ref}) was never posted")

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

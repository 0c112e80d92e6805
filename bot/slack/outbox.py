"""Slack writes through an outbox: none lost while Slack is unreachable, none posted twice, in order.

``OutboxNotifier`` is the engine's Notifier in the Slack modes. Every write becomes a row in the store's
outbox first; a worker per lane (a channel, a user's Home, a user's ephemerals) sends the lane's rows in
id order, so one channel's trouble never holds up another. The caller waits for the row's first attempt
only: when Slack takes it, the caller gets the real ts as before (and an outright refusal, ok:false, is
raised to it as before); when the attempt fails (429, 5xx, timeout, outage), or the lane is already
failing, the caller gets a placeholder ts ``outbox:<id>`` and the release carries on. Later rows that name
the placeholder (thread replies, updates of that message) are resolved when they are sent, and a
placeholder stored on a release or an approval is swapped for the real ts once the message is posted.

Retries back off exponentially (capped) and honour Retry-After; a row is given up only after
``give_up_after`` (logged as an error). The client has no retry handlers of its own: the outbox owns
retrying, and slack_sdk's connection-error handler would re-send a post that may already have landed.

Posting twice is what a blind retry risks after a timeout or a dropped connection (and, through a
gateway, after a 5xx): Slack may have posted. Each post therefore carries message metadata naming its
outbox row, the row is marked "in doubt" before the request leaves (so a crash mid-request is remembered
too), and before a doubtful post is sent again the worker looks for it in the channel (or thread) and,
if found, records its ts instead of posting again. Updates and Home views are idempotent and simply
re-sent; an ephemeral message cannot be looked up, so one in doubt is not re-sent (at most once).

A delivered row costs the store two round trips: one takes the lane's next row and begins its attempt (with
the row it replies under or edits), one records it sent and takes the next row; a lane that runs dry after a
placeholder was handed out for one of its posts swaps placeholders once more.

This module queues rows and runs the lanes; sending one row and classifying a failure is in outbox_send.py.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from slack_sdk.web.async_client import AsyncWebClient

from bot.lanes import Sleep, exponential_backoff, pause
from bot.observability import OUTBOX_GIVEN_UP
from bot.ports import Clock
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox_send import (
    EVENT_TYPE,
    MAY_SHOW,
    Failure,
    LookupFailed,
    RowSender,
    Taken,
    Undeliverable,
    classify,
    ready,
    ref_id,
)
from bot.store import AsyncStore, Store
from bot.store.outbox import OutboxKind, OutboxRow, placeholder, placeholder_id

__all__ = ["EVENT_TYPE", "Failure", "OutboxNotifier", "OutboxPolicy", "classify", "outbox_web_client"]

log = logging.getLogger("release_bot.outbox")


@dataclass(frozen=True)
class OutboxPolicy:
    """Timing of delivery; tests shorten it (and inject ``sleep``) so no test waits in real time."""

    timeout: float = 10.0  # seconds per Web API request
    backoff_base: float = 1.0  # first retry after this, doubling per attempt…
    backoff_cap: float = 30.0  # …up to this
    doubt_wait: float = 10.0  # before looking for a post that may have landed: let a late request finish
    give_up_after: timedelta = timedelta(hours=24)
    ephemeral_give_up_after: timedelta = timedelta(minutes=10)  # a late ephemeral answer only confuses
    hand_back_after: float = 30.0  # the longest a caller waits for delivery before getting a placeholder
    keep_finished_for: timedelta = timedelta(days=7)
    lookup_pages: int = 5  # pages of 200 messages searched for a post in doubt
    sleep: Sleep = asyncio.sleep

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: base, 2·base, 4·base, … capped."""
        return exponential_backoff(attempts, self.backoff_base, self.backoff_cap)


def outbox_web_client(token: str, base_url: str, timeout: float) -> AsyncWebClient:
    """A Web API client without retry handlers (the outbox retries) and with ``timeout`` per request."""
    url = base_url if base_url.endswith("/") else base_url + "/"
    # aiohttp takes fractional seconds; slack_sdk merely annotates the parameter as int.
    return AsyncWebClient(token=token, base_url=url, timeout=cast(int, timeout), retry_handlers=[])


@dataclass
class _Lane:
    more: asyncio.Event = field(default_factory=asyncio.Event)  # rows were queued since the last read
    task: asyncio.Task[None] | None = None
    failing: bool = False  # the last attempt failed: callers get placeholders without waiting
    handed_out: bool = False  # a placeholder for one of its posts was handed out since they were last swapped
    first_pass: asyncio.Event = field(default_factory=asyncio.Event)  # drained, or an attempt failed


class OutboxNotifier:
    """The Notifier for Slack: writes go through the store's outbox and a worker per lane delivers them."""

    def __init__(
        self, slack: SlackNotifier, db: AsyncStore, *, clock: Clock, policy: OutboxPolicy | None = None
    ) -> None:
        self.slack = slack
        self.client = slack.client
        self.db = db  # the rows live in the store: the bootstrap builds it first
        self.clock = clock
        self.policy = policy or OutboxPolicy()
        self._running = False
        self._lanes: dict[str, _Lane] = {}
        self._waiters: dict[int, tuple[str, asyncio.Future[str | None]]] = {}
        self._kick = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------------
    def _sender(self) -> RowSender:
        """One attempt at a row goes through bot/slack/outbox_send.py."""
        return RowSender(self.slack, self.db, self.policy.lookup_pages)

    async def start(self) -> None:
        """Resume rows left pending by an outage or a restart, waiting (bounded) for a first attempt of each
        lane: when Slack answers, the messages show the truth before the bot serves anyone."""
        self._running = True
        await self.db.run(self.db.sync.outbox_resolve_placeholders)
        await self.db.run(self.db.sync.outbox_prune, self.clock.now() - self.policy.keep_finished_for)
        for lane in await self.db.run(self.db.sync.outbox_lanes):
            self._poke(lane)
        passes = [asyncio.ensure_future(state.first_pass.wait()) for state in self._lanes.values()]
        if passes:
            _, late = await asyncio.wait(passes, timeout=self.policy.hand_back_after)
            for task in late:
                task.cancel()
            await asyncio.gather(*passes, return_exceptions=True)

    async def stop(self) -> None:
        """Stop the workers; undelivered rows stay pending in the store for the next start."""
        self._running = False
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        for row_id in list(self._waiters):
            self._settle(row_id, None)

    def wake(self) -> None:
        """Retry now: end every backoff wait (e.g. once Slack is known to answer again)."""
        self._kick.set()
        self._kick = asyncio.Event()

    async def drained(self) -> None:
        """Wait until every lane has delivered (or given up on) all its rows."""
        while self._lanes:
            await asyncio.gather(*[lane.task for lane in self._lanes.values() if lane.task], return_exceptions=True)

    # --- the Notifier ------------------------------------------------------------------------------
    async def post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None) -> str:
        """Post a message; its ts once Slack posted it, else a placeholder the outbox resolves later."""
        thread_ref, thread_ts = await self._resolve(thread_ts)
        payload = {"text": text, "blocks": blocks, "thread_ts": thread_ts}
        row_id, ts = await self._submit(channel, channel, "post", payload, thread_ref=thread_ref)
        return ts or await self._hand_out(channel, row_id)

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Edit a message (placeholder ts allowed); a newer pending edit of it replaces an older one."""
        message_ref, real_ts = await self._resolve(ts)
        key = f"update:{channel}:{real_ts or placeholder(message_ref or 0)}"
        payload = {"ts": real_ts, "text": text, "blocks": blocks}
        await self._submit(channel, channel, "update", payload, message_ref=message_ref, coalesce_key=key)

    async def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """A message only ``user`` sees."""
        payload = {"user": user, "text": text, "blocks": blocks}
        await self._submit(f"ephemeral:{channel}:{user}", channel, "ephemeral", payload)

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        """Publish ``user``'s App Home; only the newest pending view of a user is sent."""
        lane = f"home:{user}"
        await self._submit(lane, None, "publish_home", {"user": user, "view": view}, coalesce_key=lane)

    async def upload(self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str) -> None:
        """Upload a file into a channel or thread (placeholder thread ts allowed)."""
        thread_ref, thread_ts = await self._resolve(thread_ts)
        payload = {
            "thread_ts": thread_ts,
            "filename": filename,
            "title": title,
            "content": base64.b64encode(content).decode("ascii"),
        }
        await self._submit(channel, channel, "upload", payload, thread_ref=thread_ref)

    async def permalink(self, channel: str, ts: str) -> str:
        """A link to a message; LookupError while it is still waiting in the outbox."""
        _, real = await self._resolve(ts)
        if real is None:
            raise LookupError(f"message {ts} is not posted yet")
        return await self.slack.permalink(channel, real)

    # --- queueing ----------------------------------------------------------------------------------
    async def _resolve(self, ts: str | None) -> tuple[int | None, str | None]:
        """(outbox row, None) for a placeholder still pending, else (None, the real ts)."""
        row_id = placeholder_id(ts)
        if row_id is None:
            return None, ts
        row = await self.db.run(self.db.sync.outbox_row, row_id)
        if row is not None and row.state == "sent" and row.sent_ts:
            return None, row.sent_ts
        return row_id, None

    async def _submit(
        self,
        lane: str,
        channel: str | None,
        kind: OutboxKind,
        payload: dict[str, Any],
        *,
        thread_ref: int | None = None,
        message_ref: int | None = None,
        coalesce_key: str | None = None,
    ) -> tuple[int, str | None]:
        """Queue a row and wait for its delivery unless the lane is failing; (row id, ts if delivered)."""
        row_id, superseded = await self.db.run(
            self.db.sync.outbox_enqueue,
            lane=lane,
            channel=channel,
            kind=kind,
            payload=payload,
            now=self.clock.now(),
            thread_ref=thread_ref,
            message_ref=message_ref,
            coalesce_key=coalesce_key,
        )
        for old in superseded:
            self._settle(old, None)
        state = self._lanes.get(lane)
        if not self._running or (state is not None and state.failing):
            self._poke(lane)
            return row_id, None
        # Registered before the worker can read the row: no await between the insert and this line.
        waiter: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiters[row_id] = (lane, waiter)
        self._poke(lane)
        try:
            async with asyncio.timeout(self.policy.hand_back_after):
                return row_id, await asyncio.shield(waiter)
        except TimeoutError:
            return row_id, None
        finally:
            self._waiters.pop(row_id, None)

    async def _hand_out(self, lane: str, row_id: int) -> str:
        """The placeholder for a post not delivered yet (its real ts if it was delivered meanwhile)."""
        state = self._lanes.get(lane)
        if state is not None:
            # Noted before the row is: the caller stores the placeholder only after this returns, maybe just
            # after the post went out, so the lane swaps placeholders again once it has run dry.
            state.handed_out = True
        return await self.db.run(self.db.sync.outbox_hand_out, row_id) or placeholder(row_id)

    def _settle(self, row_id: int, ts: str | None, error: BaseException | None = None) -> None:
        """Answer the caller waiting for ``row_id``: its ts, None (not yet), or Slack's refusal."""
        entry = self._waiters.pop(row_id, None)
        if entry is None or entry[1].done():
            return
        if error is not None:
            entry[1].set_exception(error)
        else:
            entry[1].set_result(ts)

    def _poke(self, lane: str) -> None:
        state = self._lanes.get(lane)
        if state is not None:
            state.more.set()
            return
        if not self._running:
            return
        state = _Lane()
        state.more.set()
        self._lanes[lane] = state
        state.task = asyncio.get_running_loop().create_task(self._run_lane(lane, state), name=f"outbox:{lane}")

    # --- the worker --------------------------------------------------------------------------------
    async def _run_lane(self, lane: str, state: _Lane) -> None:
        try:
            taken = await self._take(lane, state)
            while True:
                if taken is not None:
                    taken = await self._deliver(taken, state)
                elif state.handed_out:  # a placeholder stored just after its post went out is swapped here
                    state.handed_out = False
                    taken = await self._take(lane, state, first=lambda store: store.outbox_resolve_placeholders())
                elif state.more.is_set():
                    taken = await self._take(lane, state)
                else:
                    break  # no await since the empty read: a later _poke starts a new worker
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox worker for %s failed; its rows stay pending until the next start", lane)
        finally:
            state.first_pass.set()
            if self._lanes.get(lane) is state:
                del self._lanes[lane]

    async def _take(self, lane: str, state: _Lane, *, first: Callable[[Store], object] | None = None) -> Taken | None:
        """The lane's next row, in one round trip and one transaction after ``first`` (recording how the last
        row went). Its attempt is begun in the same transaction when ``send`` would begin it before anything
        else and it is not to be given up; None when the lane has nothing pending."""
        state.more.clear()  # a row queued from here on is either read below or sets it again
        now = self.clock.now()

        def take(store: Store) -> Taken | None:
            if first is not None:
                first(store)
            row = store.outbox_next(lane)
            if row is None:
                return None
            depends_on = ref_id(row)
            ref = None if depends_on is None else store.outbox_row(depends_on)
            begin = ready(row, ref) and self._overdue(row, now) is None
            if begin:
                store.outbox_begin_attempt(row.id, in_doubt=row.kind in MAY_SHOW)
            return Taken(row, ref, begun=begin)

        return await self.db.unit(take)

    def _overdue(self, row: OutboxRow, now: datetime) -> timedelta | None:
        """How long ``row`` may stay undelivered, if it has been undelivered longer than that."""
        limit = self.policy.ephemeral_give_up_after if row.kind == "ephemeral" else self.policy.give_up_after
        return limit if now - row.created_at > limit else None

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` (policy.sleep) unless wake() is called first."""
        await pause(seconds, self.policy.sleep, self._kick)

    async def _deliver(self, taken: Taken, state: _Lane) -> Taken | None:
        """Attempt the row and record how it went; the lane's next row, taken in the same round trip as the record
        (after a failure: once the backoff is over)."""
        row = taken.row
        # An attempt begun where the row was taken was not overdue then.
        limit = None if taken.begun else self._overdue(row, self.clock.now())
        if limit is not None:
            why = f"undelivered after {limit} ({row.attempts} attempts; {row.last_error})"
            return await self._give_up(row, state, why)
        try:
            ts, note = await self._sender().send(taken)
        except Undeliverable as exc:
            return await self._give_up(row, state, str(exc))
        except LookupFailed as exc:
            return await self._failed(row, state, classify(exc.error), exc.error, keep_doubt=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self._failed(row, state, classify(exc), exc)
        sent_at = self.clock.now()
        following = await self._take(row.lane, state, first=lambda store: store.outbox_sent(row.id, ts, sent_at, note))
        state.failing = False
        self._settle(row.id, ts)
        return following

    async def _give_up(
        self, row: OutboxRow, state: _Lane, why: str, error: BaseException | None = None
    ) -> Taken | None:
        log.error("outbox: gave up on %s #%s to %s: %s", row.kind, row.id, row.lane, why)
        now = self.clock.now()
        following = await self._take(row.lane, state, first=lambda store: store.outbox_dead(row.id, why, now))
        OUTBOX_GIVEN_UP.inc()
        self._settle(row.id, None, error)
        return following

    async def _failed(
        self, row: OutboxRow, state: _Lane, failure: Failure, exc: BaseException, *, keep_doubt: bool = False
    ) -> Taken | None:
        if failure.kind == "fatal":
            # A caller still waiting gets Slack's refusal, as from a direct call (it may try again anew).
            return await self._give_up(row, state, f"Slack refused it: {failure.error}", exc)
        attempts = row.attempts + 1
        wait = max(self.policy.backoff(attempts), failure.retry_after)
        in_doubt = keep_doubt or (failure.kind in ("server", "lost") and row.kind in ("post", "upload"))
        if row.kind == "ephemeral":
            in_doubt = failure.kind == "lost"
        if in_doubt:
            wait = max(wait, self.policy.doubt_wait)
        what = f"{row.kind} #{row.id} to {row.lane}"
        log.warning("outbox: %s failed (%s: %s); retry in %.1fs", what, failure.kind, failure.error, wait)
        next_at = self.clock.now() + timedelta(seconds=wait)
        await self.db.run(
            self.db.sync.outbox_retry, row.id, next_attempt_at=next_at, error=failure.error, in_doubt=in_doubt
        )
        state.failing = True
        state.first_pass.set()
        # Callers waiting on this lane get placeholders now rather than after the outage.
        for row_id, (lane, _) in list(self._waiters.items()):
            if lane == row.lane:
                self._settle(row_id, None)
        # Backoff is owed in memory only: after a restart the first attempt is immediate. The row is taken
        # again after it, not before: the head may have changed (superseded) meanwhile.
        await self._pause(wait)
        return await self._take(row.lane, state)

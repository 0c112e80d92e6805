"""The delivery worker: one lane per target, each delivering its events in order, at least once.

Rows come from the store's ``deliveries`` table (bot/store/events.py), written in the same transaction as the
change each event describes. A lane takes its oldest pending row (counting the attempt and marking it in doubt
in the same round trip, so a crash mid-request is remembered), hands it to the target's ``Sender`` and records
the outcome. A failed attempt waits — exponential backoff, capped, or the target's ``Retry-After`` when longer —
and the same row is tried again: a lane never skips ahead, so a receiver sees events in order. A row still
undelivered after ``give_up_after`` is given up (``dead``, logged as an error) and the lane moves on; so is, at
once, a row whose sender says retrying cannot help (``Failure.fatal``: a webhook's 4xx other than 408/429, GitHub
refusing a repository), so that one refused event never holds its lane for the whole ``give_up_after``.

The store wakes the worker when an event with deliveries is written (``Store.event_hook``); on start every target
with pending rows gets a lane, so rows left by an outage or a restart are delivered then. Backoff is owed in
memory only: after a restart the first attempt is immediate. Nothing here ever blocks a release: the engine only
writes rows; sending happens in these tasks.

The worker is built even with no target configured: its start gives up the rows of targets the config no longer
names (every target, then), and ``prune()`` — at start and hourly (bot/bootstrap.py) — forgets finished
deliveries and events past ``events.retention``. Logs and metrics name a target by its label (``label_of``),
never by a webhook's full URL, whose query may hold a receiver's token.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from bot.lanes import Sleep, exponential_backoff, pause
from bot.observability import EVENT_DELIVERIES_GIVEN_UP
from bot.ports import Clock
from bot.store import AsyncStore
from bot.store.events import (
    Delivery,
    delivery_dead,
    delivery_retry,
    delivery_sent,
    drop_unconfigured,
    label_of,
    pending_targets,
    prune_deliveries,
    prune_events,
    take_delivery,
)

__all__ = ["Deliveries", "DeliveryPolicy", "Failure", "Sender"]

log = logging.getLogger("release_bot.events")


@dataclass(frozen=True)
class DeliveryPolicy:
    """Timing of delivery; tests shorten it (and inject ``sleep``) so no test waits in real time."""

    timeout: float = 10.0  # seconds per request
    backoff_base: float = 1.0  # first retry after this, doubling per attempt…
    backoff_cap: float = 300.0  # …up to this
    max_retry_after: float = 3600.0  # a receiver's Retry-After is honoured up to this
    give_up_after: timedelta = timedelta(hours=24)
    keep_finished_for: timedelta = timedelta(days=7)
    github_max_wait: float = 60.0  # GitHub rate-limit waits the client sits out itself (bot/github_api.py)
    sleep: Sleep = asyncio.sleep

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: base, 2·base, 4·base, … capped."""
        return exponential_backoff(attempts, self.backoff_base, self.backoff_cap)


class Failure(Exception):
    """An attempt that did not deliver: retried after ``retry_after`` at least, or never when ``fatal``.

    ``in_doubt``: the request may have had its effect (no answer, a 5xx), which a GitHub sender checks before
    creating anything again; a webhook receiver de-duplicates on the event id instead.
    """

    def __init__(self, error: str, *, retry_after: float = 0.0, fatal: bool = False, in_doubt: bool = True) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after
        self.fatal = fatal
        self.in_doubt = in_doubt


class Sender(Protocol):
    """Delivers one event to one target; raises Failure when it did not."""

    @property
    def target(self) -> str:
        """The target name the store's deliveries use (a webhook URL, or ``github``)."""
        ...

    async def send(self, delivery: Delivery) -> str | None:
        """Deliver; a note for the record (e.g. why nothing had to be sent), or None."""
        ...


@dataclass
class _Lane:
    more: asyncio.Event = field(default_factory=asyncio.Event)  # rows were written since the last read
    task: asyncio.Task[None] | None = None


class Deliveries:
    """The delivery worker: ``start()`` resumes pending rows and listens for new ones; ``stop()`` leaves the rest
    pending in the store for the next start."""

    def __init__(
        self,
        db: AsyncStore,
        senders: list[Sender],
        *,
        clock: Clock,
        policy: DeliveryPolicy,
        retention: timedelta = timedelta(days=30),
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.retention = retention  # events.retention: how long events are kept for replay
        self._senders = {sender.target: sender for sender in senders}
        self._lanes: dict[str, _Lane] = {}
        self._running = False
        self._kick = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def targets(self) -> list[str]:
        return list(self._senders)

    async def start(self) -> None:
        self._running = True
        self._loop = asyncio.get_running_loop()
        self.db.sync.event_hook = self._written
        now = self.clock.now()
        dropped = await self.db.run(drop_unconfigured, self.db.sync, self.targets, now)
        for target, count in dropped.items():
            label = self._label(target)
            log.warning("events: gave up on %d deliveries to %s: no longer configured", count, label)
            EVENT_DELIVERIES_GIVEN_UP.labels(target=label).inc(count)
        await self.prune()
        for target in await self.db.run(pending_targets, self.db.sync):
            self._poke(target)

    async def prune(self) -> None:
        """Forget finished deliveries past ``keep_finished_for`` and events past the retention whose deliveries
        are all settled (never one still to be delivered). Runs at start and hourly."""
        now = self.clock.now()
        forgotten = await self.db.run(prune_deliveries, self.db.sync, now - self.policy.keep_finished_for)
        pruned = await self.db.run(prune_events, self.db.sync, now - self.retention)
        if forgotten or pruned:
            log.info(
                "events: pruned %d events older than %s and %d finished deliveries", pruned, self.retention, forgotten
            )

    async def stop(self) -> None:
        """Stop the lanes; a request cut short stays in doubt and pending, for the next start."""
        self._running = False
        if self.db.sync.event_hook == self._written:
            self.db.sync.event_hook = None
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()

    def wake(self) -> None:
        """Retry now: end every backoff wait (e.g. once a receiver is known to answer again)."""
        self._kick.set()
        self._kick = asyncio.Event()

    async def drained(self) -> None:
        """Wait until every lane has delivered (or given up on) all its rows."""
        while self._lanes:
            await asyncio.gather(*[lane.task for lane in self._lanes.values() if lane.task], return_exceptions=True)

    def _written(self) -> None:
        """The store's hook, on the store thread (or the loop's, for direct store calls): start or nudge lanes."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            self._poke_all()  # on the loop itself (a store call made directly): the lane exists before it returns
        else:
            loop.call_soon_threadsafe(self._poke_all)

    def _poke_all(self) -> None:
        for target in self._senders:
            self._poke(target)

    def _poke(self, target: str) -> None:
        if not self._running or target not in self._senders:
            return
        state = self._lanes.get(target)
        if state is not None:
            state.more.set()
            return
        state = _Lane()
        state.more.set()
        self._lanes[target] = state
        state.task = asyncio.get_running_loop().create_task(
            self._run_lane(target, state), name=f"events:{self._label(target)}"
        )

    def _label(self, target: str) -> str:
        """What logs and metrics call ``target`` (never a webhook's full URL)."""
        return label_of(self.db.sync.event_targets, target)

    async def _run_lane(self, target: str, state: _Lane) -> None:
        sender = self._senders[target]
        try:
            while self._running:
                state.more.clear()  # a row written from here on is either read below or sets it again
                delivery = await self.db.run(take_delivery, self.db.sync, target)
                if delivery is None:
                    if state.more.is_set():
                        continue
                    break  # no await since the empty read: a later poke starts a new lane
                await self._attempt(sender, delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "events: the lane to %s failed; its rows stay pending until the next start", self._label(target)
            )
        finally:
            if self._lanes.get(target) is state:
                del self._lanes[target]

    async def _attempt(self, sender: Sender, delivery: Delivery) -> None:
        event, target = delivery.event, delivery.target
        now = self.clock.now()
        if now - delivery.created_at > self.policy.give_up_after:
            why = f"undelivered after {self.policy.give_up_after} ({delivery.attempts} attempts; {delivery.last_error})"
            await self._give_up(delivery, why)
            return
        try:
            note = await sender.send(delivery)
        except asyncio.CancelledError:
            raise
        except Failure as failure:
            if failure.fatal:
                await self._give_up(delivery, failure.error)
                return
            await self._retry(delivery, failure)
            return
        except Exception as exc:  # a bug in a sender must not stop the lane for good
            log.exception("events: sending %s to %s failed unexpectedly", event.id, self._label(target))
            await self._retry(delivery, Failure(f"{type(exc).__name__}: {exc}"))
            return
        await self.db.run(delivery_sent, self.db.sync, event.seq, target, self.clock.now(), note)

    async def _give_up(self, delivery: Delivery, why: str) -> None:
        label = self._label(delivery.target)
        log.error("events: gave up on %s (%s) to %s: %s", delivery.event.id, delivery.event.type, label, why)
        await self.db.run(delivery_dead, self.db.sync, delivery.event.seq, delivery.target, why, self.clock.now())
        EVENT_DELIVERIES_GIVEN_UP.labels(target=label).inc()

    async def _retry(self, delivery: Delivery, failure: Failure) -> None:
        attempts = delivery.attempts + 1
        wait = max(self.policy.backoff(attempts), min(failure.retry_after, self.policy.max_retry_after))
        log.warning(
            "events: %s to %s failed (%s); retry in %.1fs",
            delivery.event.id,
            self._label(delivery.target),
            failure.error,
            wait,
        )
        next_at = self.clock.now() + timedelta(seconds=wait)
        await self.db.run(
            delivery_retry,
            self.db.sync,
            delivery.event.seq,
            delivery.target,
            next_at=next_at,
            error=failure.error,
            in_doubt=failure.in_doubt,
        )
        await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` (policy.sleep) unless wake() is called first."""
        await pause(seconds, self.policy.sleep, self._kick)

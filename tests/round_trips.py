"""Counting the store round trips of a user action, end to end through the real bot.

Every ``AsyncStore`` call is one round trip (a hand-off to the store's thread). An action's round trips are
those made while it and all the work it starts run, until the engine's tasks and the Slack outbox are idle
(awaited, never slept). They are split by who made them: the engine and the Slack edge (the action's own
path, bounded by tests/test_round_trips.py) and the outbox's background delivery of the engine's messages.
Used by tests/test_round_trips.py and bench/round_trips.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.store import AsyncStore
from bot.store.async_store import RoundTrip
from tests.harness import BotHarness


@dataclass
class Measured:
    """The round trips of one action: the counter's difference and the tally of the same calls."""

    name: str
    total: int
    tally: Counter[RoundTrip]

    def count(self, keep: Callable[[RoundTrip], bool]) -> int:
        return sum(n for trip, n in self.tally.items() if keep(trip))

    @property
    def delivery(self) -> int:
        """Round trips of the outbox's background delivery (taking, sending and settling queued messages)."""
        return self.count(lambda trip: area(trip.caller) == "outbox" and trip.method != "outbox_enqueue")

    @property
    def path(self) -> int:
        """Round trips of the action's own path: the engine, the Slack edge and queueing its messages."""
        return self.total - self.delivery

    @property
    def enqueued(self) -> int:
        """Slack writes the action queued (one round trip each)."""
        return self.count(lambda trip: trip.method == "outbox_enqueue")


def area(caller: str) -> str:
    """Who made a call, by the caller's module: the engine, the Slack outbox, or that module itself."""
    module = caller.partition(":")[0]
    if module.startswith("bot.engine"):
        return "engine"
    if module.startswith("bot.slack.outbox"):
        return "outbox"
    return module


async def quiet(bot: BotHarness) -> None:
    """Everything the action started is finished: the engine's tasks, then the outbox's deliveries."""
    await bot.engine.drain()
    await bot.runtime.outbox.drained()


async def measure(bot: BotHarness, name: str, action: Callable[[], Awaitable[Any]]) -> Measured:
    """The round trips of ``action`` and of all the work it starts."""
    await quiet(bot)  # what setup started is not this action's
    store: AsyncStore = bot.runtime.store
    before = store.round_trips
    with store.tally() as tally:
        await action()
        await quiet(bot)
    total = store.round_trips - before
    assert total == sum(tally.values()), f"{name}: the counter says {total}, the tally {sum(tally.values())}"
    return Measured(name, total, tally)

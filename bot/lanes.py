"""What the bot's durable delivery queues share: the Slack outbox (bot/slack/outbox.py) and outbound events
(bot/events/deliver.py) each deliver their rows in lanes, back off exponentially after a failure, and end a
backoff early when told to retry now."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


def exponential_backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before attempt ``attempts + 1``: base, 2·base, 4·base, … capped."""
    return float(min(cap, base * 2 ** min(max(attempts - 1, 0), 64)))  # capped exponent: never a float overflow


async def pause(seconds: float, sleep: Sleep, kick: asyncio.Event) -> None:
    """Sleep ``seconds`` with ``sleep`` unless ``kick`` is set first (a wake(): retry now)."""
    sleeper = asyncio.ensure_future(sleep(seconds))
    kicked = asyncio.ensure_future(kick.wait())
    try:
        await asyncio.wait({sleeper, kicked}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, kicked):
            task.cancel()
        await asyncio.gather(sleeper, kicked, return_exceptions=True)

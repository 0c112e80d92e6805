"""A stand-in for ``asyncio.sleep`` that records each wait and returns at once (no test waits for real)."""

from __future__ import annotations


class RecordingSleep:
    """An injected sleeper: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

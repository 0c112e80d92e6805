"""A run record for provider tests: what the engine's fence (bot/engine/fences.py) would store, kept in memory."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from bot.providers.base import RunIdentity


class RecordedRun:
    """Implements bot.ports.RunRecord; the test reads back what the provider recorded."""

    def __init__(self, output: Path) -> None:
        self._output = output
        self.identity: RunIdentity | None = None
        self.remote_ids: list[str] = []

    @property
    def output(self) -> Path:
        return self._output

    async def starting(self, identity: RunIdentity) -> None:
        assert self.identity is None, "a step is recorded as starting once"
        self.identity = identity

    async def identified(self, remote_id: str) -> None:
        self.remote_ids.append(remote_id)


def recorded(tmp_path: Path) -> RecordedRun:
    """A record whose output file is new in ``tmp_path/deploys`` (each step has its own, as in the bot)."""
    return RecordedRun(tmp_path / "deploys" / f"step-{uuid.uuid4().hex[:8]}.log")


def remote() -> RecordedRun:
    """A record for a remote provider's step (http, github_actions): they write no output file."""
    return RecordedRun(Path("/nonexistent/remote-steps-write-no-output.log"))


class DiesWhenIdentified(RecordedRun):
    """A remote step whose bot dies once the remote run is known: ``identified`` never returns (the test cancels
    the step), as a SIGKILL leaves the run going at its service with its id recorded."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent/remote-steps-write-no-output.log"))
        self.known = asyncio.Event()

    async def identified(self, remote_id: str) -> None:
        await super().identified(remote_id)
        self.known.set()
        await asyncio.Event().wait()

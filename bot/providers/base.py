"""The deploy-provider port: every back-end deploys, shifts traffic and rolls back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DeployContext:
    """What a provider needs to act on one service in one environment."""

    service: str
    version: str
    environment: str
    release_id: int
    weight: int = 100  # share of traffic for the new version (canary), 100 for a full release
    colour: str | None = None  # blue/green: the colour being deployed to or switched to
    previous_version: str | None = None


@dataclass(frozen=True)
class StepResult:
    """The outcome of one provider action. ``output_tail`` keeps the last lines for the release record."""

    ok: bool
    output_tail: str
    error: str | None = None  # one line for people: "exit status 3", "timed out after 15m"


class DeployProvider(Protocol):
    """A deploy back-end (command, http, github_actions)."""

    async def deploy(self, ctx: DeployContext) -> StepResult:
        """Deploy ``ctx.version`` (at ``ctx.weight`` for a canary's first step)."""
        ...

    async def shift(self, ctx: DeployContext) -> StepResult:
        """Shift traffic to ``ctx.weight`` percent (canary) or switch to ``ctx.colour`` (blue/green)."""
        ...

    async def rollback(self, ctx: DeployContext) -> StepResult:
        """Return the environment to ``ctx.version`` (the rollback target)."""
        ...

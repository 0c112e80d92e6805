"""What a deploy provider is given and returns; the port itself (`DeployProvider`) is in bot.ports."""

from __future__ import annotations

from dataclasses import dataclass


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

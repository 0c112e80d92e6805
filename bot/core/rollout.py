"""Rollout plans: a deploy strategy from config turned into the ordered steps the engine runs.

- ``all_at_once``: one deploy at 100 % of traffic.
- ``canary``: deploy at the first weight, then for each later weight wait ``pause`` and verify the
  checks (a *verify* step) before shifting. There is no verify after the last shift: checks after full
  traffic are the post-release schedule (``after:`` offsets), not part of the rollout.
- ``blue_green``: deploy to the idle colour at 0 % of traffic, verify it after ``pause``, switch all
  traffic to it. The old colour keeps running, so switching back is instant.

Rolling back: a canary returns all traffic to the previous release (the new one gets weight 0); blue/green
switches back to the colour that served before; all-at-once redeploys the previous release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from bot.core.durations import format_duration

if TYPE_CHECKING:
    from bot.config import AllAtOnceStrategy, BlueGreenStrategy, CanaryStrategy

    StrategyModel = CanaryStrategy | BlueGreenStrategy | AllAtOnceStrategy

__all__ = [
    "COLOURS",
    "Step",
    "abort_steps",
    "compared_sides",
    "idle_colour",
    "offset_text",
    "plan_rollout",
    "rollback_steps",
]

COLOURS = ("blue", "green")
StepKind = Literal["deploy", "shift", "switch", "verify"]


@dataclass(frozen=True)
class Step:
    """One rollout step. ``weight`` is the new release's share of traffic (0-100) after the step."""

    kind: StepKind
    weight: int | None
    colour: str | None
    pause: timedelta  # for "verify": how long to wait before running the checks
    label: str


def idle_colour(current_colour: str | None) -> str:
    """The colour a blue/green deploy goes to: the one not serving; ``green`` the first time."""
    if current_colour is None:
        return "green"
    if current_colour not in COLOURS:
        raise ValueError(f"unknown colour {current_colour!r}: use blue or green")
    return "green" if current_colour == "blue" else "blue"


def plan_rollout(strategy: StrategyModel, *, current_colour: str | None) -> list[Step]:
    """The steps that take a release from nothing to all traffic under ``strategy``.

    ``current_colour`` is the blue/green colour serving now (None before the first blue/green release);
    other strategies ignore it.
    """
    if strategy.type == "all_at_once":
        return [Step("deploy", 100, None, timedelta(0), "deploy to 100% of traffic")]
    if strategy.type == "canary":
        first, *rest = strategy.steps
        if not rest:
            return [Step("deploy", first, None, timedelta(0), f"deploy to {first}% of traffic")]
        steps = [Step("deploy", first, None, timedelta(0), f"canary {first}% of traffic")]
        previous = first
        for weight in rest:
            steps.append(_verify(strategy.pause, f"canary at {previous}%"))
            label = "all traffic (100%)" if weight == 100 else f"canary {weight}% of traffic"
            steps.append(Step("shift", weight, None, timedelta(0), f"shift to {label}"))
            previous = weight
        return steps
    new = idle_colour(current_colour)
    old = current_colour or idle_colour(new)
    return [
        Step("deploy", 0, new, timedelta(0), f"deploy to idle {new} (no traffic yet)"),
        _verify(strategy.pause, f"{new} before switching"),
        Step(
            "switch",
            100,
            new,
            timedelta(0),
            f"switch traffic {old} → {new} ({old} kept for instant switch-back)",
        ),
    ]


def _verify(pause: timedelta, what: str) -> Step:
    """``verify canary at 10%, +5m``: the pause written as an offset, as the checks after a release are (``+5m``)."""
    after = f", {offset_text(pause)}" if pause > timedelta(0) else ""
    return Step("verify", None, None, pause, f"verify {what}{after}")


def offset_text(delta: timedelta) -> str:
    """A wait after a step or after a release, as every thread line writes it: ``+5m``, ``+1h30m``."""
    return f"+{format_duration(delta)}"


def rollback_steps(strategy: StrategyModel, current_colour: str | None) -> list[Step]:
    """The steps that return traffic to the previous release after the rollout reached all traffic.

    ``current_colour`` is the same value given to :func:`plan_rollout` (the colour that served before).
    """
    if strategy.type == "canary":
        return [Step("shift", 0, None, timedelta(0), "return all traffic to the previous release")]
    if strategy.type == "blue_green":
        old = current_colour or idle_colour(idle_colour(None))
        new = idle_colour(old)
        return [Step("switch", 100, old, timedelta(0), f"switch traffic back {new} → {old} (instant)")]
    return [Step("deploy", 100, None, timedelta(0), "redeploy the previous release to 100% of traffic")]


def abort_steps(strategy: StrategyModel, current_colour: str | None, *, reached: Step) -> list[Step]:
    """What to undo when a check fails after step ``reached`` completed (empty: no traffic moved yet).

    A blue/green release aborted before its switch never served traffic, so nothing moves; every
    other case is :func:`rollback_steps`.
    """
    if strategy.type == "blue_green" and reached.kind != "switch":
        return []
    return rollback_steps(strategy, current_colour)


def compared_sides(
    kind: str, *, version: str, previous_version: str | None, colour: str | None
) -> tuple[str, str] | None:
    """What a ``compare: canary_to_stable`` check fills ``{canary}`` with for each side: (canary, stable).

    A canary's sides are versions (the new release, the one it replaces); blue/green's are colours (the idle
    colour just deployed, the one serving). None when there is no stable to compare with (a first release).
    """
    if not previous_version:
        return None
    if kind == "canary":
        return version, previous_version
    if kind == "blue_green" and colour in COLOURS:
        return colour, idle_colour(colour)
    return None

"""Rollout plans for canary, blue/green and all-at-once, and how each one is undone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from bot.config import Strategy
from bot.core.rollout import Step, abort_steps, idle_colour, plan_rollout, rollback_steps

ZERO = timedelta(0)


def strategy(**fields: Any) -> Any:
    return TypeAdapter(Strategy).validate_python(fields)


def test_all_at_once_is_one_deploy_at_full_weight() -> None:
    assert plan_rollout(strategy(type="all_at_once"), current_colour=None) == [
        Step("deploy", 100, None, ZERO, "deploy to 100% of traffic")
    ]


def test_canary_steps_verify_after_each_pause_before_shifting() -> None:
    plan = plan_rollout(strategy(type="canary", steps=[10, 50, 100], pause="5m"), current_colour=None)
    five = timedelta(minutes=5)
    assert plan == [
        Step("deploy", 10, None, ZERO, "canary 10% of traffic"),
        Step("verify", None, None, five, "verify canary at 10%, +5m"),
        Step("shift", 50, None, ZERO, "shift to canary 50% of traffic"),
        Step("verify", None, None, five, "verify canary at 50%, +5m"),
        Step("shift", 100, None, ZERO, "shift to all traffic (100%)"),
    ]


def test_canary_final_step_has_no_verify_the_post_release_schedule_does_that() -> None:
    plan = plan_rollout(strategy(type="canary", steps=[25, 100], pause="90s"), current_colour="blue")
    assert [s.kind for s in plan] == ["deploy", "verify", "shift"]
    assert plan[1].pause == timedelta(seconds=90)
    assert plan[1].label == "verify canary at 25%, +1m30s"
    assert plan[-1].weight == 100


def test_canary_of_a_single_step_is_a_plain_deploy() -> None:
    assert plan_rollout(strategy(type="canary", steps=[100]), current_colour=None) == [
        Step("deploy", 100, None, ZERO, "deploy to 100% of traffic")
    ]


@pytest.mark.parametrize(
    ("current", "new", "old"),
    [(None, "green", "blue"), ("blue", "green", "blue"), ("green", "blue", "green")],
)
def test_blue_green_deploys_to_idle_colour_verifies_then_switches(current: str | None, new: str, old: str) -> None:
    plan = plan_rollout(strategy(type="blue_green", pause="2m"), current_colour=current)
    assert plan == [
        Step("deploy", 0, new, ZERO, f"deploy to idle {new} (no traffic yet)"),
        Step("verify", None, None, timedelta(minutes=2), f"verify {new} before switching, +2m"),
        Step("switch", 100, new, ZERO, f"switch traffic {old} → {new} ({old} kept for instant switch-back)"),
    ]


def test_blue_green_without_pause_verifies_immediately() -> None:
    verify = plan_rollout(strategy(type="blue_green"), current_colour="green")[1]
    assert verify == Step("verify", None, None, ZERO, "verify blue before switching")


def test_idle_colour_rejects_unknown_colours() -> None:
    assert idle_colour(None) == "green"
    with pytest.raises(ValueError, match="unknown colour 'red'"):
        idle_colour("red")


def test_canary_rollback_returns_all_traffic_to_previous_release() -> None:
    canary = strategy(type="canary", steps=[10, 50, 100])
    assert rollback_steps(canary, None) == [Step("shift", 0, None, ZERO, "return all traffic to the previous release")]


@pytest.mark.parametrize(("before", "live"), [("blue", "green"), ("green", "blue"), (None, "green")])
def test_blue_green_rollback_switches_back_to_the_kept_colour(before: str | None, live: str) -> None:
    old = before or "blue"
    assert rollback_steps(strategy(type="blue_green"), before) == [
        Step("switch", 100, old, ZERO, f"switch traffic back {live} → {old} (instant)")
    ]


def test_all_at_once_rollback_redeploys_the_previous_release() -> None:
    assert rollback_steps(strategy(type="all_at_once"), None) == [
        Step("deploy", 100, None, ZERO, "redeploy the previous release to 100% of traffic")
    ]


def test_canary_abort_at_any_step_returns_the_weight() -> None:
    canary = strategy(type="canary", steps=[10, 50, 100], pause="1m")
    for reached in plan_rollout(canary, current_colour=None):
        assert abort_steps(canary, None, reached=reached) == rollback_steps(canary, None)


def test_blue_green_abort_before_switch_moves_nothing_after_switch_switches_back() -> None:
    bg = strategy(type="blue_green")
    deploy, verify, switch = plan_rollout(bg, current_colour="blue")
    assert abort_steps(bg, "blue", reached=deploy) == []
    assert abort_steps(bg, "blue", reached=verify) == []
    assert abort_steps(bg, "blue", reached=switch) == rollback_steps(bg, "blue")


def test_a_verify_step_and_a_check_after_the_release_write_their_wait_alike() -> None:
    """One style in the thread: ``+5m`` after a canary step as after the release (not ``after 5m`` / ``+0:05:00``)."""
    from bot.engine.checks import offset_label

    verify = plan_rollout(strategy(type="canary", steps=[10, 100], pause="5m"), current_colour=None)[1]
    assert verify.label == "verify canary at 10%, +5m"
    assert offset_label(5 * 60) == "+5m"
    assert [offset_label(s) for s in (90, 15 * 60, 90 * 60, 86400)] == ["+1m30s", "+15m", "+1h30m", "+1d"]

"""Canary and blue/green rollouts end to end: provider steps in the deploy log, checks between steps, the thread.

Prometheus is a fake speaking its HTTP API whose answer the test scripts per verify step. Pauses go
through the engine's ``sleep`` port, replaced by one that records the pause and moves the test clock,
so the rollout waits "2 minutes" without a test ever sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.core.models import Release, ReleaseKind, ReleaseState
from tests.fakes.prometheus import FakePrometheus
from tests.harness import ONCALL1, ONCALL2, RELEASER, STUB, BotHarness, running_bot, ship_to_prod
from tests.test_scenario_checks import buttons, checks_config, thread, wall_clock

CANARY = {"type": "canary", "steps": [10, 50, 100], "pause": "2m"}


def canary_config(log: Path, prometheus_url: str, **prod: Any) -> dict[str, Any]:
    return checks_config(log, prometheus_url, strategy=CANARY, **prod)


def blue_green_config(log: Path, prometheus_url: str) -> dict[str, Any]:
    # Deploys and switches log differently, so the test sees that a rollback only switches.
    deploy = {
        "provider": "command",
        "run": [str(STUB), str(log), "deploy", "{version}", "{weight}", "{colour}"],
        "shift": [str(STUB), str(log), "switch", "{version}", "{weight}", "{colour}"],
        "timeout": "20s",
    }
    return checks_config(
        log,
        prometheus_url,
        strategy={"type": "blue_green", "pause": "1m"},
        deploy=deploy,
        rollback={"approvals": {"required": 1, "from": ["oncall"]}},
    )


def paced(bot: BotHarness) -> list[float]:
    """Replace the engine's sleep: record each pause and let that much test time pass."""
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        bot.clock.advance(seconds=seconds)

    bot.engine.rollouts.sleep = sleep
    return pauses


async def ship(bot: BotHarness, version: str, *, first: bool = True) -> Release:
    """Release ``version`` through staging to prod and return the prod release, however it ended."""
    release = await ship_to_prod(bot, version, first=first)
    assert release.version == version and release.kind is not ReleaseKind.ROLLBACK, bot.last_reply()
    return release


def prod_deploys(bot: BotHarness) -> list[str]:
    return [line for line in bot.deploys() if " staging " not in line]


def current(bot: BotHarness, release: Release) -> Release:
    found = bot.store.get_release(release.id)
    assert found is not None
    return found


async def test_canary_fail_at_50_returns_traffic_to_the_previous_release(tmp_path: Path) -> None:
    async with FakePrometheus() as prometheus:
        prometheus.script = [0.002, 0.2]  # PASS at 10 %, FAIL at 50 %
        config = canary_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            pauses = paced(bot)
            started = bot.clock.now()
            release = await ship(bot, "1.3.0")

            assert prod_deploys(bot) == ["notify 1.3.0 prod 10", "notify 1.3.0 prod 50", "notify 1.3.0 prod 0"]
            assert pauses == [120.0, 120.0], "each step waits its pause before its checks"
            # Each verify measured after its pause, at the time the checks ran.
            assert [at for _, at in prometheus.queries] == [
                started + timedelta(minutes=2),
                started + timedelta(minutes=4),
            ]
            release = current(bot, release)
            assert release.state is ReleaseState.FAILED and release.change_failure and release.weight == 0
            assert release.error is not None and "checks failed at verify canary at 50%" in release.error
            story = "\n".join(thread(bot, release))
            for step in (
                "✅ canary 10% of traffic",
                "🔎 verify canary at 10%, +2m",
                "✅ shift to canary 50% of traffic",
                "🔎 verify canary at 50%, +2m",
                "↩️ return all traffic to the previous release: done",
                "error rate = 0.2",
            ):
                assert step in story, step
            assert "all traffic (100%)" not in story and "is live" not in story
            assert bot.store.env_state("notify", "prod").version == "1.2.2"  # type: ignore[union-attr]
            assert bot.store.lock_of("notify", "prod") is None
            assert bot.store.measurements(release.id) == [], "a failed rollout schedules no post-release checks"


async def test_canary_passing_every_step_reaches_all_traffic(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.002) as prometheus:
        config = canary_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship(bot, "1.3.0")

            assert prod_deploys(bot) == [f"notify 1.3.0 prod {w}" for w in (10, 50, 100)]
            assert len(prometheus.queries) == 2, "checks at 10 % and 50 %; full traffic is the post-release schedule"
            assert current(bot, release).state is ReleaseState.SUCCEEDED
            assert [r["state"] for r in bot.store.measurements(release.id)] == ["pending"] * 3


async def test_canary_inconclusive_at_50_holds_and_looks_good_continues_once(tmp_path: Path) -> None:
    async with FakePrometheus() as prometheus:
        prometheus.script = [0.002, None]  # PASS at 10 %, no series at 50 %
        config = canary_config(tmp_path / "deploys.log", prometheus.url, on_check_failure="auto_rollback")
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship(bot, "1.3.0")

            # Held at 50 %: no rollback (INCONCLUSIVE never rolls back), no step to 100 %.
            assert prod_deploys(bot) == ["notify 1.3.0 prod 10", "notify 1.3.0 prod 50"]
            held = current(bot, release)
            assert (held.state, held.weight) == (ReleaseState.VERIFYING, 50)
            hold = next(t for t in thread(bot, release) if "on hold" in t)
            assert f"<@{ONCALL1}>" in hold and "verify canary at 50%" in hold
            assert buttons(bot, release) == [["check_looks_good", "check_rollback"]]
            assert bot.store.lock_of("notify", "prod") is not None, "nobody else deploys over a held rollout"

            # Three simultaneous clicks, one effect.
            await asyncio.gather(
                bot.click("check_looks_good", str(release.id), user=ONCALL1),
                bot.click("check_looks_good", str(release.id), user=ONCALL1),
                bot.click("check_looks_good", str(release.id), user=ONCALL2),
            )
            await bot.settle()

            assert prod_deploys(bot) == [f"notify 1.3.0 prod {w}" for w in (10, 50, 100)]
            done = current(bot, release)
            assert done.state is ReleaseState.SUCCEEDED
            assert bot.store.env_state("notify", "prod").version == "1.3.0"  # type: ignore[union-attr]
            answers = bot.replies_to(ONCALL1) + bot.replies_to(ONCALL2)
            assert sum("Continuing the rollout" in a for a in answers) == 1
            assert sum("already decided" in a for a in answers) == 2
            assert sum("looks good — continuing" in t for t in thread(bot, release)) == 1
            assert len(prometheus.queries) == 2, "looks good skips the held checks, it does not re-run them"

            await bot.click("check_looks_good", str(release.id), user=ONCALL1)
            await bot.settle()
            assert prod_deploys(bot)[-1] == "notify 1.3.0 prod 100" and len(prod_deploys(bot)) == 3


async def test_canary_hold_roll_back_returns_the_weight_and_later_clicks_do_nothing(tmp_path: Path) -> None:
    async with FakePrometheus(value=None) as prometheus:  # no series at 10 %
        config = canary_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship(bot, "1.3.0")
            assert prod_deploys(bot) == ["notify 1.3.0 prod 10"]

            await bot.click("check_looks_good", str(release.id), user=RELEASER)
            assert "not in oncall" in bot.last_reply(RELEASER)
            await bot.click("check_rollback", str(release.id), user=ONCALL2)
            await bot.settle()
            await bot.click("check_looks_good", str(release.id), user=ONCALL1)
            await bot.settle()

            assert prod_deploys(bot) == ["notify 1.3.0 prod 10", "notify 1.3.0 prod 0"]
            failed = current(bot, release)
            assert failed.state is ReleaseState.FAILED and failed.weight == 0
            assert failed.error is not None and f"rolled back by {ONCALL2} after" in failed.error
            assert "failed now; nothing to do" in bot.last_reply(ONCALL1)
            assert bot.store.lock_of("notify", "prod") is None


async def test_canary_with_metrics_unreachable_holds_and_never_rolls_back(tmp_path: Path) -> None:
    async with FakePrometheus() as prometheus:
        prometheus.down = True
        config = canary_config(tmp_path / "deploys.log", prometheus.url, on_check_failure="auto_rollback")
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship(bot, "1.3.0")

            assert prod_deploys(bot) == ["notify 1.3.0 prod 10"], "held at 10 %, no shift back to 0"
            assert current(bot, release).state is ReleaseState.VERIFYING
            story = thread(bot, release)
            [reply] = [t for t in story if t.startswith("error rate: ")]  # one reply, edited at each attempt
            assert reply.startswith("error rate: inconclusive") and "metrics unavailable — attempt 3 of 3" in reply
            assert buttons(bot, release) == [["check_looks_good", "check_rollback"]]


async def test_blue_green_alternates_colours_and_rolls_back_by_switching(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.002) as prometheus:
        config = blue_green_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            pauses = paced(bot)
            first = await ship(bot, "1.3.0")
            assert prod_deploys(bot) == ["deploy 1.3.0 0 green", "switch 1.3.0 100 green"]
            assert bot.store.env_colour("notify", "prod") == "green"
            assert "switch traffic blue → green (blue kept for instant switch-back)" in "\n".join(thread(bot, first))

            second = await ship(bot, "1.3.1", first=False)
            assert prod_deploys(bot)[2:] == ["deploy 1.3.1 0 blue", "switch 1.3.1 100 blue"]
            assert bot.store.env_colour("notify", "prod") == "blue"
            assert pauses == [60.0, 60.0] and len(prometheus.queries) == 2, "each idle colour checked first"

            await bot.command("rollback prod", user=ONCALL1)  # on-call's own request is its approval
            await bot.settle()

            # Instant: green still runs 1.3.0, so the rollback is one switch and no deploy.
            assert prod_deploys(bot)[4:] == ["switch 1.3.0 100 green"]
            assert bot.store.env_colour("notify", "prod") == "green"
            assert bot.store.env_state("notify", "prod").version == "1.3.0"  # type: ignore[union-attr]
            assert current(bot, second).state is ReleaseState.ROLLED_BACK
            [rollback] = [r for r in bot.store.history("notify", "prod", 5) if r.kind is ReleaseKind.ROLLBACK]
            assert "switch traffic back blue → green (instant)" in "\n".join(thread(bot, rollback))


async def test_blue_green_failing_check_never_switches_traffic(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.3) as prometheus:
        config = blue_green_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship(bot, "1.3.0")

            assert prod_deploys(bot) == ["deploy 1.3.0 0 green"], "the idle colour never got traffic"
            failed = current(bot, release)
            assert failed.state is ReleaseState.FAILED
            assert failed.error is not None and "checks failed at verify green before switching" in failed.error
            assert bot.store.env_state("notify", "prod").version == "1.2.2"  # type: ignore[union-attr]

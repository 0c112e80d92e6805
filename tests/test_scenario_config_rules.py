"""What teams say in the config, end to end: approvals only at some times, a service's own strategy and checks,
which environment is production, and what a deploy script is told on every call (an abort too)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.core.models import ReleaseState
from tests.fakes.prometheus import FakePrometheus
from tests.harness import STUB, BotHarness, config_dict, running_bot, ship_to_prod
from tests.test_scenario_checks import wall_clock
from tests.test_scenario_rollouts import canary_config, paced, prod_deploys

# Every placeholder the deploy script can be given, after the four the harness's log line starts with.
TOLD = ["{service}", "{version}", "{environment}", "{weight}", "{action}", "prev={previous_version}"]


def telling(config: dict[str, Any], log: Path) -> dict[str, Any]:
    """``config`` with every environment's deploy logging all the placeholders."""
    for environment in config["environments"].values():
        environment["deploy"]["run"] = [str(STUB), str(log), *TOLD]
    return config


async def test_approvals_are_asked_only_when_a_rule_matches(tmp_path: Path) -> None:
    config = config_dict(
        tmp_path / "deploys.log", approvals={"required": 1, "from": ["oncall"], "when": ["after 14:00"]}
    )
    async with running_bot(tmp_path, config=config) as bot:  # Tuesday 10:00 in Toronto
        morning = await ship_to_prod(bot, "1.3.0")
        assert morning.state is ReleaseState.SUCCEEDED, "no approval before 14:00"

        bot.clock.advance(hours=4, minutes=30)
        bot.add_candidate("1.3.1")
        await bot.command("staging 1.3.1")
        await bot.settle()
        await bot.command("prod")
        await bot.settle()
        afternoon = bot.store.history("notify", "prod", 1)[0]
        assert (afternoon.version, afternoon.state) == ("1.3.1", ReleaseState.AWAITING_APPROVAL)


async def test_a_service_rolls_out_with_its_own_strategy_and_checks(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    async with FakePrometheus(value=0.9) as prometheus:  # the environment's check would FAIL
        config = canary_config(log, prometheus.url)  # prod: canary 10/50/100 with an error-rate check
        config["services"]["notify"]["environments"] = {
            "prod": {"strategy": {"type": "canary", "steps": [50, 100], "pause": "1m"}, "checks": []}
        }
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            pauses = paced(bot)
            release = await ship_to_prod(bot, "1.3.0")

            assert prod_deploys(bot) == ["notify 1.3.0 prod 50", "notify 1.3.0 prod 100"]
            assert pauses == [60.0]
            assert release.state is ReleaseState.SUCCEEDED
            assert prometheus.queries == [], "the service's checks (none) replace the environment's"
            assert bot.store.measurements(release.id) == []


async def test_a_canary_abort_tells_the_script_what_traffic_returns_to(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    async with FakePrometheus() as prometheus:
        prometheus.script = [0.002, 0.2]  # PASS at 10 %, FAIL at 50 %
        config = telling(canary_config(log, prometheus.url), log)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship_to_prod(bot, "1.3.0")

            assert release.state is ReleaseState.FAILED
            assert prod_deploys(bot) == [
                "notify 1.3.0 prod 10 deploy prev=1.2.2",
                "notify 1.3.0 prod 50 shift prev=1.2.2",
                "notify 1.3.0 prod 0 shift prev=1.2.2",  # the abort: no traffic to 1.3.0, the rest on 1.2.2
            ]


async def production_count(bot: BotHarness) -> int:
    now = bot.clock.now()
    _, releases = await bot.engine.summaries.dora_between(now - timedelta(days=1), now + timedelta(days=1))
    return len(releases)


async def test_dora_counts_the_environment_marked_production(tmp_path: Path) -> None:
    default, marked = tmp_path / "default", tmp_path / "marked"
    for directory in (default, marked):
        directory.mkdir()
    async with running_bot(default) as bot:
        bot.add_candidate("1.3.0")
        await bot.command("staging 1.3.0")
        await bot.settle()
        assert await production_count(bot) == 0, "by default the last stage (prod) is production"

    config = config_dict(marked / "deploys.log")
    config["environments"]["staging"]["production"] = True
    async with running_bot(marked, config=config) as bot:
        bot.add_candidate("1.3.0")
        await bot.command("staging 1.3.0")
        await bot.settle()
        assert await production_count(bot) == 1

"""``compare: canary_to_stable``: one query run for the canary and for the stable, judged on their ratio.

Unit tests of the judging; config errors with their paths; canary rollouts through the real app against a fake
Prometheus speaking its HTTP API (each verify step asks canary then stable); and the two queries against a REAL
Prometheus scraping an exporter whose ``service`` label carries the version.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.config import Check, ConfigError, Metrics, parse_config
from bot.core.conditions import parse_condition
from bot.core.rollout import compared_sides
from bot.core.verdicts import Verdict, fill_sides, judge_ratio
from bot.metrics.compare import measure_compare
from bot.metrics.run import CheckRunner
from tests.fakes.prometheus import FakePrometheus
from tests.harness import config_dict, running_bot
from tests.prometheus_harness import PrometheusStack as Stack
from tests.prometheus_harness import prometheus_stack
from tests.test_cli import SLACK_ENV, run, write_config
from tests.test_scenario_checks import checks_config, thread, wall_clock
from tests.test_scenario_rollouts import CANARY, blue_green_config, current, paced, prod_deploys, ship

QUERY = 'sum(rate(http_errors_total{service="{service}",version="{canary}"}[1m]))'


def compare_check(**extra: Any) -> dict[str, Any]:
    return {"name": "errors", "prometheus": QUERY, "compare": "canary_to_stable", "fail_if": "ratio > 1.5", **extra}


def check(**extra: Any) -> Check:
    return Check.model_validate(compare_check(**extra))


# --- judging ----------------------------------------------------------------------------------------------


def test_the_ratio_condition_parses_and_reads_back() -> None:
    condition = parse_condition("ratio > 1.5")
    assert (condition.op, condition.threshold, condition.subject, str(condition)) == (">", 1.5, "ratio", "ratio > 1.5")
    assert str(parse_condition("> 1.5")) == "> 1.5"


def test_sides_are_filled_and_other_braces_kept() -> None:
    assert fill_sides(QUERY, side="1.3.0", stable="1.2.2") == (
        'sum(rate(http_errors_total{service="{service}",version="1.3.0"}[1m]))'
    )
    assert fill_sides('x{a="{canary}",b="{stable}"}', side="1.2.2", stable="1.2.2") == 'x{a="1.2.2",b="1.2.2"}'
    with pytest.raises(ValueError, match="unsafe"):
        fill_sides(QUERY, side='1"} or vector(1', stable="1.2.2")


@pytest.mark.parametrize(
    ("canary", "stable", "verdict", "shown"),
    [
        (0.03, 0.01, Verdict.FAIL, "errors: canary 0.03 vs stable 0.01 → ratio 3 (fail if ratio > 1.5)"),
        (0.012, 0.01, Verdict.PASS, "errors: canary 0.012 vs stable 0.01 → ratio 1.2 (fail if ratio > 1.5)"),
        (0.01, 0.0, Verdict.FAIL, "errors: canary 0.01 vs stable 0 → ratio +Inf (fail if ratio > 1.5)"),
        (0.0, 0.0, Verdict.INCONCLUSIVE, "errors: canary 0 vs stable 0 → ratio NaN (fail if ratio > 1.5)"),
        (None, 0.01, Verdict.INCONCLUSIVE, "errors: canary no data vs stable 0.01 (fail if ratio > 1.5)"),
    ],
    ids=["worse", "within", "over-zero", "zero-over-zero", "empty"],
)
def test_the_ratio_is_judged(canary: float | None, stable: float | None, verdict: Verdict, shown: str) -> None:
    measured = judge_ratio(check(), canary, stable, query="q")
    assert (measured.verdict, measured.summary) == (verdict, shown)
    if canary is not None and stable:
        assert math.isclose(measured.value or 0.0, canary / stable)


def test_both_sides_below_the_floor_pass_and_say_so() -> None:
    floored = check(min_value=0.001)
    measured = judge_ratio(floored, 0.0004, 0.0001, query="q")  # ratio 4, but both are noise
    assert measured.verdict is Verdict.PASS and measured.value is None
    assert measured.detail == "both below min_value 0.001: passed without comparing"
    assert "canary 0.0004 vs stable 0.0001" in measured.summary
    assert judge_ratio(floored, 0.004, 0.0001, query="q").verdict is Verdict.FAIL, "one side above: compared"


def test_pass_if_on_the_ratio_and_the_sides_of_each_strategy() -> None:
    strict = check(fail_if=None, pass_if="ratio <= 1.1")
    assert judge_ratio(strict, 0.0105, 0.01, query="q").verdict is Verdict.PASS
    assert judge_ratio(strict, 0.02, 0.01, query="q").verdict is Verdict.FAIL
    assert compared_sides("canary", version="1.3.0", previous_version="1.2.2", colour=None) == ("1.3.0", "1.2.2")
    assert compared_sides("blue_green", version="1.3.0", previous_version="1.2.2", colour="green") == (
        "green",
        "blue",
    )
    assert compared_sides("canary", version="1.3.0", previous_version=None, colour=None) is None


# --- config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prod", "where", "expected"),
    [
        ({"checks": [compare_check()]}, "environments.prod.checks[0].compare", "needs a canary or blue_green"),
        (
            {"checks": [compare_check(prometheus="sum(up)")]},
            "environments.prod.checks[0]",
            "names the side it measures with {canary}",
        ),
        (
            {"strategy": CANARY, "checks": [compare_check(every="30s", **{"for": "5m"})]},
            "environments.prod.checks[0]",
            "not in a watch window",
        ),
        (
            {"strategy": CANARY, "checks": [{"name": "e", "prometheus": QUERY, "fail_if": "> 1"}]},
            "environments.prod.checks[0]",
            "{canary} and {stable} are for compare",
        ),
        (
            {"strategy": CANARY, "checks": [{"name": "e", "prometheus": "up", "fail_if": "ratio > 1"}]},
            "environments.prod.checks[0]",
            '"ratio" conditions are for compare',
        ),
    ],
    ids=["all-at-once", "no-side", "watch", "placeholder-elsewhere", "ratio-elsewhere"],
)
def test_a_compare_that_cannot_work_is_an_error_at_its_path_and_nothing_starts(
    tmp_path: Path, prod: dict[str, Any], where: str, expected: str
) -> None:
    data = config_dict(tmp_path / "deploys.log", **prod)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert any(e.startswith(where + ":") and expected in e for e in caught.value.errors), caught.value.errors

    def bad(config: dict[str, Any]) -> None:
        config["environments"]["prod"].update(prod)

    path = write_config(tmp_path, bad)
    result = run(["serve"], path, **{**SLACK_ENV, "RELEASEBOT_DB": str(tmp_path / "db.sqlite")})
    assert result.exit_code == 2 and where in result.stderr and expected in result.stderr
    assert not (tmp_path / "db.sqlite").exists(), "nothing was stored"


def test_a_service_that_rolls_out_all_at_once_cannot_inherit_a_compare(tmp_path: Path) -> None:
    data = config_dict(tmp_path / "deploys.log", strategy=CANARY, checks=[compare_check()])
    data["services"]["notify"]["environments"] = {"prod": {"strategy": {"type": "all_at_once"}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.errors == [
        "environments.prod.checks[0].compare: compare needs a canary or blue_green strategy: notify rolls out "
        "all_at_once in prod"
    ]
    del data["services"]["notify"]["environments"]
    assert parse_config(data).environments["prod"].checks[0].compare == "canary_to_stable"


# --- canary steps through the real app --------------------------------------------------------------------


def canary_compare_config(log: Path, url: str, **extra: Any) -> dict[str, Any]:
    return checks_config(log, url, strategy=CANARY, checks=[compare_check(**extra)])


async def test_each_canary_step_shows_both_values_and_a_worse_canary_aborts(tmp_path: Path) -> None:
    async with FakePrometheus() as prometheus:
        prometheus.script = [0.011, 0.01, 0.05, 0.01]  # 10 %: ratio 1.1 passes; 50 %: ratio 5 fails
        config = canary_compare_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship(bot, "1.3.0")

            queries = [q for q, _ in prometheus.queries]
            canary = 'sum(rate(http_errors_total{service="notify",version="1.3.0"}[1m]))'
            stable = 'sum(rate(http_errors_total{service="notify",version="1.2.2"}[1m]))'
            assert queries == [canary, stable, canary, stable], "each step: the canary, then the stable"
            assert prod_deploys(bot) == ["notify 1.3.0 prod 10", "notify 1.3.0 prod 50", "notify 1.3.0 prod 0"]
            story = "\n".join(thread(bot, release))
            # As the thread shows them (mrkdwn-escaped), side by side with the ratio.
            assert "errors: canary 0.011 vs stable 0.01 → ratio 1.1 (fail if ratio &gt; 1.5)" in story
            assert "errors: canary 0.05 vs stable 0.01 → ratio 5 (fail if ratio &gt; 1.5)" in story
            assert json.dumps(f"canary: {canary} | stable: {stable}")[1:-1] in story, "both queries are shown"
            release = current(bot, release)
            assert release.error is not None and "ratio 5" in release.error
            assert bot.store.measurements(release.id) == [], "a compare check has no post-release schedule"


async def test_tiny_numbers_under_the_floor_pass_every_step_and_the_release_goes_live(tmp_path: Path) -> None:
    async with FakePrometheus() as prometheus:
        prometheus.script = [0.0004, 0.0001, 0.0003, 0.0001]  # ratios 4 and 3, but all under the floor
        config = canary_compare_config(tmp_path / "deploys.log", prometheus.url, min_value=0.001)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            release = await ship(bot, "1.3.0")

            assert prod_deploys(bot) == [f"notify 1.3.0 prod {w}" for w in (10, 50, 100)]
            story = "\n".join(thread(bot, release))
            assert story.count("both below min_value 0.001: passed without comparing") == 2
            assert current(bot, release).verdict in (None, "pass")


# --- against a real Prometheus ----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    # The exporter's `service` label carries the version here: 1.3.0 serves 6 % errors, 1.2.2 serves 2 %.
    rates = [("1.3.0", "200", 94), ("1.3.0", "500", 6), ("1.2.2", "200", 98), ("1.2.2", "500", 2)]
    async with prometheus_stack(rates) as running:
        yield running


@pytest.mark.prometheus
@pytest.mark.asyncio(loop_scope="module")
async def test_a_real_prometheus_answers_both_sides_and_the_ratio_fails(stack: Stack) -> None:
    ratio = (
        'sum(rate(http_requests_total{service="{canary}",code=~"5.."}[10s]))'
        ' / sum(rate(http_requests_total{service="{canary}"}[10s]))'
    )
    compared = Check.model_validate(
        {"name": "error ratio", "prometheus": ratio, "compare": "canary_to_stable", "fail_if": "ratio > 1.5"}
    )
    metrics = Metrics.model_validate({"prometheus_url": stack.prometheus.url, "timeout": "5s"})
    async with CheckRunner(metrics) as runner:
        measured = await measure_compare(
            runner,
            compared,
            datetime.now(UTC),
            service="notify",
            environment="prod",
            version="1.3.0",
            sides=("1.3.0", "1.2.2"),
        )
    assert measured.verdict is Verdict.FAIL, measured
    assert measured.summary.startswith("error ratio: canary 0.06 vs stable 0.02 → ratio 3"), measured.summary


async def test_blue_green_compares_the_idle_colour_with_the_serving_one(tmp_path: Path) -> None:
    async with FakePrometheus() as prometheus:
        prometheus.script = [0.01, 0.01]  # ratio 1: the switch goes ahead
        log = tmp_path / "deploys.log"
        deploy = blue_green_config(log, prometheus.url)["environments"]["prod"]["deploy"]
        by_colour = compare_check(prometheus='sum(rate(http_errors_total{colour="{canary}"}[1m]))')
        config = checks_config(
            log, prometheus.url, strategy={"type": "blue_green", "pause": "1m"}, deploy=deploy, checks=[by_colour]
        )
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            paced(bot)
            await ship(bot, "1.3.0")

            assert [q for q, _ in prometheus.queries] == [
                'sum(rate(http_errors_total{colour="green"}[1m]))',
                'sum(rate(http_errors_total{colour="blue"}[1m]))',
            ], "the idle colour just deployed, then the one serving"
            assert prod_deploys(bot) == ["deploy 1.3.0 0 green", "switch 1.3.0 100 green"]

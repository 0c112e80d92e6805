"""Watch-window checks (``every`` + ``for`` + ``failure_limit``) end to end: the real app, a fake Prometheus
speaking its HTTP API, the fake Slack. The store holds one row per tick; tests move the bot's clock past ticks
and call ``run_due_measurements`` (what the scheduler's job calls), as tests/test_scenario_checks.py does.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import Check, ConfigError, parse_config
from bot.core.models import Release, ReleaseKind, ReleaseState
from bot.core.watch import tally, tick_offsets
from bot.engine.checks import job_key
from tests.fakes import FakeSlackWebAPI
from tests.fakes.prometheus import FakePrometheus
from tests.fakes.slack_state import Message
from tests.harness import BotHarness, config_dict, running_bot
from tests.test_cli import SLACK_ENV, run, write_config
from tests.test_scenario_checks import bot_on, buttons, checks_config, release_to_prod, thread, wall_clock

QUERY = 'sum(rate(http_requests_total{service="{service}",code=~"5.."}[1m]))'


def watch_config(log: Path, url: str, *, every: str = "1m", window: str = "5m", **extra: Any) -> dict[str, Any]:
    prod = {k: v for k, v in extra.items() if k in ("on_check_failure", "rollback")}
    limit = {k: v for k, v in extra.items() if k == "failure_limit"}
    check = {"name": "error rate", "prometheus": QUERY, "fail_if": "> 0.05", "every": every, "for": window, **limit}
    return checks_config(log, url, checks=[check], **prod)


def rows(bot: BotHarness, release: Release) -> list[dict[str, Any]]:
    return bot.store.measurements(release.id)


def states(bot: BotHarness, release: Release) -> list[str]:
    return [r["state"] for r in rows(bot, release)]


def window_messages(bot: BotHarness, release: Release) -> list[Message]:
    found = bot.store.get_release(release.id)
    assert found is not None
    return [
        m
        for m in bot.slack.messages("C01RELEASES")
        if m.thread_ts == found.thread_ts and m.text.startswith("error rate:")
    ]


def shown(message: Message) -> list[str]:
    """Each version of the window's reply people saw, oldest first (its fallback text)."""
    return [str(version.get("text", "")) for version in message.edits] + [message.text]


async def tick(bot: BotHarness, release: Release, offset: timedelta) -> int:
    assert release.finished_at is not None
    bot.clock.set(release.finished_at + offset)
    taken: int = await bot.engine.checks.run_due_measurements()
    await bot.settle()
    return taken


# --- expansion --------------------------------------------------------------------------------------------


def test_a_window_expands_to_one_tick_per_every_within_for() -> None:
    assert tick_offsets(timedelta(seconds=30), timedelta(minutes=30)) == list(range(30, 1801, 30))
    assert len(tick_offsets(timedelta(seconds=30), timedelta(minutes=30))) == 60
    assert tick_offsets(timedelta(minutes=2), timedelta(minutes=5)) == [120, 240], "no tick past for"
    check = Check.model_validate({"name": "x", "prometheus": "up", "fail_if": "> 1", "every": "30s", "for": "30m"})
    assert check.watch_ticks == 60 and check.for_ == timedelta(minutes=30)


async def test_a_30s_by_30m_window_stores_60_rows_armed_and_announced_once(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.001) as prometheus:
        config = watch_config(tmp_path / "deploys.log", prometheus.url, every="30s", window="30m", failure_limit=2)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            assert release.finished_at is not None
            stored = rows(bot, release)
            assert len(stored) == 60
            assert [r["offset_s"] for r in stored] == list(range(30, 1801, 30))
            assert {(r["every_s"], r["failure_limit"], r["state"]) for r in stored} == {(30, 2, "pending")}
            scheduler = bot.runtime.scheduler
            for offset in (30, 900, 1800):
                assert scheduler.next_run(job_key(release.id, "error rate", offset)) == (
                    release.finished_at + timedelta(seconds=offset)
                )
            [announced] = [t for t in thread(bot, release) if "every 30s for 30m" in t]
            assert "Post-release checks scheduled" not in announced, "one line for the window, not 60 times"
            assert prometheus.queries == []


# --- one reply, a running tally ----------------------------------------------------------------------------


async def test_every_tick_edits_one_reply_with_the_running_tally(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.001) as prometheus:
        config = watch_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            assert release.finished_at is not None
            for minute in range(1, 6):
                assert await tick(bot, release, timedelta(minutes=minute)) == 1

            [reply] = window_messages(bot, release)
            texts = shown(reply)
            assert texts[0] == "error rate: 1/5 PASS so far · last 0.001 (+1m)"
            assert texts[-1] == "error rate: 5/5 PASS · last 0.001 (+5m)"
            assert [re.search(r"(\d)/5", t).group(1) for t in texts] == ["1", "2", "3", "4", "5"]  # type: ignore[union-attr]
            assert "Window over." in str(reply.blocks)
            # Each tick measured as of its own due time.
            assert [at for _, at in prometheus.queries] == [
                release.finished_at + timedelta(minutes=m) for m in range(1, 6)
            ]
            assert states(bot, release) == ["done"] * 5
            assert {r["reply_ts"] for r in rows(bot, release)} == {reply.ts}
            assert bot.store.get_release(release.id).verdict == "pass"  # type: ignore[union-attr]
            assert buttons(bot, release) == []


# --- failure_limit and cancel on FAIL -----------------------------------------------------------------------


async def test_failures_within_the_limit_are_tolerated_and_the_one_past_it_fails(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.001) as prometheus:
        prometheus.script = [0.001, 0.3, 0.001, 0.3]  # FAIL at +2m (tolerated), FAIL at +4m (over the limit)
        config = watch_config(tmp_path / "deploys.log", prometheus.url, failure_limit=1)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            await tick(bot, release, timedelta(minutes=2))  # +1m and +2m, in order
            assert states(bot, release) == ["done", "done", "pending", "pending", "pending"]
            assert bot.store.get_release(release.id).verdict == "pass", "a tolerated FAIL is not the release's"  # type: ignore[union-attr]
            assert buttons(bot, release) == [], "nobody is pinged about a tolerated FAIL"
            [reply] = window_messages(bot, release)
            assert reply.text == "error rate: 2/5 PASS so far · last 0.3 (+2m)"
            assert "1 fail (limit 1)" in str(reply.blocks)

            await tick(bot, release, timedelta(minutes=4))

            assert states(bot, release) == ["done", "done", "done", "done", "cancelled"]
            assert [r["verdict"] for r in rows(bot, release)][:4] == ["pass", "fail", "pass", "fail"]
            [reply] = window_messages(bot, release)
            assert reply.text == "error rate: 4/5 FAIL · last 0.3 (+4m)"
            assert "more than 1 failed" in str(reply.blocks)
            assert bot.store.get_release(release.id).verdict == "fail"  # type: ignore[union-attr]
            assert any("1 pending check(s) cancelled: a check failed" in t for t in thread(bot, release))
            assert bot.runtime.scheduler.next_run(job_key(release.id, "error rate", 300)) is None
            assert buttons(bot, release) == [["check_rollback", "check_dismiss"]]
            assert await tick(bot, release, timedelta(minutes=5)) == 0, "the cancelled tick never runs"
            assert len(prometheus.queries) == 4


async def test_the_first_fail_with_no_limit_rolls_back_under_auto_rollback(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.001) as prometheus:
        prometheus.script = [0.001, 0.3]
        config = watch_config(
            tmp_path / "deploys.log",
            prometheus.url,
            on_check_failure="auto_rollback",
            rollback={"approvals": {"required": 0}},
        )
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            await tick(bot, release, timedelta(minutes=2))

            assert states(bot, release) == ["done", "done", "cancelled", "cancelled", "cancelled"]
            assert any("rolling back automatically" in t for t in thread(bot, release))
            [rollback] = [r for r in bot.store.history("notify", "prod", 5) if r.kind is ReleaseKind.ROLLBACK]
            assert rollback.state is ReleaseState.SUCCEEDED and bot.deploys()[-1] == "notify 1.2.2 prod 100"
            assert len(window_messages(bot, release)) == 1


# --- restart mid-window -------------------------------------------------------------------------------------


async def test_a_restart_mid_window_neither_loses_nor_repeats_a_tick_and_keeps_the_reply(tmp_path: Path) -> None:
    clock = wall_clock()
    async with FakePrometheus(value=0.001) as prometheus, FakeSlackWebAPI() as slack:
        slack.set_usergroup("S01PLATFORM", ["U01PLATFORM"])
        config = watch_config(tmp_path / "deploys.log", prometheus.url)
        async with bot_on(tmp_path, slack, clock, config) as first:
            release = await release_to_prod(first, "1.3.0")
            assert release.finished_at is not None
            await tick(first, release, timedelta(minutes=2))
            [before] = window_messages(first, release)
        assert len(prometheus.queries) == 2

        clock.set(release.finished_at + timedelta(minutes=4, seconds=10))  # down over +3m and +4m
        async with bot_on(tmp_path, slack, clock, config) as second:
            await second.settle()  # start-up takes the missed ticks, once each, as of their due times
            assert [at for _, at in prometheus.queries] == [
                release.finished_at + timedelta(minutes=m) for m in range(1, 5)
            ]
            assert states(second, release) == ["done", "done", "done", "done", "pending"]
            assert second.runtime.scheduler.next_run(job_key(release.id, "error rate", 300)) == (
                release.finished_at + timedelta(minutes=5)
            )
            # The restarted bot edits the reply the first one posted (its ts is on the rows), posting none.
            [after] = window_messages(second, release)
            assert after.ts == before.ts
            assert after.text == "error rate: 4/5 PASS so far · last 0.001 (+4m)"
            assert await second.engine.checks.run_due_measurements() == 0

        async with bot_on(tmp_path, slack, clock, config) as third:
            await third.settle()
            assert len(prometheus.queries) == 4, "a second restart measures nothing twice"
            assert states(third, release) == ["done", "done", "done", "done", "pending"]
            await tick(third, release, timedelta(minutes=5))
            [final] = window_messages(third, release)
            assert final.ts == before.ts and final.text == "error rate: 5/5 PASS · last 0.001 (+5m)"
            assert [r["offset_s"] for r in rows(third, release) if r["state"] == "done"] == [60, 120, 180, 240, 300]


# --- validation: path, and nothing stored or started ------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"every": "30s"}, "every needs for"),
        ({"for": "30m"}, "for needs every"),
        ({"every": 0.5, "for": "30m"}, "every must be at least 1s"),
        ({"every": "5m", "for": "1m"}, "for must be at least every"),
        ({"failure_limit": 2}, "failure_limit is for a watch window"),
        ({"every": "30s", "for": "5m", "failure_limit": -1}, "greater than or equal to 0"),
        ({"every": "30s", "for": "5m", "after": ["5m"]}, "not both"),
        ({"every": "1s", "for": "7d"}, "604800 measurements per release; at most 720"),
    ],
    ids=[
        "every-alone",
        "for-alone",
        "every-under-1s",
        "for-under-every",
        "limit-alone",
        "negative-limit",
        "both",
        "too-many-ticks",
    ],
)
def test_a_bad_window_is_an_error_at_the_check_and_nothing_starts(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    check = {"name": "error rate", "prometheus": QUERY, "fail_if": "> 0.05", **change}
    data = config_dict(tmp_path / "deploys.log")
    data["environments"]["prod"]["checks"] = [check]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    [error] = [str(e) for e in caught.value.errors]
    assert "environments.prod.checks[0]" in error and expected in error, error

    def bad(config: dict[str, Any]) -> None:
        config["environments"]["prod"]["checks"] = [check]

    path = write_config(tmp_path, bad)
    env = {**SLACK_ENV, "RELEASEBOT_DB": str(tmp_path / "db.sqlite")}
    result = run(["serve"], path, **env)
    assert result.exit_code == 2 and "environments.prod.checks[0]" in result.stderr and expected in result.stderr
    assert not (tmp_path / "db.sqlite").exists(), "nothing was stored"


def test_the_tally_of_rows_counts_fails_against_the_limit() -> None:
    def row(offset: int, verdict: str | None, state: str = "done") -> dict[str, Any]:
        return {
            "check_name": "c",
            "offset_s": offset,
            "every_s": 30,
            "failure_limit": 1,
            "state": state,
            "verdict": verdict,
            "value": 0.1,
        }

    counted = tally([row(30, "pass"), row(60, "fail"), row(90, None, "pending")], "c")
    assert (counted.measured, counted.failed, counted.verdict, counted.ended) == (2, 1, "pass", False)
    counted = tally([row(30, "fail"), row(60, "fail"), row(90, None, "cancelled")], "c")
    assert (counted.verdict, counted.ended, counted.cancelled) == ("fail", True, 1)
    counted = tally([row(30, "inconclusive"), row(60, "pass")], "c")
    assert (counted.verdict, counted.ended) == ("inconclusive", True)

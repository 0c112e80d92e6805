"""Post-release checks end to end: the real app, a real Prometheus (or a fake one speaking its API), Slack.

The store is the source of truth for the schedule; APScheduler only wakes the engine. Tests move the
bot's clock past an offset and call ``run_due_measurements`` — what the scheduler's job calls — and
read the APScheduler jobs to see that each pending row is armed at its due time.

The real-Prometheus tests read ``release time + offset``, so their clock is set five minutes behind the
wall clock: the +5m measurement then asks Prometheus about "now", where the exporter has data.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import http_app
from bot.config import parse_config
from bot.core.models import Release, ReleaseKind, ReleaseState
from bot.core.verdicts import unavailable
from bot.engine.checks import job_key
from bot.views import render
from tests.fakes import FakeSlackWebAPI
from tests.fakes.prometheus import FakePrometheus
from tests.fakes.slack_state import Message
from tests.harness import (
    CHANNEL,
    ONCALL1,
    ONCALL2,
    BotHarness,
    MutableClock,
    config_dict,
    harness_settings,
    running_bot,
    ship_to_prod,
)
from tests.prometheus_harness import PrometheusStack as Stack
from tests.prometheus_harness import prometheus_stack

THRESHOLDS = {"pass_if": "< 0.01", "fail_if": ">= 0.05"}
OFFSETS = ["5m", "15m", "30m"]


def error_ratio(series: str) -> str:
    """The spec's error-ratio query over a 10 s window (a few 1 s scrapes fill it).

    The shared Prometheus serves several scenarios at once, so each reads its own ``service`` series.
    """
    return (
        f'sum(rate(http_requests_total{{service="{series}",code=~"5.."}}[10s]))'
        f' / sum(rate(http_requests_total{{service="{series}"}}[10s]))'
    )


def checks_config(log: Path, prometheus_url: str, query: str = error_ratio("{service}"), **prod: Any) -> dict[str, Any]:
    """Prod always open (the clock may follow the wall clock) with one error-ratio check at 5/15/30 min."""
    prod.setdefault("checks", [{"name": "error rate", "prometheus": query, "after": OFFSETS, **THRESHOLDS}])
    config = config_dict(log, window="always", **prod)
    config["freezes"] = []  # the wall-clock tests must not meet the year-end freeze
    config["metrics"] = {"prometheus_url": prometheus_url, "timeout": "5s", "retries": 2, "retry_delay": "0s"}
    return config


# --- helpers ------------------------------------------------------------------------------------------


def wall_clock() -> MutableClock:
    """A test clock starting at the wall clock: APScheduler (real time) then fires no job mid-test."""
    return MutableClock(datetime.now(UTC).replace(microsecond=0))


async def release_to_prod(bot: BotHarness, version: str, *, first: bool = True) -> Release:
    """Ship ``version`` through staging to prod (1.2.2 already ran there) and return the prod release."""
    release = await ship_to_prod(bot, version, first=first)
    assert (release.version, release.state) == (version, ReleaseState.SUCCEEDED), bot.last_reply()
    return release


def thread(bot: BotHarness, release: Release) -> list[str]:
    """Each message of the release's thread as text plus its blocks, as the channel shows it."""
    found = bot.store.get_release(release.id)
    assert found is not None and found.thread_ts is not None
    return [
        m.text + "\n" + json.dumps(m.blocks, ensure_ascii=False)
        for m in bot.slack.messages(CHANNEL)
        if m.thread_ts == found.thread_ts
    ]


def measured(bot: BotHarness, release: Release, check: str = "error rate") -> list[str]:
    """The check's replies: one per measurement, or one for a whole outage of its backend."""
    return [t for t in thread(bot, release) if t.startswith(f"{check}: ")]


def check_messages(bot: BotHarness, release: Release, check: str = "error rate") -> list[Message]:
    """The check's replies as Slack keeps them, with their edit history."""
    found = current(bot, release)
    return [
        m for m in bot.slack.messages(CHANNEL) if m.thread_ts == found.thread_ts and m.text.startswith(f"{check}: ")
    ]


def versions(message: Message) -> list[str]:
    """Each version of a message people saw, oldest first: its first block's text."""
    shown = [*message.edits, {"blocks": message.blocks}]
    return [str(version["blocks"][0]["text"]["text"]) for version in shown]


def closed_port_url() -> str:
    """A loopback URL nothing listens on: the kernel handed the port out just now, and it is closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def buttons(bot: BotHarness, release: Release) -> list[list[str]]:
    """The action ids of every button row posted in the release's thread."""
    rows = []
    for text in thread(bot, release):
        blocks = json.loads(text.split("\n", 1)[1])
        for block in blocks:
            if block.get("type") == "actions":
                rows.append([e["action_id"] for e in block["elements"]])
    return rows


def current(bot: BotHarness, release: Release) -> Release:
    found = bot.store.get_release(release.id)
    assert found is not None
    return found


def states(bot: BotHarness, release: Release) -> dict[int, str]:
    return {r["offset_s"]: r["state"] for r in bot.store.measurements(release.id)}


async def measure_at(bot: BotHarness, release: Release, offset: timedelta) -> None:
    """Move the clock to ``release + offset`` and take what is due, as the scheduler's wake-up does."""
    assert release.finished_at is not None
    bot.clock.set(release.finished_at + offset)
    await bot.engine.checks.run_due_measurements()
    await bot.settle()  # a scheduler wake-up may have taken it instead: the effect is the same, once


# --- against a real Prometheus ------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    rates = [("low", "200", 199), ("low", "500", 1)]  # 0.5 % errors
    rates += [("high", "200", 80), ("high", "503", 20)]  # 20 % errors
    async with prometheus_stack(rates) as running:
        yield running


def wall_clock_minus_5m() -> MutableClock:
    return MutableClock(wall_clock().now() - timedelta(minutes=5))


@pytest.mark.prometheus
@pytest.mark.asyncio(loop_scope="module")
async def test_low_error_ratio_passes_in_the_thread(stack: Stack, tmp_path: Path) -> None:
    config = checks_config(tmp_path / "deploys.log", stack.prometheus.url, error_ratio("low"))
    async with running_bot(tmp_path, clock=wall_clock_minus_5m(), config=config) as bot:
        release = await release_to_prod(bot, "1.3.0")
        assert release.finished_at is not None
        rows = bot.store.measurements(release.id)
        assert [(r["offset_s"], r["state"]) for r in rows] == [(300, "pending"), (900, "pending"), (1800, "pending")]
        assert any("Post-release checks scheduled" in t for t in thread(bot, release))
        # Armed in APScheduler at release time + offset (the +5m one is due about now, so it may have fired).
        scheduler = bot.runtime.scheduler
        for offset in (900, 1800):
            assert scheduler.next_run(job_key(release.id, "error rate", offset)) == (
                release.finished_at + timedelta(seconds=offset)
            )

        await measure_at(bot, release, timedelta(minutes=5, seconds=30))

        assert states(bot, release) == {300: "done", 900: "pending", 1800: "pending"}
        [reply] = measured(bot, release)
        assert "error rate: pass" in reply and "(+5m)" in reply and "error rate = 0.005" in reply
        assert buttons(bot, release) == [], "a pass pings nobody"
        assert bot.store.get_release(release.id).verdict == "pass"  # type: ignore[union-attr]


@pytest.mark.prometheus
@pytest.mark.asyncio(loop_scope="module")
async def test_high_error_ratio_fails_and_on_call_rolls_back_at_once(stack: Stack, tmp_path: Path) -> None:
    config = checks_config(tmp_path / "deploys.log", stack.prometheus.url, error_ratio("high"))
    async with running_bot(tmp_path, clock=wall_clock_minus_5m(), config=config) as bot:
        release = await release_to_prod(bot, "1.3.0")
        await measure_at(bot, release, timedelta(minutes=5))

        [reply] = measured(bot, release)
        assert "error rate: fail" in reply and "error rate = 0.2" in reply
        ping = next(t for t in thread(bot, release) if "post-release check failed" in t)
        assert f"<@{ONCALL1}>" in ping and f"<@{ONCALL2}>" in ping
        assert buttons(bot, release) == [["check_rollback", "check_dismiss"]]
        assert "Roll back now" in ping and "Dismiss" in ping
        # A FAIL settles the verdict: the later measurements will not run.
        assert states(bot, release) == {300: "done", 900: "cancelled", 1800: "cancelled"}
        assert bot.store.get_release(release.id).verdict == "fail"  # type: ignore[union-attr]
        assert bot.deploys()[-1] == "notify 1.3.0 prod 100", "no automatic rollback with offer_rollback"

        # Roll back now, by on-call: their request is its own approval, so it runs at once — and once.
        for _ in range(2):
            await bot.click("check_rollback", str(release.id), user=ONCALL1)
        await bot.settle()
        assert "already requested" in bot.last_reply(ONCALL1)
        assert bot.store.pending_approvals("notify") == []

        assert bot.deploys()[-1] == "notify 1.2.2 prod 100"
        assert bot.store.get_release(release.id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]
        assert bot.store.env_state("notify", "prod").version == "1.2.2"  # type: ignore[union-attr]


@pytest.mark.prometheus
@pytest.mark.asyncio(loop_scope="module")
async def test_no_series_is_inconclusive_and_offers_looks_good(stack: Stack, tmp_path: Path) -> None:
    config = checks_config(
        tmp_path / "deploys.log", stack.prometheus.url, error_ratio("ghost"), on_check_failure="auto_rollback"
    )
    async with running_bot(tmp_path, clock=wall_clock_minus_5m(), config=config) as bot:
        release = await release_to_prod(bot, "1.3.0")
        await measure_at(bot, release, timedelta(minutes=5))

        [reply] = measured(bot, release)
        assert "error rate: inconclusive" in reply and "no data" in reply
        assert buttons(bot, release) == [["check_looks_good", "check_rollback"]]
        assert states(bot, release) == {300: "done", 900: "pending", 1800: "pending"}, "inconclusive cancels nothing"
        assert bot.deploys()[-1] == "notify 1.3.0 prod 100", "INCONCLUSIVE never rolls back, even auto_rollback"

        await bot.click("check_looks_good", str(release.id), user=ONCALL1)
        await bot.click("check_looks_good", str(release.id), user=ONCALL2)
        await bot.settle()
        assert "Noted: looks good" in bot.last_reply(ONCALL1)
        assert "already noted" in bot.last_reply(ONCALL2)
        assert sum("looks good" in t for t in thread(bot, release)) == 1
        assert bot.store.get_release(release.id).healthy is True  # type: ignore[union-attr]


@pytest.mark.prometheus
@pytest.mark.asyncio(loop_scope="module")
async def test_prometheus_stopped_is_error_then_inconclusive_and_never_rolls_back(tmp_path: Path) -> None:
    # Ours alone, to stop it.
    async with prometheus_stack([("notify", "200", 199), ("notify", "500", 1)]) as private_stack:
        private = private_stack.prometheus
        config = checks_config(tmp_path / "deploys.log", private.url, on_check_failure="auto_rollback")
        async with running_bot(tmp_path, clock=wall_clock_minus_5m(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            await measure_at(bot, release, timedelta(minutes=5))
            assert [r for r in measured(bot, release) if "pass" in r.split("\n")[0]], "up: the check passes"

            await private.stop()
            await measure_at(bot, release, timedelta(minutes=15))

            [outage] = measured(bot, release)[1:]
            assert outage.split("\n")[0] == "error rate: inconclusive (metrics unavailable, attempt 3 of 3)"
            assert outage.count("cannot connect to Prometheus") == 1, "the error is said once"
            [_, message] = check_messages(bot, release)
            assert [re.findall(r"attempt \d of \d", v) for v in versions(message)] == [
                ["attempt 1 of 3"],
                ["attempt 2 of 3"],
                ["attempt 3 of 3"],
                ["attempt 3 of 3"],
            ], "each attempt edits the one reply"
            assert states(bot, release) == {300: "done", 900: "done", 1800: "pending"}
            assert bot.store.get_release(release.id).verdict == "inconclusive"  # type: ignore[union-attr]
            assert buttons(bot, release) == [["check_looks_good", "check_rollback"]]
            assert bot.deploys()[-1] == "notify 1.3.0 prod 100", "an unreachable backend never rolls back"
            assert [r for r in bot.store.history("notify", "prod", 5) if r.kind is ReleaseKind.ROLLBACK] == []


# --- against a fake Prometheus (same wire format) -------------------------------------------------------


async def test_auto_rollback_on_fail_rolls_back_by_itself(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.3) as prometheus:
        config = checks_config(
            tmp_path / "deploys.log",
            prometheus.url,
            on_check_failure="auto_rollback",
            rollback={"approvals": {"required": 0}},
        )
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            await measure_at(bot, release, timedelta(minutes=5))

            assert any("rolling back automatically" in t for t in thread(bot, release))
            assert buttons(bot, release) == [], "nobody needs to click"
            [rollback] = [r for r in bot.store.history("notify", "prod", 5) if r.kind is ReleaseKind.ROLLBACK]
            assert (rollback.version, rollback.state, rollback.requested_by) == (
                "1.2.2",
                ReleaseState.SUCCEEDED,
                "release-bot",
            )
            assert bot.deploys()[-1] == "notify 1.2.2 prod 100"
            original = bot.store.get_release(release.id)
            assert original is not None and original.state is ReleaseState.ROLLED_BACK and original.change_failure


async def test_restart_runs_the_missed_measurement_once_and_keeps_pending_times(tmp_path: Path) -> None:
    clock = wall_clock()  # the pending rows' APScheduler jobs lie in the future and stay armed
    db = tmp_path / "releasebot.db"
    async with FakePrometheus(value=0.002) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=clock, config=config, db_path=db) as first:
            release = await release_to_prod(first, "1.3.0")
            assert release.finished_at is not None
            due = {r["offset_s"]: r["due_at"] for r in first.store.pending_measurements(release.id)}
            assert due == {s: release.finished_at + timedelta(seconds=s) for s in (300, 900, 1800)}
            assert {s: first.runtime.scheduler.next_run(job_key(release.id, "error rate", s)) for s in due} == due
        assert prometheus.queries == [], "nothing was due before the stop"

        clock.advance(minutes=6)  # the bot is down while the +5m offset passes
        async with running_bot(tmp_path, clock=clock, config=config, db_path=db) as second:
            await second.settle()
            # Start-up took the missed +5m measurement, once, as of its due time.
            assert [at for _, at in prometheus.queries] == [due[300]]
            assert states(second, release) == {300: "done", 900: "pending", 1800: "pending"}
            assert len(measured(second, release)) == 1
            pending = {r["offset_s"]: r["due_at"] for r in second.store.pending_measurements(release.id)}
            assert pending == {900: due[900], 1800: due[1800]}, "the pending ones keep their times"
            scheduler = second.runtime.scheduler
            assert {s: scheduler.next_run(job_key(release.id, "error rate", s)) for s in pending} == pending
            assert scheduler.next_run(job_key(release.id, "error rate", 300)) is None
            assert await second.engine.checks.run_due_measurements() == 0

        async with running_bot(tmp_path, clock=clock, config=config, db_path=db) as third:
            await third.settle()
            assert len(prometheus.queries) == 1, "a second restart measures nothing twice"
            assert measured(third, release) == []
            clock.advance(minutes=10)  # past +15m
            assert await third.engine.checks.run_due_measurements() == 1
            assert await third.engine.checks.run_due_measurements() == 0
            await third.settle()
            assert [at for _, at in prometheus.queries] == [due[300], due[900]]
            assert states(third, release) == {300: "done", 900: "done", 1800: "pending"}
            done = third.store.sql.query("SELECT count(*) AS n FROM measurements WHERE state = 'done'")
            assert done[0]["n"] == 2


async def test_a_newer_release_cancels_the_older_ones_pending_checks(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.001) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            older = await release_to_prod(bot, "1.3.0")
            await measure_at(bot, older, timedelta(minutes=5))
            newer = await release_to_prod(bot, "1.3.1", first=False)

            assert states(bot, older) == {300: "done", 900: "cancelled", 1800: "cancelled"}
            assert any("2 pending check(s) cancelled: superseded by 1.3.1" in t for t in thread(bot, older))
            scheduler = bot.runtime.scheduler
            assert not [k for k in scheduler.job_ids() if k.startswith(f"check:{older.id}:")]
            assert states(bot, newer) == {300: "pending", 900: "pending", 1800: "pending"}

            bot.clock.advance(hours=1)
            assert await bot.engine.checks.run_due_measurements() == 3, "only the newer release's rows run"
            await bot.settle()
            assert len(measured(bot, older)) == 1
            assert len(measured(bot, newer)) == 3


async def test_the_older_checks_stop_when_the_newer_release_starts_even_if_it_then_fails(tmp_path: Path) -> None:
    """Superseded when the newer release starts, not when it succeeds: its checks would measure, and offer to
    roll back, what is being replaced."""
    async with FakePrometheus(value=0.001) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            older = await release_to_prod(bot, "1.3.0")
            bot.add_candidate("1.3.1")
            await bot.command("staging 1.3.1")
            await bot.settle()
            (tmp_path / "deploys.log.fail").write_text("prod refused the rollout\n")
            await bot.command("prod")
            await bot.settle()

            newer = bot.store.history("notify", "prod", 1)[0]
            assert (newer.version, newer.state) == ("1.3.1", ReleaseState.FAILED)
            assert states(bot, older) == {300: "cancelled", 900: "cancelled", 1800: "cancelled"}
            assert any("3 pending check(s) cancelled: superseded by 1.3.1" in t for t in thread(bot, older))
            assert not [k for k in bot.runtime.scheduler.job_ids() if k.startswith(f"check:{older.id}:")]


async def test_a_rollback_cancels_the_pending_checks(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.001) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url, rollback={"approvals": {"required": 0}})
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            await bot.command("rollback prod", user=ONCALL1)
            await bot.settle()

            assert current(bot, release).state is ReleaseState.ROLLED_BACK, bot.last_reply(ONCALL1)
            assert states(bot, release) == {300: "cancelled", 900: "cancelled", 1800: "cancelled"}
            assert not [k for k in bot.runtime.scheduler.job_ids() if k.startswith(f"check:{release.id}:")]
            bot.clock.advance(hours=1)
            assert await bot.engine.checks.run_due_measurements() == 0
            assert prometheus.queries == []


# --- a metrics backend that cannot be read: one reply per check, edited in place --------------------------

LATENCY = 'histogram_quantile(0.99, sum by (le) (rate(request_seconds_bucket{service="{service}"}[5m])))'


def two_checks(after: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": "error rate", "prometheus": error_ratio("{service}"), "after": after, **THRESHOLDS},
        {"name": "p99 latency", "prometheus": LATENCY, "after": after, "pass_if": "< 0.5"},
    ]


async def test_an_outage_over_two_offsets_is_one_reply_per_check_edited_in_place(tmp_path: Path) -> None:
    url = closed_port_url()
    config = checks_config(
        tmp_path / "deploys.log", url, checks=two_checks(["15m", "30m"]), on_check_failure="auto_rollback"
    )
    async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
        release = await release_to_prod(bot, "1.3.0")
        await measure_at(bot, release, timedelta(minutes=15))
        await measure_at(bot, release, timedelta(minutes=30))

        story = thread(bot, release)
        for check in ("error rate", "p99 latency"):
            assert sum(check in t for t in story) == 1, f"one reply for {check}, not one per attempt or offset"
            [message] = check_messages(bot, release, check)
            assert message.text == f"{check}: inconclusive (metrics unavailable, attempt 3 of 3)"
            [now_shown] = versions(message)[-1:]
            assert now_shown.startswith(
                f"❔ *{check}* (+15m, +30m): metrics unavailable — attempt 3 of 3: "
                f"cannot connect to Prometheus at {url}: "
            )
            everything = message.text + json.dumps(message.blocks, ensure_ascii=False)
            assert everything.count("cannot connect to Prometheus") == 1, "the error is said once"
            assert "never fails a check or rolls back" in everything
            # Posted at the first failed attempt, then edited: three attempts and the verdict per offset.
            shown = [(v.split(" (")[1].split(")")[0], re.findall(r"attempt \d of 3", v)[0]) for v in versions(message)]
            assert shown == [
                ("+15m", "attempt 1 of 3"),
                ("+15m", "attempt 2 of 3"),
                ("+15m", "attempt 3 of 3"),
                ("+15m", "attempt 3 of 3"),
                ("+15m, +30m", "attempt 1 of 3"),
                ("+15m, +30m", "attempt 2 of 3"),
                ("+15m, +30m", "attempt 3 of 3"),
                ("+15m, +30m", "attempt 3 of 3"),
            ]
            rows = [r for r in bot.store.measurements(release.id) if r["check_name"] == check]
            assert [(r["state"], r["verdict"], r["outage_ts"]) for r in rows] == [
                ("done", "inconclusive", message.ts)
            ] * 2
        # SPEC: unreachable is INCONCLUSIVE, never FAIL, never an automatic rollback; on-call is asked once.
        assert sum("post-release check is inconclusive" in t for t in story) == 1
        assert buttons(bot, release) == [["check_looks_good", "check_rollback"]]
        assert current(bot, release).verdict == "inconclusive"
        assert bot.deploys()[-1] == "notify 1.3.0 prod 100", "an unreachable backend never rolls back"
        assert [r for r in bot.store.history("notify", "prod", 5) if r.kind is ReleaseKind.ROLLBACK] == []


async def test_a_backend_back_after_an_outage_turns_the_reply_into_the_result(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.002) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            prometheus.down = True
            await measure_at(bot, release, timedelta(minutes=5))
            prometheus.down = False
            await measure_at(bot, release, timedelta(minutes=15))
            await measure_at(bot, release, timedelta(minutes=30))

            first, second = check_messages(bot, release)
            assert versions(first)[-2].startswith("❔ *error rate* (+5m): metrics unavailable — attempt 3 of 3: ")
            assert (
                versions(first)[-1]
                == "✅ *error rate* (+15m): error rate = 0.002 (pass if &lt; 0.01, fail if &gt;= 0.05)"
            )
            assert "Metrics were unavailable at +5m." in json.dumps(first.blocks, ensure_ascii=False)
            assert first.text == "error rate: pass"
            assert (second.text, second.edits) == ("error rate: pass", []), "after the outage, one reply per offset"
            assert [r["outage_ts"] for r in bot.store.measurements(release.id)] == [first.ts, None, None]
            assert current(bot, release).verdict == "inconclusive"


@asynccontextmanager
async def bot_on(
    tmp_path: Path, slack: FakeSlackWebAPI, clock: MutableClock, config: dict[str, Any]
) -> AsyncIterator[BotHarness]:
    """One run of the bot; runs of a test share the database and Slack, as restarts of one deployment do."""
    parsed, db = parse_config(config), tmp_path / "releasebot.db"
    app = http_app(harness_settings(slack, db), parsed, tmp_path, clock=clock)
    async with TestClient(TestServer(app)) as client:
        bot = BotHarness(
            slack=slack, client=client, clock=clock, log=tmp_path / "deploys.log", db_path=db, config=parsed
        )
        yield bot
        await bot.settle()


async def test_an_outage_across_a_restart_still_edits_the_same_reply(tmp_path: Path) -> None:
    config = checks_config(tmp_path / "deploys.log", closed_port_url(), checks=two_checks(["15m", "30m"])[:1])
    clock = wall_clock()
    async with FakeSlackWebAPI() as slack:
        slack.set_usergroup("S01PLATFORM", ["U01PLATFORM"])
        async with bot_on(tmp_path, slack, clock, config) as first:
            release = await release_to_prod(first, "1.3.0")
            await measure_at(first, release, timedelta(minutes=15))
            [before] = check_messages(first, release)
        async with bot_on(tmp_path, slack, clock, config) as second:
            await measure_at(second, release, timedelta(minutes=30))
            [after] = check_messages(second, release)
            assert after.ts == before.ts, "the reply's ts was kept in the store"
            assert versions(after)[-1].startswith("❔ *error rate* (+15m, +30m): metrics unavailable")


def test_an_error_asking_again_cannot_fix_says_it_was_not_retried() -> None:
    check = parse_config(checks_config(Path("deploys.log"), "http://prometheus")).environments["prod"].checks[0]
    error = "query returned 2 series; aggregate it to one with sum(), max() or avg()"
    message = render.check_reply(unavailable(check, error, attempts=1), "+5m", of=3)
    assert message.blocks[0]["text"]["text"] == (
        f"❔ *error rate* (+5m): metrics unavailable — attempt 1 of 3, not retried: {error}"
    )
    assert message.text == "error rate: inconclusive (metrics unavailable, attempt 1 of 3, not retried)"

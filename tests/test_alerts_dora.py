"""Alert-started incidents in DORA: a release with one in its watch window is a change failure, restored at the
resolve or the rollback, whichever is first; the summary says which failures came from alerts.

The pure rules (bot.core.dora.with_incident) first, then through the real app: Alertmanager's body posted to
``/api/v1/alerts``, the summary read back as the engine computes and words it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core import dora
from bot.core.models import ReleaseState
from tests.harness import ONCALL1, blocks_text, buttons
from tests.test_alerts_api import alert_messages, alerting_bot, alertmanager_body, post_alerts, released

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
DAY = (datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))


def prod_release(
    *,
    outcome: dora.Outcome = "succeeded",
    detected: datetime | None = None,
    recovered: datetime | None = None,
    verdict: dora.Verdict | None = "pass",
) -> dora.ProdRelease:
    return dora.ProdRelease(1, "notify", T0, outcome, verdict, T0 - timedelta(hours=2), detected, recovered)


def test_an_incident_in_the_watch_window_makes_a_healthy_release_a_change_failure() -> None:
    healthy = prod_release()
    assert not healthy.is_change_failure
    failed = dora.with_incident(healthy, T0 + timedelta(minutes=5), T0 + timedelta(minutes=17))
    assert failed.is_change_failure and failed.alerted
    assert failed.failure_detected_at == T0 + timedelta(minutes=5)
    assert failed.recovered_at == T0 + timedelta(minutes=17)
    report = dora.compute_dora([failed], start=DAY[0], end=DAY[1])
    assert (report.change_failure_rate.failures, report.change_failure_rate.from_alerts) == (1, 1)
    assert report.recovery_time.value == timedelta(minutes=12)


def test_time_to_restore_runs_to_the_rollback_when_it_comes_before_the_resolve() -> None:
    rolled_back = prod_release(
        outcome="rolled_back", detected=T0 + timedelta(minutes=8), recovered=T0 + timedelta(minutes=9)
    )
    merged = dora.with_incident(rolled_back, T0 + timedelta(minutes=5), T0 + timedelta(minutes=40))
    assert merged.failure_detected_at == T0 + timedelta(minutes=5), "detected when the alert fired"
    assert merged.recovered_at == T0 + timedelta(minutes=9), "restored by the rollback, before the resolve"
    report = dora.compute_dora([merged], start=DAY[0], end=DAY[1])
    assert report.recovery_time.value == timedelta(minutes=4)
    assert report.change_failure_rate.failures == 1, "one failure, not two"


def test_an_open_incident_is_not_recovered_yet_and_the_earliest_of_several_counts() -> None:
    first = dora.with_incident(prod_release(), T0 + timedelta(minutes=10), None)
    assert first.recovered_at is None
    both = dora.with_incident(first, T0 + timedelta(minutes=3), T0 + timedelta(minutes=20))
    assert both.incident_at == T0 + timedelta(minutes=3) and both.failure_detected_at == T0 + timedelta(minutes=3)
    assert both.recovered_at == T0 + timedelta(minutes=20)
    report = dora.compute_dora([first], start=DAY[0], end=DAY[1])
    assert report.recovery_time.unrecovered == 1


def test_releases_without_incidents_are_counted_as_before() -> None:
    releases = [prod_release(), prod_release(outcome="failed", detected=T0, recovered=None)]
    report = dora.compute_dora(releases, start=DAY[0], end=DAY[1])
    assert (report.change_failure_rate.failures, report.change_failure_rate.from_alerts) == (1, 0)


async def test_the_summary_counts_an_alert_in_the_watch_window_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        start = bot.clock.now() + timedelta(minutes=5)
        bot.clock.advance(minutes=6)
        await post_alerts(bot, alertmanager_body(starts=start, service="notify", env="prod"))
        bot.clock.advance(minutes=11)
        await post_alerts(
            bot, alertmanager_body("resolved", starts=start, ends=bot.clock.now(), service="notify", env="prod")
        )
        summary = await bot.engine.summaries.summary("day")
        cfr = summary.report.change_failure_rate
        assert (cfr.failures, cfr.sample_size, cfr.from_alerts) == (1, 1, 1)
        assert summary.report.recovery_time.value == timedelta(minutes=12), "first firing to resolved"
        [failure] = summary.failures
        assert failure.release.release_id == release_id and failure.thread_link is not None
        from bot.views.summary import summary_message

        text = blocks_text(summary_message(summary, bot.config.zone).blocks)
        assert "100% (1 of 1; 1 from alerts)" in text
        assert "succeeded, alert fired in its watch window, recovered in 12m" in text
        release = bot.store.get_release(release_id)
        assert release is not None and release.state is ReleaseState.SUCCEEDED, "DORA reads; it changes nothing"


async def test_an_alert_outside_the_watch_window_is_not_a_change_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        bot.clock.advance(minutes=45)
        await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        summary = await bot.engine.summaries.summary("day")
        assert summary.report.change_failure_rate.failures == 0
        assert summary.failures == ()


async def test_restore_runs_to_the_rollback_an_alert_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        start = bot.clock.now() + timedelta(minutes=2)
        bot.clock.advance(minutes=3)
        await post_alerts(bot, alertmanager_body(starts=start, service="notify", env="prod"))
        bot.clock.advance(minutes=4)
        await bot.click("check_rollback", buttons(alert_messages(bot)[0].blocks)["check_rollback"], user=ONCALL1)
        await bot.settle()
        bot.clock.advance(minutes=30)
        await post_alerts(
            bot, alertmanager_body("resolved", starts=start, ends=bot.clock.now(), service="notify", env="prod")
        )
        summary = await bot.engine.summaries.summary("day")
        cfr = summary.report.change_failure_rate
        assert (cfr.failures, cfr.from_alerts) == (1, 1)
        # Fired at +2, rolled back (done) at +7, resolved at +37: restored by the rollback, 5 minutes.
        assert summary.report.recovery_time.value == timedelta(minutes=5)


# --- a watch window's tolerated failures are not detections (bot/store/reports.py) ---------------------------


def _watch_config(log: Path, url: str, **prod: object) -> dict[str, object]:
    from tests.test_scenario_checks import checks_config

    check = {
        "name": "error rate",
        "prometheus": 'sum(rate(http_requests_total{service="{service}",code=~"5.."}[1m]))',
        "fail_if": "> 0.05",
        "every": "1m",
        "for": "5m",
        "failure_limit": 1,
    }
    return checks_config(log, url, checks=[check], **prod)


async def _tick(bot: object, finished: datetime, minute: int) -> None:
    from tests.harness import BotHarness

    assert isinstance(bot, BotHarness)
    bot.clock.set(finished + timedelta(minutes=minute))
    await bot.engine.checks.run_due_measurements()
    await bot.settle()


async def test_dora_dates_a_window_failure_at_the_tick_that_failed_it_not_a_tolerated_one(tmp_path: Path) -> None:
    from tests.fakes.prometheus import FakePrometheus
    from tests.harness import running_bot
    from tests.test_scenario_checks import release_to_prod, wall_clock

    async with FakePrometheus(value=0.001) as prometheus:
        prometheus.script = [0.3, 0.001, 0.3]  # +1m FAIL (tolerated: failure_limit 1), +2m PASS, +3m FAIL: over
        config = _watch_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            finished = release.finished_at
            assert finished is not None
            for minute in (1, 2, 3):
                await _tick(bot, finished, minute)
            failed = bot.store.get_release(release.id)
            assert failed is not None and failed.verdict == "fail"
            fails = [r for r in bot.store.measurements(release.id) if r["verdict"] == "fail"]
            assert [r["offset_s"] for r in fails] == [60, 180], "two FAIL rows; the first was tolerated"
            period = (finished - timedelta(hours=1), finished + timedelta(hours=1))
            report, releases = await bot.engine.summaries.dora_between(*period)
            [prod] = [r for r in releases if r.release_id == release.id]
            assert prod.is_change_failure
            assert prod.failure_detected_at == finished + timedelta(minutes=3), "when the window failed, not +1m"
            assert report.change_failure_rate.failures == 1


async def test_a_window_that_only_tolerated_a_failure_is_not_a_change_failure_nor_its_detection(
    tmp_path: Path,
) -> None:
    from tests.fakes.prometheus import FakePrometheus
    from tests.harness import ONCALL1, running_bot
    from tests.test_scenario_checks import release_to_prod, wall_clock

    async with FakePrometheus(value=0.001) as prometheus:
        prometheus.script = [0.3, 0.001, 0.001]  # +1m FAIL, tolerated; the window passes on
        config = _watch_config(tmp_path / "deploys.log", prometheus.url, rollback={"approvals": {"required": 0}})
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            finished = release.finished_at
            assert finished is not None
            for minute in (1, 2, 3):
                await _tick(bot, finished, minute)
            assert bot.store.get_release(release.id).verdict == "pass"  # type: ignore[union-attr]
            period = (finished - timedelta(hours=1), finished + timedelta(hours=1))
            report, _ = await bot.engine.summaries.dora_between(*period)
            assert report.change_failure_rate.failures == 0, "a tolerated FAIL fails no release"
            # Rolled back later for another reason: detected when the rollback was asked for, not at the +1m tick.
            bot.clock.set(finished + timedelta(minutes=4))
            await bot.command("rollback prod", user=ONCALL1)
            await bot.settle()
            assert bot.store.get_release(release.id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]
            _, releases = await bot.engine.summaries.dora_between(*period)
            [prod] = [r for r in releases if r.release_id == release.id]
            assert prod.failure_detected_at == finished + timedelta(minutes=4)

"""What a webhook call could not tell is not lost: the store commits a call's alerts before anything is told, so a
failure while telling one incident leaves the others told, answers 500 (Alertmanager retries), and the retry —
the same body, a repeat with no news — finishes it: the message, and an ``auto_rollback`` never asked. A start
(``Alerts.recover``) finishes it too.

The real signed HTTP app, SQLite and the fake Slack; a store failure injected once into the real store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.alerts_models import CheckedAlert
from bot.core.models import ReleaseState
from bot.store.db import StoreWriteError
from tests.harness import ONCALL1, BotHarness, blocks_text
from tests.test_alerts_api import alert_messages, alerting_bot, alertmanager_body, grouped, post_alerts, released

STAGING_FP = "5a6e5a6e5a6e5a6e"


def fail_once(monkeypatch: pytest.MonkeyPatch, bot: BotHarness, method: str, when: Callable[..., bool]) -> list[int]:
    """Make the store's ``method`` raise StoreWriteError the first time ``when(**kwargs)`` holds (as a full disk
    would); the list counts the failures."""
    real = getattr(bot.store, method)
    failures: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if not failures and when(*args, **kwargs):
            failures.append(1)
            raise StoreWriteError("database or disk is full")
        return real(*args, **kwargs)

    monkeypatch.setattr(bot.store, method, flaky)
    return failures


def rollbacks(bot: BotHarness) -> list[Any]:
    return [r for r in bot.store.history("notify", "prod", 10) if r.kind.value == "rollback"]


async def test_a_failure_telling_one_incident_tells_the_others_answers_500_and_the_retry_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(
        tmp_path, monkeypatch, on_alert="auto_rollback", rollback={"approvals": {"required": 0}}
    ) as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=3)
        starts = bot.clock.now()
        body = grouped(
            alertmanager_body(starts=starts, service="notify", env="prod"),
            alertmanager_body(
                starts=starts, fingerprint=STAGING_FP, name="QueueBacklog", service="notify", env="staging"
            ),
        )
        # The prod incident (told first) cannot be audited: its telling stops there.
        failures = fail_once(
            monkeypatch,
            bot,
            "audit",
            lambda **kw: kw["action"] == "incident.opened" and kw["detail"]["release_id"] == release_id,
        )
        response = await post_alerts(bot, body)
        assert response.status == 500, "Alertmanager retries a 5xx"
        await bot.settle()
        assert failures == [1]
        prod, staging = bot.store.sql.query("SELECT id, env, ts, rollback_asked_at FROM incidents ORDER BY id")
        assert (prod["env"], prod["ts"], prod["rollback_asked_at"]) == ("prod", None, None), "nothing told of prod"
        assert staging["ts"] is not None, "the other incident of the call was told all the same"
        assert bot.store.get_release(release_id).state is ReleaseState.SUCCEEDED  # type: ignore[union-attr]
        assert [m.text for m in alert_messages(bot)] == ["🚨 Alert firing: QueueBacklog for notify staging"]

        # Alertmanager's retry: the same body, no news — and what the first call left undone is done.
        response = await post_alerts(bot, body)
        answer = await response.json()
        assert response.status == 200, answer
        assert answer["incidents"] == []
        await bot.settle()
        prod_messages = [m for m in alert_messages(bot) if "notify prod" in m.text]
        assert len(prod_messages) == 1 and f"<@{ONCALL1}>" in blocks_text(prod_messages[0].blocks)
        assert bot.store.get_release(release_id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]
        assert [r.requested_by for r in rollbacks(bot)] == ["release-bot"]
        assert bot.store.sql.one(
            "SELECT rollback_asked_at IS NOT NULL AS asked FROM incidents WHERE id = ?", (prod["id"],)
        ) == {"asked": 1}

        # A third copy: nothing left to do, nothing posted or asked again.
        posts = len(bot.slack.calls_to("chat.postMessage"))
        assert (await post_alerts(bot, body)).status == 200
        await bot.settle()
        assert len(bot.slack.calls_to("chat.postMessage")) == posts
        assert len(rollbacks(bot)) == 1


async def test_a_rollback_asked_but_not_marked_is_asked_again_and_the_claim_refuses_it_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with alerting_bot(tmp_path, monkeypatch, on_alert="auto_rollback") as bot:  # prod: 1 on-call approval
        release_id = await released(bot)
        bot.clock.advance(minutes=3)
        body = alertmanager_body(starts=bot.clock.now(), service="notify", env="prod")
        failures = fail_once(monkeypatch, bot, "set_rollback_asked", lambda *a, **kw: True)
        assert (await post_alerts(bot, body)).status == 500
        await bot.settle()
        assert failures == [1]
        [rollback] = rollbacks(bot)
        assert rollback.state is ReleaseState.AWAITING_APPROVAL and rollback.rollback_of == release_id
        replies = len(bot.slack.messages(alert_messages(bot)[0].channel))

        with caplog.at_level(logging.WARNING, logger="release_bot.alerts"):
            assert (await post_alerts(bot, body)).status == 200
            await bot.settle()
        assert "refused: a rollback of this release was already requested" in caplog.text, "logged"
        assert not [m for m in bot.slack.messages(alert_messages(bot)[0].channel) if "was refused" in m.text], (
            "the refusal of a retry is not posted"
        )
        assert len(bot.slack.messages(alert_messages(bot)[0].channel)) == replies
        assert len(rollbacks(bot)) == 1, "one rollback however often it is asked"
        row = bot.store.sql.one("SELECT rollback_asked_at IS NOT NULL AS asked FROM incidents")
        assert row == {"asked": 1}, "the held claim means the ask was made: not asked again"


async def test_a_start_posts_the_message_and_asks_the_auto_rollback_an_interrupted_call_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(
        tmp_path, monkeypatch, on_alert="auto_rollback", rollback={"approvals": {"required": 0}}
    ) as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=3)
        firing = CheckedAlert("fp-crash", bot.clock.now(), None, True, "notify", "prod", "HighErrorRate", "5xx up")
        watch = {name: env.watch for name, env in bot.config.environments.items()}
        bot.store.ingest_alerts([firing], watch, bot.clock.now())  # recorded; then the process died
        assert alert_messages(bot) == []

        await bot.engine.alerts.recover()
        await bot.settle()
        [message] = alert_messages(bot)
        assert f"<@{ONCALL1}>" in blocks_text(message.blocks)
        assert bot.store.get_release(release_id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]
        assert [r.requested_by for r in rollbacks(bot)] == ["release-bot"]

        await bot.engine.alerts.recover()  # a second start: nothing left
        await bot.settle()
        assert len(alert_messages(bot)) == 1 and len(rollbacks(bot)) == 1


async def test_an_unasked_rollback_of_a_release_no_longer_live_is_not_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(
        tmp_path, monkeypatch, on_alert="auto_rollback", rollback={"approvals": {"required": 0}}
    ) as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=3)
        firing = CheckedAlert("fp-crash", bot.clock.now(), None, True, "notify", "prod", "HighErrorRate", "5xx up")
        watch = {name: env.watch for name, env in bot.config.environments.items()}
        bot.store.ingest_alerts([firing], watch, bot.clock.now())  # recorded; then the process died
        await bot.command("rollback prod", user=ONCALL1)  # meanwhile a person rolled it back
        await bot.settle()
        assert bot.store.get_release(release_id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]

        await bot.engine.alerts.recover()
        await bot.settle()
        assert [r.requested_by for r in rollbacks(bot)] == [ONCALL1], "nothing of it left to undo"

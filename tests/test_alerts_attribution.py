"""An alert is attributed to its release before it joins an open incident: an incident open since before a
release went out (about no release) does not swallow an alert about that release.

The real signed HTTP app, SQLite and the fake Slack; Alertmanager's captured bodies (tests/test_alerts_api.py).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.models import ReleaseState
from tests.harness import ONCALL1, blocks_text, buttons
from tests.test_alerts_api import alert_messages, alerting_bot, alertmanager_body, post_alerts, released

DISK = "d15cf1111100000a"
DISK_OTHER_VOLUME = "d15cf1111100000b"
ERRORS = "e44044044044044e"
LATENCY = "1a7e1a7e1a7e1a7e"


async def test_an_alert_about_a_new_release_opens_its_own_incident_beside_an_older_open_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(
        tmp_path, monkeypatch, on_alert="auto_rollback", rollback={"approvals": {"required": 0}}
    ) as bot:
        # DiskFilling has fired on notify/prod since yesterday: an incident about no release, in the channel.
        yesterday = bot.clock.now() - timedelta(hours=20)
        disk = alertmanager_body(starts=yesterday, fingerprint=DISK, name="DiskFilling", service="notify", env="prod")
        assert (await post_alerts(bot, disk)).status == 200
        [old] = bot.store.sql.query("SELECT * FROM incidents")
        assert old["release_id"] is None
        [old_message] = alert_messages(bot)
        assert old_message.thread_ts is None

        # 1.5.0 goes live; ten minutes later HighErrorRate fires.
        release_id = await released(bot, "1.5.0")
        release = bot.store.get_release(release_id)
        assert release is not None and release.thread_ts is not None
        bot.clock.advance(minutes=10)
        fired = bot.clock.now()
        errors = alertmanager_body(starts=fired, fingerprint=ERRORS, service="notify", env="prod")
        response = await post_alerts(bot, errors)
        answer = await response.json()
        assert response.status == 200, answer
        await bot.settle()

        new = bot.store.sql.one("SELECT * FROM incidents WHERE id != ?", (old["id"],))
        assert new is not None and new["release_id"] == release_id, "its own incident, about 1.5.0"
        assert answer["incidents"] == [{"id": new["id"], "release_id": release_id, "changes": ["opened"]}]
        [reply] = [m for m in alert_messages(bot) if m.ts == new["ts"]]
        assert reply.thread_ts == release.thread_ts, "a reply in 1.5.0's thread"
        assert f"<@{ONCALL1}>" in blocks_text(reply.blocks), "on-call is pinged"
        # auto_rollback acted, as the bot, once.
        assert bot.store.get_release(release_id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]
        rollbacks = [r for r in bot.store.history("notify", "prod", 10) if r.kind.value == "rollback"]
        assert len(rollbacks) == 1 and rollbacks[0].requested_by == "release-bot"
        # DORA counts it: a change failure from an alert.
        summary = await bot.engine.summaries.summary("day")
        assert summary.report.change_failure_rate.from_alerts == 1
        assert [i.id for i in bot.store.release_incidents(fired - timedelta(days=1), fired)] == [new["id"]]

        # The old incident is untouched: same row, its message never edited.
        assert bot.store.sql.one("SELECT * FROM incidents WHERE id = ?", (old["id"],)) == old
        assert bot.slack.message(old_message.channel, old_message.ts).edits == []

        # Later alerts each join their own incident: one that started during 1.5.0's window joins the new one...
        latency = alertmanager_body(
            starts=fired - timedelta(minutes=2), fingerprint=LATENCY, name="HighLatency", service="notify", env="prod"
        )
        answer = await (await post_alerts(bot, latency)).json()
        assert answer["incidents"] == [{"id": new["id"], "release_id": release_id, "changes": ["joined"]}]
        # ...and one that started yesterday, about no release, joins the old one.
        other_volume = alertmanager_body(
            starts=yesterday + timedelta(hours=1),
            fingerprint=DISK_OTHER_VOLUME,
            name="DiskFilling",
            service="notify",
            env="prod",
        )
        answer = await (await post_alerts(bot, other_volume)).json()
        assert answer["incidents"] == [{"id": old["id"], "release_id": None, "changes": ["joined"]}]
        by_incident = {
            row["fingerprint"]: row["incident_id"]
            for row in bot.store.sql.query("SELECT fingerprint, incident_id FROM alerts")
        }
        assert by_incident == {DISK: old["id"], DISK_OTHER_VOLUME: old["id"], ERRORS: new["id"], LATENCY: new["id"]}
        assert bot.count("incidents") == 2


async def test_two_open_incidents_about_no_release_are_one_too_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0019's index: one open incident per service, environment and release — NULL included."""
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        insert = (
            "INSERT INTO incidents (service, env, release_id, started_at, created_at) "
            "VALUES ('notify', 'prod', ?, '2026-11-26T10:00:00+00:00', '2026-11-26T10:00:00+00:00')"
        )
        bot.store.sql.execute(insert, (None,))
        bot.store.sql.execute(insert, (release_id,))  # about a release: beside the one about none
        for again in (None, release_id):
            with pytest.raises(sqlite3.IntegrityError):
                bot.store.sql.execute(insert, (again,))
        bot.store.sql.execute("UPDATE incidents SET resolved_at = started_at WHERE release_id IS NULL")
        bot.store.sql.execute(insert, (None,))  # once resolved, a new one may open
        assert bot.count("incidents") == 3


async def test_an_alert_outside_every_window_joins_the_open_incident_about_no_release_not_a_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=5)
        first = alertmanager_body(starts=bot.clock.now(), service="notify", env="prod")
        await post_alerts(bot, first)
        bot.clock.advance(minutes=40)  # past prod's 30-minute window: about no release
        later = alertmanager_body(
            starts=bot.clock.now(), fingerprint=LATENCY, name="HighLatency", service="notify", env="prod"
        )
        answer = await (await post_alerts(bot, later)).json()
        [incident] = answer["incidents"]
        assert incident["release_id"] is None and incident["changes"] == ["opened"]
        rows = bot.store.sql.query("SELECT release_id FROM incidents WHERE resolved_at IS NULL ORDER BY id")
        assert [r["release_id"] for r in rows] == [release_id, None]
        assert set(buttons(alert_messages(bot)[0].blocks)) >= {"alert_ack"}

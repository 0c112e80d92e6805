"""`GET /api/v1/events?since=&limit=`: the recorded events replayed in order, as CloudEvents, behind the API token.

Through the real HTTP app (tests/harness.py); every refusal names its field and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.api import API_PREFIX
from bot.bootstrap import EVENTS_PRUNE_JOB
from bot.config.events import PREFIX
from bot.events.cloudevents import envelope
from tests.harness import API_TOKEN, BotHarness

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def get(bot: BotHarness, headers: dict[str, str] | None = None, **query: str) -> tuple[int, Any]:
    response = await bot.client.get(f"{API_PREFIX}/events", params=query, headers=AUTH if headers is None else headers)
    return response.status, await response.json()


def snapshot(bot: BotHarness) -> tuple[int, int, int]:
    return bot.count("events"), bot.count("deliveries"), bot.count("audit")


def emit(bot: BotHarness, n: int) -> None:
    for i in range(n):
        bot.store.emit_event("train.departed", f"prod/train/{i}", {"env": "prod", "train": i}, bot.clock.now())


async def test_events_are_replayed_in_order_page_by_page(bot: BotHarness) -> None:
    emit(bot, 5)

    status, first = await get(bot, limit="2")
    _, second = await get(bot, since=str(first["next"]), limit="2")
    _, rest = await get(bot, since=str(second["next"]))
    _, none = await get(bot, since=str(rest["next"]))

    assert status == 200
    assert [e["data"]["train"] for e in first["events"] + second["events"] + rest["events"]] == [0, 1, 2, 3, 4]
    assert [e["releasebotseq"] for e in first["events"]] == [1, 2] and first["next"] == 2
    assert none == {"events": [], "next": rest["next"], "truncated": False}
    stored = bot.store.events_since(0, 1)[0]
    assert first["events"][0] == envelope(stored)  # what a webhook receives, byte for byte in meaning
    assert first["events"][0]["type"] == PREFIX + "train.departed"


async def test_a_replay_from_before_the_retention_says_it_is_truncated(bot: BotHarness) -> None:
    emit(bot, 3)  # 1-3
    bot.clock.advance(days=31)  # past the default retention of 30 days
    emit(bot, 2)  # 4-5
    prune = bot.runtime.scheduler.next_run(EVENTS_PRUNE_JOB)
    assert prune is not None and prune - datetime.now(UTC) <= timedelta(hours=1), "pruned hourly"

    await bot.runtime.events.prune()  # what that hourly job runs

    status, since_start = await get(bot)
    _, from_pruned = await get(bot, since="2")
    _, caught_up = await get(bot, since="3")
    assert status == 200 and since_start["truncated"] is True and from_pruned["truncated"] is True
    assert [e["releasebotseq"] for e in since_start["events"]] == [4, 5] and since_start["next"] == 5
    assert caught_up == {"events": since_start["events"], "next": 5, "truncated": False}
    assert bot.count("events") == 2


async def test_a_release_replays_as_its_state_changes(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    await bot.command("staging 1.2.3")
    await bot.settle()

    _, answer = await get(bot)

    release = [e for e in answer["events"] if e["type"].startswith(PREFIX + "release.")]
    assert [e["data"]["state"] for e in release] == ["queued", "deploying", "succeeded"]
    assert {e["subject"] for e in release} == {f"notify/staging/release/{release[0]['data']['release_id']}"}


async def test_the_token_is_required(bot: BotHarness) -> None:
    emit(bot, 1)
    before = snapshot(bot)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, answer = await get(bot, headers=headers)
        assert (status, answer["field"]) == (401, "Authorization")
    assert snapshot(bot) == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "abc"}, "since"),
        ({"since": "-1"}, "since"),
        ({"since": "1.5"}, "since"),
        ({"since": "9" * 40}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_bad_parameters_are_refused_by_field_and_change_nothing(
    bot: BotHarness, query: dict[str, str], field: str
) -> None:
    emit(bot, 2)
    before = snapshot(bot)

    status, answer = await get(bot, **query)

    assert (status, answer["field"]) == (400, field)
    assert field in answer["error"] or "expected" in answer["error"]
    assert snapshot(bot) == before

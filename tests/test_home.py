"""App Home end to end: a signed `app_home_opened` event in, `views.publish` out, kept current on change."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.views import View

from bot.core.models import Approval, ApprovalKind, ApprovalState
from bot.views.home import MAX_BLOCKS, EnvRow, ServiceRow, home_view
from commands.home import HomeViewers
from tests.fakes.slack_signing import event_body, signed_headers
from tests.harness import (
    CHANNEL,
    ONCALL1,
    OUTSIDER,
    RELEASER,
    SECRET,
    BotHarness,
    config_dict,
    running_bot,
)

TORONTO = ZoneInfo("America/Toronto")


async def open_home(bot: BotHarness, user: str) -> dict[str, Any]:
    """POST a signed app_home_opened event for ``user``; the view Slack then received for them."""
    before = len(published(bot, user))
    event = {
        "type": "app_home_opened",
        "user": user,
        "channel": "D" + user[1:],
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    body = event_body(event)
    response = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
    assert response.status == 200
    await bot.slack.wait_for("views.publish", count=before + 1, predicate=lambda c: c.args["user_id"] == user)
    await bot.settle()
    return published(bot, user)[-1]


def published(bot: BotHarness, user: str) -> list[dict[str, Any]]:
    return [c.args["view"] for c in bot.slack.calls_to("views.publish") if c.args["user_id"] == user]


def valid_view(view: dict[str, Any]) -> View:
    """Parse and validate the view the way slack_sdk does (block shapes, lengths, the 100-block limit)."""
    parsed = View(**view)
    parsed.validate_json()
    assert parsed.type == "home"
    assert len(view["blocks"]) <= MAX_BLOCKS
    return parsed


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def buttons(view: dict[str, Any]) -> dict[str, list[str]]:
    """action_id -> values of every button in the view."""
    found: dict[str, list[str]] = {}
    for block in view["blocks"]:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            found.setdefault(element["action_id"], []).append(element["value"])
    return found


async def ask(bot: BotHarness, text: str, *, user: str = RELEASER) -> str:
    """A slash command; the text of its answer (ephemeral or in the channel) once Slack received it."""
    before = len(bot.slack.calls_to("response_url"))
    response = await bot.command(text, user=user)
    assert response.status == 200
    [*_, answer] = await bot.slack.wait_for("response_url", count=before + 1)
    await bot.settle()
    return str(answer.args.get("text"))


async def test_home_shows_versions_locks_windows_and_freezes_ahead(bot: BotHarness) -> None:
    bot.live("prod", "1.2.2")
    assert "is locked" in await ask(bot, "lock staging schema migration in progress")
    assert "is frozen" in await ask(bot, "freeze prod until 2026-11-26 payment provider maintenance")
    view = await open_home(bot, RELEASER)
    valid_view(view)
    text = text_of(view)
    assert "*notify*" in text
    assert "*prod* — *1.2.2* since Mon 23 Nov 10:00 EST by <@U01RELEASE>" in text
    assert "*staging* — _nothing released yet_" in text
    assert "🔒 <@U01RELEASE>: schema migration in progress" in text
    assert "🟢 open" in text, "staging is always open"
    assert (
        "🔴 closed (ad-hoc freeze by <@U01RELEASE>: payment provider maintenance); opens Fri 27 Nov 09:00 EST" in text
    )
    assert "Wed 25 Nov – Thu 26 Nov: notify prod frozen by <@U01RELEASE>: payment provider maintenance" in text
    assert "Waiting for your decision" not in text
    assert buttons(view) == {}


async def test_pending_approvals_show_buttons_only_to_those_who_may_decide(bot: BotHarness) -> None:
    bot.live("prod", "1.2.2")
    bot.live("prod", "1.2.3")
    answer = await ask(bot, "rollback prod")
    assert "waiting for on-call approval" in answer, answer
    [pending] = bot.store.pending_approvals(None)

    oncall = await open_home(bot, ONCALL1)
    valid_view(oncall)
    assert buttons(oncall) == {"approval_approve": [str(pending.id)], "approval_deny": [str(pending.id)]}
    assert "Waiting for your decision (1)" in text_of(oncall)
    assert "Roll back notify prod from 1.2.3 to 1.2.2" in text_of(oncall)
    assert "requested by <@U01RELEASE>" in text_of(oncall)
    for user in (RELEASER, OUTSIDER):  # the requester, and someone outside on-call
        view = await open_home(bot, user)
        valid_view(view)
        assert buttons(view) == {}, user
        assert "Waiting for your decision" not in text_of(view)

    # On-call approves (from the channel): every open Home is re-published with the outcome.
    before = {user: len(published(bot, user)) for user in (ONCALL1, RELEASER, OUTSIDER)}
    response = await bot.click("approval_approve", str(pending.id), user=ONCALL1)
    assert response.status == 200
    await bot.slack.wait_for("response_url", count=1, predicate=lambda c: "Approved" in str(c.args.get("text")))
    await bot.settle()
    assert bot.deploys() == ["notify 1.2.2 prod 100"]
    for user, count in before.items():
        assert len(published(bot, user)) > count, f"{user}'s Home was not refreshed"
    after = published(bot, ONCALL1)[-1]
    valid_view(after)
    assert buttons(after) == {}
    assert "*prod* — *1.2.2* since Tue 24 Nov 10:00 EST" in text_of(after)


async def test_a_release_refreshes_the_homes_that_were_opened_and_no_others(bot: BotHarness) -> None:
    view = await open_home(bot, RELEASER)
    assert "*staging* — _nothing released yet_" in text_of(view)
    bot.add_candidate("1.2.3")
    await ask(bot, "staging 1.2.3")
    await bot.slack.wait_for(
        "views.publish", predicate=lambda c: c.args["user_id"] == RELEASER and "1.2.3" in json.dumps(c.args["view"])
    )
    await bot.settle()
    latest = published(bot, RELEASER)[-1]
    valid_view(latest)
    assert "*staging* — *1.2.3* since Tue 24 Nov 10:00 EST by <@U01RELEASE>" in text_of(latest)
    assert published(bot, ONCALL1) == [], "nobody else's Home is published unasked"


def thirty_services(log: Path) -> dict[str, Any]:
    config = config_dict(log)
    config["services"] = {
        f"svc-{i:02d}": {"channel": f"C0SVC{i:04d}", "components": ["api"], "pipeline": ["staging", "prod"]}
        for i in range(1, 31)
    }
    config["services"]["svc-01"]["channel"] = CHANNEL
    return config


async def test_thirty_services_and_a_dozen_approvals_fit_in_one_home_view(tmp_path: Path) -> None:
    async with running_bot(tmp_path, config=thirty_services(tmp_path / "deploys.log")) as bot:
        now = bot.clock.now()
        for i in range(1, 13):
            bot.store.create_approval(
                kind=ApprovalKind.ROLLBACK,
                service=f"svc-{i:02d}",
                env="prod",
                requester=RELEASER,
                required=1,
                eligible_groups=["oncall"],
                subject={"title": f"Roll back svc-{i:02d} prod"},
                now=now,
                expires_at=now + timedelta(hours=1),
            )
        view = await open_home(bot, ONCALL1)
        valid_view(view)
        text = text_of(view)
        assert all(f"*svc-{i:02d}*" in text for i in range(1, 31)), "every service is shown"
        assert "Waiting for your decision (12)" in text
        assert len(buttons(view)["approval_approve"]) == 10
        assert "…and 2 more in the release channels." in text


def test_the_view_names_the_services_it_has_no_room_for() -> None:
    zone = TORONTO
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    row = EnvRow("prod", "1.0.0", now, RELEASER, None, None, True, "open until Tue 24 Nov 16:00 EST")
    services = [ServiceRow(f"svc-{i:02d}", [row, row, row]) for i in range(1, 61)]
    approvals = [
        Approval(
            id=i,
            kind=ApprovalKind.RELEASE,
            service="svc-01",
            env="prod",
            requester=RELEASER,
            required=2,
            eligible_groups=["oncall"],
            state=ApprovalState.PENDING,
            created_at=now,
            expires_at=now + timedelta(hours=2),
            subject={"title": f"Release svc-01 1.0.{i} to prod"},
        )
        for i in range(15)
    ]
    view = home_view(services, approvals, ["Fri 25 Dec: Christmas Day (prod)"], zone)
    valid_view(view)
    assert len(view["blocks"]) >= MAX_BLOCKS - 1, "the view is filled, not cut short"
    text = text_of(view)
    shown = [s.service for s in services if f"*{s.service}*" in text]
    assert shown == [f"svc-{i:02d}" for i in range(1, len(shown) + 1)]
    assert f"Not shown for space: svc-{len(shown) + 1:02d}" in text and "svc-60. Use" in text
    assert "0 of 2 approvals" in text
    assert "• Fri 25 Dec: Christmas Day (prod)" in text


async def test_remembered_viewers_are_bounded_most_recent_kept(bot: BotHarness) -> None:
    viewers = HomeViewers(bot.engine, limit=2)
    for user in ("U01", "U02", "U01", "U03"):
        viewers.seen(user)
    assert viewers.users == ["U01", "U03"]

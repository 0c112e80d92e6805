"""Approvals end to end: signed block_actions and view_submission payloads through the real HTTP route.

Every click goes through Bolt's signature check, the shared action handlers and the engine; what the
users see is read back from the fake Slack (ephemeral replies, the approval message as edited).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import ApprovalState, ReleaseKind, ReleaseState
from tests.fakes.slack_api import Message
from tests.fakes.slack_signing import signed_headers, view_submission_body
from tests.harness import (
    API_TOKEN,
    CHANNEL,
    ONCALL1,
    ONCALL2,
    OUTSIDER,
    RELEASER,
    SECRET,
    STUB,
    BotHarness,
    MutableClock,
    buttons,
    config_dict,
    running_bot,
)

# Saturday 28 November 2026, 11:00 in Toronto: prod's business-hours window is closed.
SATURDAY_11AM = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


# --- helpers: wait for what the user sees, never sleep ----------------------------------------------
async def ask(bot: BotHarness, text: str, *, user: str = RELEASER) -> str:
    """A slash command; returns the ephemeral answer once Slack received it."""
    before = len(bot.slack.calls_to("response_url"))
    response = await bot.command(text, user=user)
    assert response.status == 200
    await bot.slack.wait_for("response_url", count=before + 1)
    await bot.settle()
    return bot.last_reply(user)


async def clicks(bot: BotHarness, action_id: str, value: str, *users: str) -> dict[str, str]:
    """Concurrent clicks on one button by ``users``; each one's ephemeral answer."""
    before = len(bot.slack.calls_to("response_url"))
    responses = await asyncio.gather(*(bot.click(action_id, value, user=u) for u in users))
    assert all(r.status == 200 for r in responses)
    await bot.slack.wait_for("response_url", count=before + len(users))
    await bot.settle()
    return {u: bot.last_reply(u) for u in users}


async def click(bot: BotHarness, action_id: str, value: str, user: str) -> str:
    return (await clicks(bot, action_id, value, user))[user]


async def submit_denial(bot: BotHarness, approval_id: str, user: str, reason: str) -> None:
    """The Deny modal submitted by ``user`` with ``reason``, signed as Slack sends it; waits for their answer."""
    body = view_submission_body(
        "approval_deny_reason",
        {"reason": {"reason": {"type": "plain_text_input", "value": reason}}},
        user_id=user,
        private_metadata=approval_id,
    )
    response = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
    assert response.status == 200
    await bot.slack.wait_for("chat.postEphemeral", predicate=lambda c: c.args.get("user") == user)
    await bot.settle()


def approval_posts(bot: BotHarness) -> list[tuple[str, str]]:
    """(approval id, message ts) of every approval request the bot posted."""
    found = []
    for call in bot.slack.calls_to("chat.postMessage"):
        value = buttons(call.args.get("blocks") or []).get("approval_approve")
        if value is not None:
            found.append((value, str(call.response["ts"])))
    return found


def message_text(message: Message) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def with_prod_history(bot: BotHarness) -> None:
    """prod ran 1.2.2, then 1.2.3 (the current release)."""
    bot.live("prod", "1.2.2")
    bot.live("prod", "1.2.3")


def release_of(bot: BotHarness, version: str, kind: ReleaseKind | None = None) -> Any:
    """The prod release of ``version`` (a rollback when ``kind`` says so, else the deploy/promote)."""
    [found] = [
        r
        for r in bot.store.history("notify", "prod", 50)
        if r.version == version and (r.kind is kind if kind else r.kind is not ReleaseKind.ROLLBACK)
    ]
    return found


async def open_rollback(bot: BotHarness, text: str = "rollback prod") -> tuple[str, Message]:
    """Ask for a rollback; the newest approval request's id and message."""
    return await open_rollback_as(bot, RELEASER, text)


async def open_rollback_as(bot: BotHarness, user: str, text: str = "rollback prod") -> tuple[str, Message]:
    answer = await ask(bot, text, user=user)
    assert "waiting for on-call approval" in answer, answer
    value, ts = approval_posts(bot)[-1]
    return value, bot.slack.message(CHANNEL, ts)


# --- the rollback approval -----------------------------------------------------------------------------
async def test_rollback_needs_an_eligible_approver_and_concurrent_approvals_run_it_once(bot: BotHarness) -> None:
    with_prod_history(bot)
    approval_id, message = await open_rollback(bot)
    assert len(approval_posts(bot)) == 1
    assert set(buttons(message.blocks)) == {"approval_approve", "approval_deny"}
    assert "Roll back notify prod from 1.2.3 to 1.2.2" in message_text(message)
    rollback = release_of(bot, "1.2.2", ReleaseKind.ROLLBACK)
    assert rollback.state is ReleaseState.AWAITING_APPROVAL and bot.deploys() == []

    # Separation of duties: the requester's own click does nothing.
    answer = await click(bot, "approval_approve", approval_id, RELEASER)
    assert "you asked for this, so you cannot approve it" in answer
    # Someone outside oncall: told which group, nothing changes.
    answer = await click(bot, "approval_approve", approval_id, OUTSIDER)
    assert "you are not in oncall" in answer
    approval = bot.store.get_approval(int(approval_id))
    assert approval is not None and approval.state is ApprovalState.PENDING and approval.approvers == []
    assert bot.deploys() == [] and bot.count("approval_votes") == 0

    # Two on-call engineers click Approve at the same moment: one rollback.
    answers = await clicks(bot, "approval_approve", approval_id, ONCALL1, ONCALL2)
    winners = [u for u, a in answers.items() if "Approved. On it." in a]
    assert len(winners) == 1, answers
    [loser] = [u for u in answers if u not in winners]
    assert "already approved; nothing more was done" in answers[loser]
    assert bot.deploys() == ["notify 1.2.2 prod 100"], "the rollback ran exactly once"

    decided = bot.slack.message(CHANNEL, message.ts)
    assert "approval_approve" not in buttons(decided.blocks), "buttons go once decided"
    assert decided.blocks[-1]["type"] == "context"
    assert f"Approved by <@{winners[0]}>" in message_text(decided)
    assert "Tue 24 Nov 10:00" in message_text(decided), "the message says when"
    assert bot.slack.calls_to("chat.update"), "the approval message was edited in place"

    original = release_of(bot, "1.2.3")
    assert original.state is ReleaseState.ROLLED_BACK and original.change_failure is True
    assert release_of(bot, "1.2.2", ReleaseKind.ROLLBACK).state is ReleaseState.SUCCEEDED
    state = bot.store.env_state("notify", "prod")
    assert state is not None and state.version == "1.2.2"
    assert bot.store.lock_of("notify", "prod") is None

    audit = bot.store.audit_since(None)
    by_action = {e.action: e for e in audit}
    for action in ("rollback.requested", "approval.requested", "approval.voted", "approval.approved"):
        assert action in by_action, f"{action} missing from the audit trail"
        assert by_action[action].request_id, f"{action} has no Slack request id"
    assert by_action["rollback.requested"].actor == RELEASER
    assert by_action["approval.approved"].actor == winners[0]
    assert [e.actor for e in audit if e.action == "approval.voted"] == winners


async def test_double_click_by_one_approver_has_one_effect(bot: BotHarness) -> None:
    with_prod_history(bot)
    approval_id, _ = await open_rollback(bot)
    answers = [await click(bot, "approval_approve", approval_id, ONCALL1) for _ in range(2)]
    assert "Approved. On it." in answers[0]
    assert "already approved" in answers[1]
    assert bot.deploys() == ["notify 1.2.2 prod 100"]
    assert bot.count("approval_votes") == 1


async def test_two_approvals_need_two_people_and_a_double_click_counts_once(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", rollback={"approvals": {"required": 2, "from": ["oncall"]}})
    async with running_bot(tmp_path, config=config) as bot:
        with_prod_history(bot)
        approval_id, message = await open_rollback(bot)
        first = await clicks(bot, "approval_approve", approval_id, ONCALL1, ONCALL1)
        assert first[ONCALL1]  # both clicks were answered; one vote counts
        assert bot.count("approval_votes") == 1 and bot.deploys() == []
        assert any("You already approved this" in t for t in bot.replies_to(ONCALL1))
        pending = bot.slack.message(CHANNEL, message.ts)
        assert "approval_approve" in buttons(pending.blocks)
        assert f"Approved by <@{ONCALL1}>" in message_text(pending)

        assert "Approved. On it." in await click(bot, "approval_approve", approval_id, ONCALL2)
        assert bot.deploys() == ["notify 1.2.2 prod 100"]
        decided = message_text(bot.slack.message(CHANNEL, message.ts))
        assert f"<@{ONCALL1}>, <@{ONCALL2}>" in decided


async def test_a_click_after_expiry_says_expired_and_runs_nothing(bot: BotHarness) -> None:
    with_prod_history(bot)
    approval_id, message = await open_rollback(bot)
    bot.clock.advance(minutes=31)
    answer = await click(bot, "approval_approve", approval_id, ONCALL1)
    assert "expired" in answer
    assert bot.deploys() == [] and bot.count("approval_votes") == 0
    expired = bot.slack.message(CHANNEL, message.ts)
    assert not buttons(expired.blocks), "an expired request has no buttons"
    assert "Expired" in message_text(expired)
    approval = bot.store.get_approval(int(approval_id))
    assert approval is not None and approval.state is ApprovalState.EXPIRED
    # The rollback that was waiting is over, so the thread and history do not show it waiting forever.
    assert release_of(bot, "1.2.2", ReleaseKind.ROLLBACK).state is ReleaseState.CANCELLED
    thread = bot.slack.thread(CHANNEL, release_of(bot, "1.2.2", ReleaseKind.ROLLBACK).thread_ts)
    assert any("Nobody approved in time" in m.text for m in thread)
    # A second click changes nothing and still says so.
    assert "expired" in await click(bot, "approval_approve", approval_id, ONCALL2)
    assert bot.deploys() == []


async def test_pending_approvals_expire_on_time_without_a_click(bot: BotHarness) -> None:
    with_prod_history(bot)
    approval_id, message = await open_rollback(bot)
    scheduler = bot.runtime.scheduler
    assert scheduler is not None
    due = scheduler.next_run(f"approval-expiry:{approval_id}")
    assert due is not None, "the expiry is armed when the request is posted"
    approval = bot.store.get_approval(int(approval_id))
    assert approval is not None and due == approval.expires_at == bot.clock.now() + timedelta(minutes=30)
    bot.clock.advance(minutes=30)
    assert await bot.engine.approvals.expire_due() == 1  # what the armed job runs
    await bot.settle()
    assert not buttons(bot.slack.message(CHANNEL, message.ts).blocks)
    assert "Expired" in message_text(bot.slack.message(CHANNEL, message.ts))


async def test_deny_asks_for_a_reason_in_a_modal_and_cancels_the_rollback(bot: BotHarness) -> None:
    with_prod_history(bot)
    approval_id, message = await open_rollback(bot)

    response = await bot.click("approval_deny", approval_id, user=ONCALL1)
    assert response.status == 200
    [opened] = await bot.slack.wait_for("views.open")
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "approval_deny_reason" and view["private_metadata"] == approval_id
    assert bot.store.get_approval(int(approval_id)).state is ApprovalState.PENDING  # type: ignore[union-attr]

    await submit_denial(bot, approval_id, ONCALL1, "1.2.3 is fine; the alert was noise")
    assert "Denied" in bot.last_reply(ONCALL1)

    approval = bot.store.get_approval(int(approval_id))
    assert approval is not None and approval.state is ApprovalState.DENIED and approval.decided_by == ONCALL1
    denied = message_text(bot.slack.message(CHANNEL, message.ts))
    assert f"Denied by <@{ONCALL1}>: 1.2.3 is fine; the alert was noise" in denied
    assert not buttons(bot.slack.message(CHANNEL, message.ts).blocks)
    assert bot.deploys() == []
    assert release_of(bot, "1.2.2", ReleaseKind.ROLLBACK).state is ReleaseState.CANCELLED
    assert release_of(bot, "1.2.3").state is ReleaseState.SUCCEEDED
    thread = bot.slack.thread(CHANNEL, release_of(bot, "1.2.2", ReleaseKind.ROLLBACK).thread_ts)
    assert any(f"Denied by <@{ONCALL1}>: 1.2.3 is fine" in m.text for m in thread), "the requester sees why"
    # Approving after the denial does nothing.
    assert "already denied" in await click(bot, "approval_approve", approval_id, ONCALL2)
    assert bot.deploys() == []
    [entry] = [e for e in bot.store.audit_since(None) if e.action == "approval.denied"]
    assert entry.actor == ONCALL1 and entry.detail["reason"] == "1.2.3 is fine; the alert was noise"


async def test_an_ineligible_user_cannot_deny_either(bot: BotHarness) -> None:
    with_prod_history(bot)
    approval_id, _ = await open_rollback(bot)
    body = view_submission_body(
        "approval_deny_reason",
        {"reason": {"reason": {"type": "plain_text_input", "value": "no"}}},
        user_id=OUTSIDER,
        private_metadata=approval_id,
    )
    response = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
    assert response.status == 200
    await bot.slack.wait_for("chat.postEphemeral", predicate=lambda c: c.args.get("user") == OUTSIDER)
    assert "you are not in oncall" in bot.last_reply(OUTSIDER)
    assert bot.store.get_approval(int(approval_id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


async def test_a_user_group_approver_is_resolved_through_slack_and_cached(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log")
    config["groups"]["oncall"] = ["S01ONCALL"]
    async with running_bot(tmp_path, config=config) as bot:
        bot.slack.set_usergroup("S01ONCALL", ["U07SRE0001", ONCALL2])
        with_prod_history(bot)
        approval_id, message = await open_rollback(bot)

        assert "you are not in oncall" in await click(bot, "approval_approve", approval_id, OUTSIDER)
        lookups = [c for c in bot.slack.calls_to("usergroups.users.list") if c.args.get("usergroup") == "S01ONCALL"]
        assert len(lookups) == 1
        assert "Approved. On it." in await click(bot, "approval_approve", approval_id, "U07SRE0001")
        lookups = [c for c in bot.slack.calls_to("usergroups.users.list") if c.args.get("usergroup") == "S01ONCALL"]
        assert len(lookups) == 1, "the second resolution within the TTL is served from the cache"
        assert bot.deploys() == ["notify 1.2.2 prod 100"]
        assert "Approved by <@U07SRE0001>" in message_text(bot.slack.message(CHANNEL, message.ts))

        # Past the TTL the group is asked again (membership changes reach the bot).
        bot.clock.advance(minutes=6)
        bot.live("prod", "1.2.4")
        second_id, _ = await open_rollback(bot)
        assert second_id != approval_id
        assert "Approved. On it." in await click(bot, "approval_approve", second_id, ONCALL2)
        lookups = [c for c in bot.slack.calls_to("usergroups.users.list") if c.args.get("usergroup") == "S01ONCALL"]
        assert len(lookups) == 2


# --- rollback targets, windows, providers -----------------------------------------------------------
async def test_default_target_is_the_last_healthy_release_before_the_current_one(bot: BotHarness) -> None:
    bot.live("prod", "1.2.1")
    bot.live("prod", "1.2.2")
    bad = bot.store.history("notify", "prod", 1)[0]
    bot.store.update_release(bad.id, healthy=False)  # its checks failed: not a place to return to
    bot.live("prod", "1.2.3")
    _, message = await open_rollback(bot)
    assert "from 1.2.3 to 1.2.1" in message_text(message)


async def test_an_explicit_target_must_have_run_there(bot: BotHarness) -> None:
    with_prod_history(bot)
    bot.add_candidate("1.1.0")
    answer = await ask(bot, "rollback prod to 1.1.0")
    assert "1.1.0 never ran in prod" in answer
    assert bot.count("approvals") == 0 and bot.deploys() == []
    _, message = await open_rollback(bot, "rollback prod to 1.2.2")
    assert "from 1.2.3 to 1.2.2" in message_text(message)


async def test_nothing_to_roll_back_to_is_refused(bot: BotHarness) -> None:
    assert "nothing has been released to prod yet" in await ask(bot, "rollback prod")
    bot.live("prod", "1.2.3")
    assert "no earlier healthy release in prod" in await ask(bot, "rollback prod")
    assert bot.count("approvals") == 0


async def test_who_may_ask_for_a_rollback(bot: BotHarness) -> None:
    with_prod_history(bot)
    answer = await ask(bot, "rollback prod", user=OUTSIDER)
    assert "you may not roll back prod: that needs membership of releasers, oncall" in answer
    assert bot.count("approvals") == 0
    approval_id, _ = await open_rollback_as(bot, RELEASER)  # a releaser may ask, and on-call approves
    assert "you asked for this" in await click(bot, "approval_approve", approval_id, RELEASER)
    assert "Approved. On it." in await click(bot, "approval_approve", approval_id, ONCALL2)
    assert bot.deploys() == ["notify 1.2.2 prod 100"]


async def test_one_on_call_engineer_rolls_back_at_once_their_request_its_own_approval(bot: BotHarness) -> None:
    """Rolling back is the safe direction: a rota of one must be able to roll back at 3 a.m."""
    with_prod_history(bot)
    answer = await ask(bot, "rollback prod", user=ONCALL1)
    assert "Rolling prod back to 1.2.2" in answer, answer
    assert bot.deploys() == ["notify 1.2.2 prod 100"] and bot.count("approvals") == 0
    assert release_of(bot, "1.2.3").state is ReleaseState.ROLLED_BACK
    [asked] = [e for e in bot.store.audit_since(None) if e.action == "rollback.requested"]
    assert asked.actor == ONCALL1 and asked.detail["counted_as_approval"] is True


async def test_with_two_approvals_required_on_calls_own_request_counts_as_one(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", rollback={"approvals": {"required": 2, "from": ["oncall"]}})
    async with running_bot(tmp_path, config=config) as bot:
        with_prod_history(bot)
        approval_id, message = await open_rollback_as(bot, ONCALL1)
        assert "you asked for this" in await click(bot, "approval_approve", approval_id, ONCALL1)
        assert bot.deploys() == []
        assert "Approved. On it." in await click(bot, "approval_approve", approval_id, ONCALL2)
        assert bot.deploys() == ["notify 1.2.2 prod 100"]


async def test_a_rollback_without_required_approvals_runs_at_once(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", rollback={"approvals": {"required": 0}})
    async with running_bot(tmp_path, config=config) as bot:
        with_prod_history(bot)
        assert "Rolling prod back to 1.2.2" in await ask(bot, "rollback prod")
        assert bot.deploys() == ["notify 1.2.2 prod 100"] and bot.count("approvals") == 0
        assert release_of(bot, "1.2.3").state is ReleaseState.ROLLED_BACK


async def test_a_second_rollback_while_one_waits_is_refused(bot: BotHarness) -> None:
    with_prod_history(bot)
    await open_rollback(bot)
    answer = await ask(bot, "rollback prod", user=ONCALL1)
    assert "already waiting for approval" in answer
    assert bot.count("approvals") == 1


async def test_rollback_is_never_blocked_by_the_window(tmp_path: Path) -> None:
    clock = MutableClock(SATURDAY_11AM)
    async with running_bot(tmp_path, clock=clock) as bot:
        with_prod_history(bot)
        await ask(bot, "window prod")
        assert "closed" in bot.last_reply().lower()
        approval_id, _ = await open_rollback(bot)
        assert "Approved. On it." in await click(bot, "approval_approve", approval_id, ONCALL1)
        assert bot.deploys() == ["notify 1.2.2 prod 100"]
        assert release_of(bot, "1.2.3").state is ReleaseState.ROLLED_BACK


async def test_the_rollback_plan_is_shown_when_a_release_starts(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    bot.live("staging", "1.2.3")
    bot.live("prod", "1.2.2")
    await ask(bot, "prod")
    parent = next(c for c in bot.slack.calls_to("chat.postMessage") if not c.args.get("thread_ts"))
    assert "*Rollback plan:* back to 1.2.2 by redeploying 1.2.2" in json.dumps(parent.args["blocks"])


async def test_the_command_provider_uses_its_rollback_argv(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    config = config_dict(log)
    config["environments"]["prod"]["deploy"]["rollback"] = [
        str(STUB),
        str(log),
        "rollback",
        "{version}",
        "{environment}",
    ]
    async with running_bot(tmp_path, config=config) as bot:
        with_prod_history(bot)
        bot.add_candidate("1.2.4")
        bot.live("staging", "1.2.4")
        await ask(bot, "prod")
        parent = next(c for c in bot.slack.calls_to("chat.postMessage") if not c.args.get("thread_ts"))
        assert "by the configured rollback command" in json.dumps(parent.args["blocks"])
        approval_id, _ = await open_rollback(bot)
        assert "Approved. On it." in await click(bot, "approval_approve", approval_id, ONCALL1)
        assert bot.deploys() == ["notify 1.2.4 prod 100", "rollback 1.2.3 prod"]
        assert release_of(bot, "1.2.4").state is ReleaseState.ROLLED_BACK


async def test_audit_api_lists_the_transitions_as_json(bot: BotHarness) -> None:
    with_prod_history(bot)
    cutoff = bot.clock.now()
    approval_id, _ = await open_rollback(bot)
    bot.clock.advance(minutes=5)
    later = bot.clock.now()
    await click(bot, "approval_approve", approval_id, ONCALL1)

    refused = await bot.client.get("/api/v1/audit")
    assert refused.status == 401
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    response = await bot.client.get("/api/v1/audit", params={"since": cutoff.isoformat()}, headers=auth)
    assert response.status == 200
    entries = (await response.json())["entries"]
    actions = [e["action"] for e in entries]
    assert actions[:2] == ["rollback.requested", "approval.requested"]
    assert {"approval.voted", "approval.approved", "release.succeeded"} <= set(actions)
    voted = next(e for e in entries if e["action"] == "approval.voted")
    assert voted["actor"] == ONCALL1 and voted["subject"] == f"approval:{approval_id}"
    assert voted["request_id"] and voted["at"] == later.isoformat()
    requested = entries[0]
    assert requested["actor"] == RELEASER and requested["detail"]["target"] == "1.2.2"

    response = await bot.client.get("/api/v1/audit", params={"since": later.isoformat()}, headers=auth)
    assert "rollback.requested" not in [e["action"] for e in (await response.json())["entries"]]


# --- a rollback button after its request ended without running ---------------------------------------------
async def test_roll_back_now_works_again_after_its_request_expired(tmp_path: Path) -> None:
    """The click's at-most-once claim is given back when the rollback it asked for never ran."""
    config = config_dict(tmp_path / "deploys.log", rollback={"approvals": {"required": 2, "from": ["oncall"]}})
    async with running_bot(tmp_path, config=config) as bot:
        with_prod_history(bot)
        current = release_of(bot, "1.2.3")
        first = await click(bot, "check_rollback", str(current.id), ONCALL1)
        assert "waiting for on-call approval" in first, first
        [(expiring, _)] = approval_posts(bot)
        bot.clock.advance(minutes=31)
        assert await bot.engine.approvals.expire_due() == 1

        again = await click(bot, "check_rollback", str(current.id), ONCALL1)

        assert "already requested" not in again and "waiting for on-call approval" in again, again
        assert [value for value, _ in approval_posts(bot)][-1] != expiring, "a new request, not the expired one"
        assert bot.deploys() == []


async def test_roll_back_now_works_again_after_its_request_was_denied(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", rollback={"approvals": {"required": 2, "from": ["oncall"]}})
    async with running_bot(tmp_path, config=config) as bot:
        with_prod_history(bot)
        current = release_of(bot, "1.2.3")
        await click(bot, "check_rollback", str(current.id), ONCALL1)
        [(approval_id, _)] = approval_posts(bot)
        await submit_denial(bot, approval_id, ONCALL2, "it is fine")
        assert bot.store.get_approval(int(approval_id)).state is ApprovalState.DENIED  # type: ignore[union-attr]

        again = await click(bot, "check_rollback", str(current.id), ONCALL1)

        assert "waiting for on-call approval" in again, again
        assert len(approval_posts(bot)) == 2 and bot.deploys() == []


# --- buttons under a release a newer one replaced ------------------------------------------------------------
@pytest.mark.parametrize("button", ["check_looks_good", "check_dismiss", "check_rollback"])
async def test_check_buttons_of_a_superseded_release_say_what_runs_now_and_do_nothing(
    bot: BotHarness, button: str
) -> None:
    with_prod_history(bot)  # 1.2.2, then 1.2.3
    old = release_of(bot, "1.2.2")
    before = (bot.count("audit"), bot.count("approvals"), bot.store.get_release(old.id))

    answer = await click(bot, button, str(old.id), ONCALL1)

    assert "no longer runs in prod: 1.2.3 does" in answer and "/release rollback prod" in answer, answer
    assert (bot.count("audit"), bot.count("approvals"), bot.store.get_release(old.id)) == before
    assert bot.deploys() == []

"""Button and modal handlers: approvals, interrupted releases, check outcomes."""

from __future__ import annotations

from bot.engine import Actor, Engine, Reply, UserError
from bot.engine.approvals import VoteOutcome
from bot.views import approvals as approval_views
from bot.views import render
from bot.views import trains as train_views
from commands import guarded

APPROVAL_ACTIONS = ("approval_approve", "approval_deny")
RELEASE_ACTIONS = ("release_retry", "release_rollback")
CHECK_ACTIONS = ("check_rollback", "check_dismiss", "check_looks_good")
ALERT_ACTIONS = ("alert_ack",)  # an alert's Roll back now is check_rollback: the same path, permission and claim
TRAIN_ACTIONS = ("train_hold", "train_leave_off")  # Hold opens its reason form (commands/trains.py)
ALL_ACTIONS = APPROVAL_ACTIONS + RELEASE_ACTIONS + CHECK_ACTIONS + ALERT_ACTIONS + TRAIN_ACTIONS
MODAL_ACTIONS = ("approval_deny", "train_hold")  # buttons that open a reason form instead of acting at once
OPEN_MODAL = Reply(render.info("opening the reason form"))  # deny_refusal's "no refusal": open the modal


def _id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise UserError("that button is not one of ours.")
    return int(value)


async def on_action(engine: Engine, actor: Actor, action_id: str, value: str) -> Reply:
    """Route a button click. Unknown or tampered values are refused and change nothing."""

    async def run() -> Reply:
        target = _id(value)
        if action_id == "approval_approve":
            return _voted(await engine.approvals.vote(actor, target))
        if action_id in RELEASE_ACTIONS:
            return await engine.recovery.interrupted_action(actor, target, action_id)
        if action_id in CHECK_ACTIONS:
            return await engine.check_actions.check_action(actor, target, action_id)
        if action_id in ALERT_ACTIONS:
            return await engine.alerts.acknowledge(actor, target)
        if action_id == "train_leave_off":
            dep, row = await engine.trains.leave_off(actor, target)
            return Reply(train_views.you_left_off(dep, row, engine.config.zone))
        raise UserError("that button is not one of ours.")

    return await guarded(run)


async def deny_refusal(engine: Engine, actor: Actor, approval_id: str) -> Reply | None:
    """The Deny button: a refusal to show instead of the reason modal, or None to open the modal."""

    async def run() -> Reply:
        await engine.approvals.may_decide(actor, _id(approval_id))
        return OPEN_MODAL

    reply = await guarded(run)
    return None if reply is OPEN_MODAL else reply


async def on_deny(engine: Engine, actor: Actor, approval_id: str, reason: str) -> Reply:
    """The deny modal was submitted with a reason."""

    async def run() -> Reply:
        text = reason.strip()
        if not text:
            raise UserError("a denial needs a reason.")
        await engine.approvals.deny(actor, _id(approval_id), text[:300])
        return Reply(approval_views.denied())

    return await guarded(run)


def _voted(outcome: VoteOutcome) -> Reply:
    match outcome:
        case VoteOutcome.RECORDED:
            return Reply(approval_views.recorded())
        case VoteOutcome.APPROVED:
            return Reply(approval_views.approved())
        case VoteOutcome.ALREADY_VOTED:
            return Reply(approval_views.already_voted())

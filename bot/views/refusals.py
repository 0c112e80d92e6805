"""Refusals as words: a permission the policy denied, said so the user knows who may instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.policy.permissions import Action, Permission, Role
from bot.views.mrkdwn import escape


@dataclass(frozen=True)
class Who:
    """The people and groups behind each role, for naming them in a refusal."""

    env: str
    releasers: Sequence[str] = ()  # the env's `allowed` groups
    oncall: Sequence[str] = ()  # ["oncall"] when that group is configured
    rollback_approvers: Sequence[str] = ()
    approvers: Sequence[str] = ()  # the open request's groups
    train_holders: Sequence[str] = ()  # the release train's `hold` groups
    lock_holder: str | None = None
    freezer: str | None = None
    requester: str | None = None  # who asked for the request at hand (a scheduled release)


def _groups(*lists: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(g for groups in lists for g in groups))


def _mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "whoever placed it"


def permission_refusal(answer: Permission, who: Who) -> str:
    """The sentence a refused user sees (mrkdwn; group names come from config, mentions from stored IDs)."""
    action, env = answer.action, escape(who.env)
    if answer.denied_by is Role.REQUESTER:
        return "you asked for this, so you cannot approve it: someone else must (two-person rule)."
    if action in (Action.RELEASE, Action.DEPLOY, Action.PROMOTE, Action.RELEASE_RETRY):
        return f"you may not release to {env}: that needs membership of {_groups(who.releasers)}."
    if action in (Action.ROLLBACK, Action.RELEASE_ROLLBACK):
        return f"you may not roll back {env}: that needs membership of " + (
            _groups(who.releasers, who.rollback_approvers, who.oncall) + "."
        )
    if action is Action.LOCK:
        return f"you may not lock {env}: that needs membership of {_groups(who.releasers, who.oncall)}."
    if action is Action.FREEZE:
        return f"you may not freeze {env}: that needs membership of {_groups(who.releasers)} or oncall."
    if action is Action.UNLOCK:
        return f"only {_mention(who.lock_holder)} or on-call can unlock {env}."
    if action is Action.UNFREEZE:
        return f"only {_mention(who.freezer)} or on-call can lift {env}'s freeze."
    if action is Action.CANCEL:
        return (
            f"only {_mention(who.requester)}, who scheduled it, or releasers of {env} "
            f"({_groups(who.releasers)}) can cancel it."
        )
    if action in (Action.APPROVAL_APPROVE, Action.APPROVAL_DENY, Action.APPROVAL_DENY_REASON):
        return f"you are not in {_groups(who.approvers)}, so you cannot decide this."
    if action in (Action.CHECK_ROLLBACK, Action.CHECK_DISMISS, Action.CHECK_LOOKS_GOOD):
        return f"you are not in {_groups(who.rollback_approvers, who.oncall)}, so you cannot act on this check."
    if action is Action.ALERT_ACK:
        return f"you are not in {_groups(who.rollback_approvers, who.oncall)}, so you cannot acknowledge this alert."
    return f"you may not {action.value.replace('_', ' ')} here."

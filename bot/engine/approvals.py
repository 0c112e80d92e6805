"""One approval engine for rollbacks, break-glass releases and releases that need approvers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from bot.config import Config
from bot.core.checklist import ChecklistResult, apply_override
from bot.core.models import Approval, ApprovalKind, ApprovalState, Lock, Release, ReleaseState
from bot.engine import claims
from bot.engine.base import SYSTEM, Actor, system_actor
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.runner import Rollouts
from bot.engine.story import Story, Tasks
from bot.policy.permissions import Action
from bot.ports import Scheduler
from bot.store import LockHeld, Store, VoteResult
from bot.views import approvals as view
from bot.views.render import Message


class VoteOutcome(Enum):
    """What an Approve click did."""

    RECORDED = "recorded"  # counted; more approvers are needed
    APPROVED = "approved"  # the vote that granted the request: what it asked for is being carried out
    ALREADY_VOTED = "already voted"  # this approver had approved already; nothing changed


@dataclass(frozen=True)
class Denied:
    """A request denied: what it asked for was cancelled."""

    approval: Approval  # as closed: who denied it, when, and why


class Approvals:
    """Requests with Approve / Deny: opened, voted, denied, expired; what they grant is then carried out."""

    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        tasks: Tasks,
        gate: Gatekeeper,
        scheduler: Scheduler | None,
        rollouts: Rollouts,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.tasks = tasks
        self.gate = gate
        self.scheduler = scheduler
        self.rollouts = rollouts

    async def open_approval(
        self,
        *,
        kind: ApprovalKind,
        service: str,
        env: str,
        requester: Actor,
        required: int,
        groups: list[str],
        subject: dict[str, Any],
        title: str,
        detail_lines: list[str],
    ) -> int:
        """Create a request and post it with Approve / Deny in the service channel; arm its expiry."""
        environment = self.config.environments[env]
        policy = environment.rollback.approvals if kind is ApprovalKind.ROLLBACK else environment.approvals
        now = self.story.now()
        approval = await self.db.create_approval(
            kind=kind,
            service=service,
            env=env,
            requester=requester.user,
            required=required,
            eligible_groups=groups,
            subject={**subject, "title": title, "details": detail_lines},
            now=now,
            expires_at=now + policy.expires_after,
        )
        await self.story.audit(requester, "approval.requested", f"approval:{approval.id}", kind=kind.value, title=title)
        channel = self.config.services[service].channel
        message = view.request(approval, self.config.zone)
        release_id = subject.get("release_id")
        thread = None
        if isinstance(release_id, int):
            release = await self.db.get_release(release_id)
            thread = release.thread_ts if release else None
        ts = await self.story.notifier.post(channel, message.text, message.blocks, thread_ts=thread)
        await self.db.set_approval_message(approval.id, channel, ts)
        self._arm_expiry(approval)
        await self.story.changed(service)
        return approval.id

    def _arm_expiry(self, approval: Approval) -> None:
        """Wake at the expiry so the message says expired and loses its buttons even if nobody clicks."""
        if self.scheduler is None:
            return
        # At the engine-clock instant, as checks and scheduled releases are armed: the console's scheduler runs
        # on the console clock (`advance 30m` expires a request), APScheduler on the wall clock, which is then
        # the engine's. A wake that finds nothing overdue (a clock behind) changes nothing.
        self.scheduler.at(approval.expires_at, _expiry_key(approval.id), self._expiry_due)

    async def _expiry_due(self) -> None:
        await self.expire_due()

    def _disarm_expiry(self, approval_id: int) -> None:
        if self.scheduler is not None:
            self.scheduler.cancel(_expiry_key(approval_id))

    async def rearm_expiries(self) -> None:
        """On start: arm the expiry of every request still pending (jobs live only in memory)."""
        for approval in await self.db.pending_approvals(None):
            self._arm_expiry(approval)

    async def _show_approval(self, approval: Approval) -> None:
        if approval.channel is None or approval.message_ts is None:
            return
        message = view.request(approval, self.config.zone)
        await self.story.notifier.update(approval.channel, approval.message_ts, message.text, message.blocks)

    async def _eligible(self, approval: Approval, user: str, action: Action) -> None:
        who = Context(requester=approval.requester, approvers=approval.eligible_groups)
        await self.gate.require(action, user, approval.env, who)

    async def _pending(self, approval_id: int) -> Approval:
        """The request, still open; an overdue one is expired on the spot and the clicker told so."""
        approval = await self.db.get_approval(approval_id)
        if approval is None:
            raise UserError(view.GONE)
        if approval.state is ApprovalState.PENDING and approval.expires_at <= self.story.now():
            await self.expire(approval)
            raise UserError(view.EXPIRED)
        if approval.state is ApprovalState.EXPIRED:
            raise UserError(view.EXPIRED)
        return approval

    async def may_decide(self, actor: Actor, approval_id: int) -> None:
        """The Deny button, before its reason modal opens: the checks its submission gets again, so a click by
        the wrong person, or on a request that is decided or has expired, is refused at once."""
        approval = await self._pending(approval_id)
        await self._eligible(approval, actor.user, Action.APPROVAL_DENY)

    async def vote(self, actor: Actor, approval_id: int) -> VoteOutcome:
        """An Approve click. Double clicks and simultaneous approvers produce one effect."""
        approval = await self._pending(approval_id)
        await self._eligible(approval, actor.user, Action.APPROVAL_APPROVE)
        now = self.story.now()

        def vote(store: Store) -> VoteResult:
            """The vote and its audit entries, in one round trip and one transaction."""
            result = store.vote(approval_id, actor.user, now)
            if result.outcome in ("closed", "duplicate"):
                return result
            subject = f"approval:{approval_id}"
            entries = [("approval.voted", {"outcome": result.outcome})]
            if result.outcome == "approved":
                entries.append(("approval.approved", {}))
            for action, detail in entries:
                store.audit(
                    actor=actor.user,
                    action=action,
                    subject=subject,
                    now=now,
                    detail=detail,
                    request_id=actor.request_id,
                )
            return result

        result = await self.db.unit(vote)
        if result.outcome == "closed":
            raise UserError(view.vote_too_late(result.approval.state))
        if result.outcome == "duplicate":
            return VoteOutcome.ALREADY_VOTED
        await self._show_approval(result.approval)
        if result.outcome == "approved":
            self._disarm_expiry(approval_id)
            self.tasks.spawn(self._execute(result.approval, actor), f"approval-{approval_id}")
            return VoteOutcome.APPROVED
        return VoteOutcome.RECORDED

    async def deny(self, actor: Actor, approval_id: int, reason: str) -> Denied:
        """A Deny with its reason (from the modal): the request closes and what it asked for is cancelled."""
        approval = await self._pending(approval_id)
        await self._eligible(approval, actor.user, Action.APPROVAL_DENY_REASON)
        if not await self.db.close_approval(
            approval_id,
            ApprovalState.DENIED,
            by=actor.user,
            reason=reason,
            now=self.story.now(),
        ):
            current = await self.db.get_approval(approval_id)
            raise UserError(view.deny_too_late(current.state if current else approval.state))
        self._disarm_expiry(approval_id)
        await self.story.audit(actor, "approval.denied", f"approval:{approval_id}", reason=reason)
        denied = await self.db.get_approval(approval_id)
        assert denied is not None
        await self._show_approval(denied)
        await self._cancel_subject(approval, actor, f"denied: {reason}", view.denied_in_thread(actor.user, reason))
        await self.story.changed(approval.service)
        return Denied(denied)

    async def expire(self, approval: Approval) -> None:
        """Close an overdue request (exactly once): the message says expired and its buttons go."""
        if await self.db.close_approval(
            approval.id,
            ApprovalState.EXPIRED,
            by=None,
            reason="expired",
            now=self.story.now(),
        ):
            self._disarm_expiry(approval.id)
            await self.story.audit(SYSTEM, "approval.expired", f"approval:{approval.id}")
            expired = await self.db.get_approval(approval.id)
            if expired is not None:
                await self._show_approval(expired)
            await self._cancel_subject(approval, SYSTEM, "approval expired", view.expired_in_thread())
            await self.story.changed(approval.service)

    async def _cancel_subject(self, approval: Approval, actor: Actor, detail: str, said: Message) -> None:
        """The release (or rollback) that waited for this request will not run: record ``detail`` (plain text)
        on it and say so in its thread with ``said``."""
        release_id = approval.subject.get("release_id")
        if not isinstance(release_id, int):
            return
        moved = await self.story.move(
            release_id,
            approval.env,
            ReleaseState.CANCELLED,
            actor=actor,
            detail=detail,
            only_from={ReleaseState.AWAITING_APPROVAL},
            audit="release.cancelled",
            audit_detail={"detail": detail},
        )
        if moved:
            if moved.rollback_of is not None:
                # The rollback asked for never ran: the buttons that asked for it work again.
                for key in claims.rollback_of(moved.rollback_of):
                    await self.db.unclaim(key)
            for sibling in await self.db.approvals_of_release(release_id):
                if sibling.id != approval.id and sibling.state is ApprovalState.PENDING:
                    closed = await self.db.close_approval(
                        sibling.id,
                        ApprovalState.CANCELLED,
                        by=actor.user,
                        reason=detail,
                        now=self.story.now(),
                    )
                    if closed:
                        self._disarm_expiry(sibling.id)
                        found = await self.db.get_approval(sibling.id)
                        if found is not None:
                            await self._show_approval(found)
            await self.story.refresh_parent(moved)
            await self.story.reply(moved, said)

    async def expire_due(self) -> int:
        """Expire every pending request whose time has passed (on start, and when its timer fires)."""
        due = await self.db.due_expiries(self.story.now())
        for approval in due:
            await self.expire(approval)
        return len(due)

    async def _execute(self, approval: Approval, approver: Actor) -> None:
        """Carry out what was approved: queue the release (or rollback) and run it, once every request for it
        is granted. The decision is one round trip: record a break-glass override, look at the sibling
        requests, take the lock and queue."""
        release_id = approval.subject.get("release_id")
        if not isinstance(release_id, int):
            return
        now = self.story.now()
        detail = f"approved ({approval.kind.value})"
        decision = await self.db.unit(lambda store: _decide(store, release_id, approval, approver, detail, now))
        release = decision.release
        if release is None:
            return
        if decision.waiting:  # break-glass with the environment's own approvers: every request must be granted
            await self.story.reply(release, view.still_waiting(approval.kind, decision.waiting))
            return
        if decision.busy is not None:
            cancelled = await self.story.move(
                release_id,
                release.env,
                ReleaseState.CANCELLED,
                actor=SYSTEM,
                detail="environment busy when approved",
                only_from={ReleaseState.AWAITING_APPROVAL},
            )
            await self.story.reply(release, view.approved_but_busy(release.env, decision.busy, self.config.zone))
            await self.story.refresh_parent(cancelled or release_id)
            return
        if decision.queued is not None:
            await self.rollouts.run_release(decision.queued)

    async def resume_approved(self) -> int:
        """On start: carry out approvals that were granted just before a crash and never acted on."""
        pending = await self.db.approved_but_waiting()
        for approval_id, _ in pending:
            approval = await self.db.get_approval(approval_id)
            if approval is not None:
                request_id = f"resume-{approval_id}"
                # Granted by a person (the approver carries the run); a request with no decider is the bot's own.
                approver = (
                    Actor(user=approval.decided_by, request_id=request_id)
                    if approval.decided_by
                    else system_actor(request_id)
                )
                self.tasks.spawn(self._execute(approval, approver), f"approval-{approval_id}")
        return len(pending)


@dataclass(frozen=True)
class _Decision:
    release: Release | None  # None: the release is gone
    waiting: list[Approval]  # other requests for it not granted yet
    busy: Lock | None  # the lock that kept it from being queued
    queued: Release | None  # queued now (None: another path queued or cancelled it first)


def _decide(
    store: Store, release_id: int, approval: Approval, approver: Actor, detail: str, now: datetime
) -> _Decision:
    """On the store thread, in one transaction: what a granted request does to the release it was for."""
    release = store.get_release(release_id)
    if release is None:
        return _Decision(None, [], None, None)
    if approval.kind is ApprovalKind.FORCE:
        overridden = (
            {
                "checklist": apply_override(
                    ChecklistResult.from_dict(release.checklist), approver.user, release.force_reason or "break-glass"
                ).to_dict()
            }
            if release.checklist
            else {}
        )
        release = store.update_release(release_id, forced_by=approver.user, **overridden)
    waiting = [
        a
        for a in store.approvals_of_release(release_id)
        if a.id != approval.id and a.state is not ApprovalState.APPROVED
    ]
    if waiting:
        return _Decision(release, waiting, None, None)
    try:
        queued = store.queue_approved(release_id, actor=approver.user, detail=detail, now=now)
    except LockHeld as held:  # the savepoint is undone; the override above stays
        return _Decision(release, [], held.lock, None)
    return _Decision(release, [], None, queued)


def _expiry_key(approval_id: int) -> str:
    return f"approval-expiry:{approval_id}"

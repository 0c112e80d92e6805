"""One approval engine for rollbacks, break-glass releases and releases that need approvers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.checklist import ChecklistResult, apply_override
from bot.core.models import Approval, ApprovalKind, ApprovalState, ReleaseKind, ReleaseState
from bot.core.mrkdwn import escape
from bot.engine.admitting import gather, refusal_text
from bot.engine.base import SYSTEM_USER, Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context
from bot.engine.rollback_run import RollbackRunMixin
from bot.policy.admission import Kind, PlanFacts, Stage, admit
from bot.policy.permissions import Action
from bot.slack import render
from bot.slack.render_lock import manual_lock_text
from bot.store import LockHeld

ROLLBACKABLE = {ReleaseState.SUCCEEDED, ReleaseState.FAILED, ReleaseState.INTERRUPTED, ReleaseState.VERIFYING}
NEVER_RAN = {ReleaseState.CANCELLED, ReleaseState.AWAITING_APPROVAL}


class ApprovalMixin(RollbackRunMixin):
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
        now = self.now()
        approval = await self.db.run(
            self.db.sync.create_approval,
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
        await self.audit(requester, "approval.requested", f"approval:{approval.id}", kind=kind.value, title=title)
        channel = self.config.services[service].channel
        message = render.approval_message(approval, self.config.zone, title=title, detail_lines=detail_lines)
        release_id = subject.get("release_id")
        thread = None
        if isinstance(release_id, int):
            release = await self.db.run(self.db.sync.get_release, release_id)
            thread = release.thread_ts if release else None
        ts = await self.deps.notifier.post(channel, message.text, message.blocks, thread_ts=thread)
        await self.db.run(self.db.sync.set_approval_message, approval.id, channel, ts)
        self._arm_expiry(approval)
        await self.changed(service)
        return approval.id

    def _arm_expiry(self, approval: Approval) -> None:
        """Wake at the expiry so the message says expired and loses its buttons even if nobody clicks."""
        if self.deps.scheduler is None:
            return
        # The scheduler runs on the wall clock while the engine's clock may be shifted (console --now),
        # so schedule "in N minutes" rather than the engine-clock instant.
        delay = max(approval.expires_at - self.now(), timedelta(0))
        self.deps.scheduler.at(datetime.now(UTC) + delay, _expiry_key(approval.id), self._expiry_due)

    async def _expiry_due(self) -> None:
        await self.expire_due()

    def _disarm_expiry(self, approval_id: int) -> None:
        if self.deps.scheduler is not None:
            self.deps.scheduler.cancel(_expiry_key(approval_id))

    async def rearm_expiries(self) -> None:
        """On start: arm the expiry of every request still pending (jobs live only in memory)."""
        for approval in await self.db.run(self.db.sync.pending_approvals, None):
            self._arm_expiry(approval)

    async def _show_approval(self, approval: Approval) -> None:
        if approval.channel is None or approval.message_ts is None:
            return
        title = str(approval.subject.get("title", "Approval"))
        details = [str(d) for d in approval.subject.get("details", [])]
        message = render.approval_message(approval, self.config.zone, title=title, detail_lines=details)
        await self.deps.notifier.update(approval.channel, approval.message_ts, message.text, message.blocks)

    async def _eligible(self, approval: Approval, user: str, action: Action) -> None:
        who = Context(requester=approval.requester, approvers=approval.eligible_groups)
        await self.gate.require(action, user, approval.env, who)

    async def _pending(self, approval_id: int) -> Approval:
        """The request, still open; an overdue one is expired on the spot and the clicker told so."""
        approval = await self.db.run(self.db.sync.get_approval, approval_id)
        if approval is None:
            raise UserError("that approval request no longer exists.")
        if approval.state is ApprovalState.PENDING and approval.expires_at <= self.now():
            await self.expire(approval)
            raise UserError("that request has expired; nothing was done. Ask again if it is still needed.")
        if approval.state is ApprovalState.EXPIRED:
            raise UserError("that request has expired; nothing was done. Ask again if it is still needed.")
        return approval

    async def may_decide(self, actor: Actor, approval_id: int) -> None:
        """The Deny button, before its reason modal opens: the checks its submission gets again, so a click by
        the wrong person, or on a request that is decided or has expired, is refused at once."""
        approval = await self._pending(approval_id)
        await self._eligible(approval, actor.user, Action.APPROVAL_DENY)

    async def vote(self, actor: Actor, approval_id: int) -> Reply:
        """An Approve click. Double clicks and simultaneous approvers produce one effect."""
        approval = await self._pending(approval_id)
        await self._eligible(approval, actor.user, Action.APPROVAL_APPROVE)
        result = await self.db.run(self.db.sync.vote, approval_id, actor.user, self.now())
        if result.outcome == "closed":
            raise UserError(f"that request is already {result.approval.state.value}; nothing more was done.")
        if result.outcome == "duplicate":
            return Reply(render.info("You already approved this; waiting for more approvers."))
        await self.audit(actor, "approval.voted", f"approval:{approval_id}", outcome=result.outcome)
        await self._show_approval(result.approval)
        if result.outcome == "approved":
            self._disarm_expiry(approval_id)
            await self.audit(actor, "approval.approved", f"approval:{approval_id}")
            self.spawn(self._execute(result.approval, actor), f"approval-{approval_id}")
            return Reply(render.info("Approved. On it."))
        return Reply(render.info("Your approval is recorded; more approvers are needed."))

    async def deny(self, actor: Actor, approval_id: int, reason: str) -> Reply:
        """A Deny with its reason (from the modal): the request closes and what it asked for is cancelled."""
        approval = await self._pending(approval_id)
        await self._eligible(approval, actor.user, Action.APPROVAL_DENY_REASON)
        if not await self.db.run(
            self.db.sync.close_approval,
            approval_id,
            ApprovalState.DENIED,
            by=actor.user,
            reason=reason,
            now=self.now(),
        ):
            current = await self.db.run(self.db.sync.get_approval, approval_id)
            state = current.state.value if current else approval.state.value
            raise UserError(f"that request is already {state}; nothing changed.")
        self._disarm_expiry(approval_id)
        await self.audit(actor, "approval.denied", f"approval:{approval_id}", reason=reason)
        denied = await self.db.run(self.db.sync.get_approval, approval_id)
        assert denied is not None
        await self._show_approval(denied)
        await self._cancel_subject(
            approval,
            actor.user,
            f"denied: {reason}",
            f"🚫 Denied by {render.user(actor.user)}: {escape(reason)}",
        )
        await self.changed(approval.service)
        return Reply(render.info("Denied. The requester can see why."))

    async def expire(self, approval: Approval) -> None:
        """Close an overdue request (exactly once): the message says expired and its buttons go."""
        if await self.db.run(
            self.db.sync.close_approval,
            approval.id,
            ApprovalState.EXPIRED,
            by=None,
            reason="expired",
            now=self.now(),
        ):
            self._disarm_expiry(approval.id)
            await self.audit("release-bot", "approval.expired", f"approval:{approval.id}")
            expired = await self.db.run(self.db.sync.get_approval, approval.id)
            if expired is not None:
                await self._show_approval(expired)
            await self._cancel_subject(
                approval,
                "release-bot",
                "approval expired",
                "⌛ Nobody approved in time, so this did not run. Ask again if it is still needed.",
            )
            await self.changed(approval.service)

    async def _cancel_subject(self, approval: Approval, actor: str, detail: str, thread_text: str) -> None:
        """The release (or rollback) that waited for this request will not run: say so in its thread."""
        release_id = approval.subject.get("release_id")
        if not isinstance(release_id, int):
            return
        moved = await self.move(
            release_id,
            approval.env,
            ReleaseState.CANCELLED,
            actor=actor,
            detail=detail,
            only_from={ReleaseState.AWAITING_APPROVAL},
        )
        if moved:
            await self.audit(actor, "release.cancelled", f"release:{release_id}", detail=detail)
            for sibling in await self.db.run(self.db.sync.approvals_of_release, release_id):
                if sibling.id != approval.id and sibling.state is ApprovalState.PENDING:
                    closed = await self.db.run(
                        self.db.sync.close_approval,
                        sibling.id,
                        ApprovalState.CANCELLED,
                        by=actor,
                        reason=detail,
                        now=self.now(),
                    )
                    if closed:
                        self._disarm_expiry(sibling.id)
                        found = await self.db.run(self.db.sync.get_approval, sibling.id)
                        if found is not None:
                            await self._show_approval(found)
            await self.refresh_parent(release_id)
            await self.reply(release_id, render.thread_reply(thread_text))

    async def expire_due(self) -> int:
        """Expire every pending request whose time has passed (on start, and when its timer fires)."""
        due = await self.db.run(self.db.sync.due_expiries, self.now())
        for approval in due:
            await self.expire(approval)
        return len(due)

    async def _execute(self, approval: Approval, approver: Actor) -> None:
        """Carry out what was approved: run the release or the rollback."""
        release_id = approval.subject.get("release_id")
        if not isinstance(release_id, int):
            return
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None:
            return
        if approval.kind is ApprovalKind.FORCE and release.checklist:
            overridden = apply_override(
                ChecklistResult.from_dict(release.checklist),
                approver.user,
                release.force_reason or "break-glass",
            )
            await self.db.run(
                self.db.sync.update_release,
                release_id,
                forced_by=approver.user,
                checklist=overridden.to_dict(),
            )
        elif approval.kind is ApprovalKind.FORCE:
            await self.db.run(self.db.sync.update_release, release_id, forced_by=approver.user)
        others = [
            a
            for a in await self.db.run(self.db.sync.approvals_of_release, release_id)
            if a.id != approval.id and a.state is not ApprovalState.APPROVED
        ]
        if others:  # break-glass with the environment's own approvers: every request must be granted
            waiting = ", ".join(f"{a.kind.value} approval from {', '.join(a.eligible_groups)}" for a in others)
            await self.reply(
                release_id,
                render.thread_reply(f"✅ {approval.kind.value} approval granted; still waiting for {waiting}."),
            )
            return
        try:
            moved = await self.db.run(
                self.db.sync.queue_approved,
                release_id,
                actor=approver.user,
                detail=f"approved ({approval.kind.value})",
                now=self.now(),
            )
        except LockHeld as held:
            await self.move(
                release_id,
                release.env,
                ReleaseState.CANCELLED,
                actor=SYSTEM_USER,
                detail="environment busy when approved",
                only_from={ReleaseState.AWAITING_APPROVAL},
            )
            busy = (
                manual_lock_text(held.lock, self.config.zone)
                if held.lock.kind == "manual"  # never frees itself: say who placed it and how to lift it
                else f"{escape(release.env)} is busy ({escape(held.lock.reason)}). Ask again when it is free."
            )
            await self.reply(release_id, render.thread_reply(f"🚫 Approved, but {busy}"))
            await self.refresh_parent(release_id)
            return
        if moved:
            await self.run_release(release_id)

    async def resume_approved(self) -> int:
        """On start: carry out approvals that were granted just before a crash and never acted on."""
        pending = await self.db.run(self.db.sync.approved_but_waiting)
        for approval_id, _ in pending:
            approval = await self.db.run(self.db.sync.get_approval, approval_id)
            if approval is not None:
                approver = Actor(user=approval.decided_by or "release-bot", request_id=f"resume-{approval_id}")
                self.spawn(self._execute(approval, approver), f"approval-{approval_id}")
        return len(pending)

    # --- rollback -------------------------------------------------------------------------------------
    async def request_rollback(
        self,
        actor: Actor,
        service: str,
        env: str,
        target: str | None,
        of_release: int | None = None,
        *,
        action: Action = Action.ROLLBACK,
    ) -> Reply:
        """`/release rollback <env> [to <version>]`: never blocked by windows; on-call approval per config."""
        await self.gate.require(action, actor.user, env, Context(system=actor.system))
        await self.expire_due()  # a rollback whose request lapsed must not block this one
        current = await self.db.run(self.db.sync.env_state, service, env)
        recent = await self.db.run(self.db.sync.history, service, env, 20)
        waiting = next(
            (r for r in recent if r.kind is ReleaseKind.ROLLBACK and r.state is ReleaseState.AWAITING_APPROVAL), None
        )
        if waiting is not None:
            raise UserError(
                f"a rollback of {service} {env} to {escape(waiting.version)} is already waiting for approval "
                f"(release #{waiting.id}); approve or deny that one."
            )
        # The release to undo is the latest one that actually ran (a cancelled request changed nothing).
        latest = next((r for r in recent if r.state not in NEVER_RAN), None)
        original = None
        if of_release is not None:
            original = await self.db.run(self.db.sync.get_release, of_release)
        elif latest is not None and latest.state in ROLLBACKABLE:
            original = latest
        if original is None and current is None:
            raise UserError(f"nothing has been released to {env} yet, so there is nothing to roll back.")
        from_version = original.version if original else (current.version if current else "")
        if target is None:
            healthy = await self.db.run(
                self.db.sync.last_healthy,
                service,
                env,
                before_id=original.id if original else None,
                not_version=from_version,
            )
            if healthy is None:
                raise UserError(f"there is no earlier healthy release in {env} to roll back to.")
            target = healthy.version
        elif not await self.db.run(self.db.sync.succeeded_in, service, env, target):
            raise UserError(f"{escape(target)} never ran in {env}; a rollback target must have run there before.")
        if target == (current.version if current else None) and original is None:
            raise UserError(f"{env} already runs {escape(target)}.")
        if (
            of_release is not None
            and original is not None
            and original.state is ReleaseState.SUCCEEDED
            and current is not None
            and current.version != original.version
        ):
            # A button under a release that a newer one replaced: rolling "it" back would move whatever runs now.
            raise UserError(
                f"release #{original.id} ({escape(original.version)}) no longer runs in {env}: "
                f"{escape(current.version)} does. To roll back what runs now: `/release rollback {env}`."
            )
        rollback_plan = PlanFacts(
            service=service,
            env=env,
            version=target,
            kind=Kind.ROLLBACK,
            replaces=current.version if current else None,
            requester=actor.user,
            undoes_release=original is not None,
        )
        facts = await gather(
            self.db,
            service,
            env,
            target,
            current=current,
            candidate=None,  # a rollback returns to what ran there, candidate record or not
            window=None,  # and never waits for a window
            checklist=None,
            ask_duplicates=True,
        )
        refused = admit(rollback_plan, facts.world, Stage.REQUEST).refusals
        if refused:
            raise UserError("\n".join(refusal_text(r, rollback_plan, facts, self.config.zone) for r in refused))
        policy = self.config.environments[env].rollback.approvals
        # Undoing a rollback means deploying again what it replaced.
        fields: dict[str, Any] = {"rollback_target": from_version, "rollback_method": f"redeploying {from_version}"}
        state = ReleaseState.AWAITING_APPROVAL if policy.required > 0 else ReleaseState.QUEUED
        try:
            release = await self.db.run(
                self.db.sync.create_release,
                service=service,
                env=env,
                version=target,
                kind=ReleaseKind.ROLLBACK,
                state=state,
                requested_by=actor.user,
                now=self.now(),
                take_lock=state is ReleaseState.QUEUED,
                rollback_of=original.id if original else None,
                **fields,
            )
        except LockHeld as held:
            raise UserError(
                f"{service} {env} is busy: {render.user(held.lock.holder)} holds it "
                f"({escape(held.lock.reason)}). Try again once it finishes."
            ) from None
        await self.audit(
            actor,
            "rollback.requested",
            f"release:{release.id}",
            target=target,
            of_release=original.id if original else None,
        )
        await self.post_parent(release)
        if original is not None:
            await self.reply(
                original.id,
                render.thread_reply(
                    f"↩️ {render.user(actor.user)} asked to roll back to {escape(target)} (release #{release.id})."
                ),
            )
        if state is ReleaseState.AWAITING_APPROVAL:
            await self.open_approval(
                kind=ApprovalKind.ROLLBACK,
                service=service,
                env=env,
                requester=actor,
                required=policy.required,
                groups=list(policy.from_ or []),
                subject={"release_id": release.id},
                title=f"Roll back {service} {env} from {from_version} to {target}",
                detail_lines=[],
            )
            return Reply(render.info(f"Rollback to {escape(target)} is waiting for on-call approval."))
        self.spawn(self.run_release(release.id), f"release-{release.id}")
        return Reply(render.info(f"Rolling {env} back to {escape(target)} (release #{release.id})."))


def _expiry_key(approval_id: int) -> str:
    return f"approval-expiry:{approval_id}"

"""Release requests: validate → gate (window, checklist) → approval or lock → start the run."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Environment
from bot.core.checklist import (
    ChecklistResult,
    Evidence,
    ItemResult,
    RollbackPlan,
    SuiteResult,
    checklist_lines,
    evaluate_checklist,
)
from bot.core.grammar import Command
from bot.core.models import ApprovalKind, Candidate, EnvState, Release, ReleaseKind, ReleaseState
from bot.core.mrkdwn import escape
from bot.core.notes import build_release_notes
from bot.core.trivy import ScanSummary
from bot.core.window_text import decision_text
from bot.core.windows import AdhocFreeze, Reason, WindowDecision
from bot.engine.admitting import gather, refusal_text
from bot.engine.base import Actor, EngineBase, Reply, log
from bot.engine.errors import UserError
from bot.policy.admission import Kind, PlanFacts, Stage, admit
from bot.policy.permissions import Action
from bot.slack import render
from bot.slack.render_lock import lock_refusal
from bot.sources.base import SourceError
from bot.store import LockHeld

# An ad-hoc freeze's reason names who declared it with a mention we built from a stored user ID.
_FREEZER = re.compile(r"^ad-hoc freeze by &lt;@([UW][A-Z0-9]+)&gt;:")


def _safe_reason(reason: Reason) -> Reason:
    """The reason as mrkdwn: typed text (a freeze's reason) is escaped; the freezer's mention still pings."""
    text = escape(reason.text)
    if reason.code == "adhoc_freeze":
        text = _FREEZER.sub(r"ad-hoc freeze by <@\1>:", text, count=1)
    return Reason(reason.code, text)


def window_mrkdwn(decision: WindowDecision, zone: ZoneInfo, user_zone: ZoneInfo | None = None) -> str:
    """The window decision as one mrkdwn sentence that nobody's typed text can turn into a ping or link."""
    safe = replace(decision, reasons=tuple(_safe_reason(r) for r in decision.reasons))
    return decision_text(safe, zone, user_zone)


def window_item(decision: WindowDecision) -> ItemResult:
    """The pseudo checklist item a break-glass request outside its window records, so the approval
    overrides the window explicitly (and the runner's re-check and the parent message can tell)."""
    why = "; ".join(_safe_reason(r).text for r in decision.reasons) or "closed"
    return ItemResult(render.OUTSIDE_WINDOW, False, f"deployment window closed: {why}")


@dataclass(frozen=True)
class Plan:
    """A validated request, before it is gated."""

    service: str
    env: str
    version: str
    kind: ReleaseKind
    source_env: str | None
    candidate: Candidate
    current: EnvState | None  # what runs in ``env`` now (the release notes start from it)


class RequestMixin(EngineBase):
    # Implemented by the runner and approval mixins.
    async def run_release(self, release_id: int) -> None:
        raise RuntimeError("the runner mixin is missing")

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
        raise RuntimeError("the approval mixin is missing")

    # --- validation -------------------------------------------------------------------------------
    async def plan(self, actor: Actor, cmd: Command) -> Plan:
        assert cmd.service is not None and cmd.env is not None
        service, env = cmd.service, cmd.env
        pipeline = self.config.services[service].pipeline
        if env not in pipeline:
            raise UserError(f"{env} is not in {service}'s pipeline ({' → '.join(pipeline)}).")
        previous = self.config.previous_stage(service, env)
        kind = ReleaseKind.DEPLOY
        source_env: str | None = None
        version = cmd.version
        if version is None:  # promote what the previous (or named) stage runs
            source_env = cmd.source_env or previous
            if source_env is None:
                raise UserError(f"{env} is {service}'s first stage: name a version, e.g. `/release {env} 1.4.2`.")
            if source_env not in pipeline or pipeline.index(source_env) >= pipeline.index(env):
                raise UserError(f"promote goes forward along the pipeline ({' → '.join(pipeline)}).")
            running = await self.db.run(self.db.sync.env_state, service, source_env)
            if running is None:
                raise UserError(f"nothing runs in {source_env} yet, so there is nothing to promote to {env}.")
            version, kind = running.version, ReleaseKind.PROMOTE
        candidate = await self.db.run(self.db.sync.get_candidate, service, version)
        if candidate is None:
            recent = await self.db.run(self.db.sync.candidates, service, 5)
            known = ", ".join(escape(c.version) for c in recent) or "none yet"
            raise UserError(
                f"{escape(version)} is not a known {service} candidate (recent: {known}). "
                "CI registers candidates with `POST /api/v1/candidates`."
            )
        if previous is not None and not await self.db.run(self.db.sync.succeeded_in, service, previous, version):
            raise UserError(
                f"{escape(version)} has not been released to {previous} yet; {env} only gets versions that "
                f"passed {previous}. Run `/release {previous} {escape(version)}` first."
            )
        current = await self.db.run(self.db.sync.env_state, service, env)
        if current is not None and current.version == version:
            raise UserError(
                f"{env} already runs {escape(version)} (since {render.when(current.since, self.config.zone)})."
            )
        # Asked after the plan's own checks, so a bad command is explained the same way to everyone.
        await self.gate.require(Action(cmd.name), actor.user, env)
        return Plan(service, env, version, kind, source_env, candidate, current)

    # --- gates --------------------------------------------------------------------------------------
    async def adhoc_freezes(self, service: str) -> list[AdhocFreeze]:
        return (await self.db.run(self.db.sync.adhoc_freezes, service)).get(service, [])

    async def window(self, service: str, env: str) -> WindowDecision:
        return self.windows.decide(env, self.now(), await self.adhoc_freezes(service))

    async def rollback_plan(self, service: str, env: str, version: str) -> RollbackPlan:
        previous = await self.db.run(self.db.sync.last_healthy, service, env, before_id=None, not_version=version)
        environment = self.config.environments[env]
        if previous is None:
            return RollbackPlan(None, "nothing to return to (first release here)")
        if environment.strategy.type == "blue_green":
            return RollbackPlan(previous.version, "switch traffic back to the previous colour")
        deploy = environment.deploy
        if deploy.provider == "command" and deploy.rollback:
            return RollbackPlan(previous.version, "the configured rollback command")
        return RollbackPlan(previous.version, f"redeploying {previous.version}")

    async def release_notes(self, plan: Plan) -> dict[str, Any]:
        """Notes for what this release changes since the version it replaces, or why there are none."""
        source = self.deps.sources(plan.service)
        if source is None:
            return {"unavailable": "no repository configured for this service"}
        base: str | None = None
        if plan.current is not None:
            replaced = await self.db.run(self.db.sync.get_candidate, plan.service, plan.current.version)
            base = replaced.commit if replaced else None
        try:
            commits = await source.commits_between(base, plan.candidate.commit)
        except SourceError as exc:
            return {"unavailable": str(exc)}
        except Exception as exc:  # an unreachable source must never stop a release by crashing it
            log.exception("release notes failed")
            return {"unavailable": f"the commit source failed ({type(exc).__name__})"}
        pr_base = getattr(source, "pr_url_base", None)
        # Grouping a long range takes ~100 ms at 10k commits: build and serialise off the event loop.
        pr_url_base = pr_base if isinstance(pr_base, str) else None
        return await asyncio.to_thread(lambda: build_release_notes(commits, pr_url_base=pr_url_base).to_dict())

    async def evaluate(
        self, plan: Plan, environment: Environment, notes: dict[str, Any], rollback: RollbackPlan
    ) -> ChecklistResult:
        tests = await self.db.run(self.db.sync.tests, plan.service, plan.version)
        scan = await self.db.run(self.db.sync.scan, plan.service, plan.version)
        evidence = Evidence(
            tests={
                suite: SuiteResult(suite=suite, status=t["status"], url=t["url"])
                for suite, t in tests.items()
                if t["status"] in ("passed", "failed")
            },
            scan=ScanSummary.from_dict(scan) if scan else None,
            components=plan.candidate.components,
            notes=f"unavailable: {notes['unavailable']}" if "unavailable" in notes else "generated",
            rollback_plan=rollback,
            expected_components=self.config.services[plan.service].components,
        )
        return evaluate_checklist(environment, evidence)

    async def _checklist_now(self, release: Release, candidate: Candidate) -> ChecklistResult:
        """The checklist of a stored release, evaluated on today's evidence."""
        plan = Plan(release.service, release.env, release.version, release.kind, release.source_env, candidate, None)
        rollback = RollbackPlan(release.rollback_target, release.rollback_method or "")
        return await self.evaluate(plan, self.config.environments[release.env], release.notes or {}, rollback)

    # --- the request ---------------------------------------------------------------------------------
    async def _create_release(
        self, actor: Actor, plan: Plan, state: ReleaseState, *, take_lock: bool, **fields: Any
    ) -> Release:
        """Record ``plan`` as a release in ``state``; with ``take_lock`` the env's lock too, or LockHeld."""
        return await self.db.run(
            self.db.sync.create_release,
            service=plan.service,
            env=plan.env,
            version=plan.version,
            kind=plan.kind,
            state=state,
            requested_by=actor.user,
            now=self.now(),
            take_lock=take_lock,
            source_env=plan.source_env,
            **fields,
        )

    async def request_release(self, actor: Actor, cmd: Command) -> Reply:
        """`/release <env> [version]`, `deploy`, `promote`: refuse with a reason, ask approval, or start."""
        plan = await self.plan(actor, cmd)
        environment = self.config.environments[plan.env]
        blockers: list[str] = []  # mrkdwn, each already safe to show
        decision = await self.window(plan.service, plan.env)
        if not decision.open:
            blockers.append(window_mrkdwn(decision, self.config.zone))
        notes = await self.release_notes(plan)
        rollback = await self.rollback_plan(plan.service, plan.env, plan.version)
        checklist = await self.evaluate(plan, environment, notes, rollback)
        if not checklist.passed:
            blockers.append(f"{plan.env}'s checklist is not satisfied:\n" + "\n".join(checklist_lines(checklist)))
        # What break-glass cannot carry (stale, downgrade, busy, held, a twin waiting) is refused before anyone
        # is asked to approve; the window and checklist blockers above are the ones `--force` may carry.
        facts_of_plan = PlanFacts(
            service=plan.service,
            env=plan.env,
            version=plan.version,
            kind=Kind.FORWARD,
            replaces=plan.current.version if plan.current else None,
            requester=actor.user,
        )
        facts = await gather(
            self.db,
            plan.service,
            plan.env,
            plan.version,
            current=plan.current,
            candidate=plan.candidate,
            window=decision,
            checklist=checklist,
            ask_duplicates=True,
        )
        hard = admit(facts_of_plan, facts.world, Stage.REQUEST).hard
        if hard:
            raise UserError("\n".join(refusal_text(r, facts_of_plan, facts, self.config.zone) for r in hard))
        if blockers and cmd.force_reason is None:
            raise UserError(
                "\n".join(blockers) + "\nBreak-glass: add `--force <reason>` (an on-call approver is asked)."
            )
        force = cmd.force_reason is not None and bool(blockers)
        if force and not decision.open:
            checklist = ChecklistResult((window_item(decision), *checklist.items))
        fields: dict[str, Any] = {
            "checklist": checklist.to_dict(),
            "notes": notes,
            "rollback_target": rollback.target_version,
            "rollback_method": rollback.method,
        }
        needs_approval = force or environment.approvals.required > 0
        if needs_approval:
            release = await self._create_release(
                actor,
                plan,
                ReleaseState.AWAITING_APPROVAL,
                take_lock=False,
                **fields,
                force_reason=cmd.force_reason if force else None,
            )
            await self.audit(
                actor,
                "release.requested",
                f"release:{release.id}",
                version=plan.version,
                env=plan.env,
                force_reason=cmd.force_reason if force else None,
            )
            release = await self.post_parent(release)
            # Break-glass adds an on-call approver (not the requester); it never replaces the approvals the
            # environment asks of every release, so both requests must be granted before it runs.
            if environment.approvals.required > 0:
                await self.open_approval(
                    kind=ApprovalKind.RELEASE,
                    service=plan.service,
                    env=plan.env,
                    requester=actor,
                    required=environment.approvals.required,
                    groups=list(environment.approvals.from_ or []),
                    subject={"release_id": release.id},
                    title=f"Release of {plan.service} {plan.version} to {plan.env}",
                    detail_lines=[],
                )
            if force:
                await self.open_approval(
                    kind=ApprovalKind.FORCE,
                    service=plan.service,
                    env=plan.env,
                    requester=actor,
                    required=1,
                    groups=["oncall"],
                    subject={"release_id": release.id},
                    title=f"Break-glass release of {plan.service} {plan.version} to {plan.env}",
                    detail_lines=[f"Reason: {escape(cmd.force_reason or '')}", *blockers],
                )
            return Reply(
                render.info(f"Release #{release.id} of {escape(plan.version)} to {plan.env} is waiting for approval.")
            )
        try:
            release = await self._create_release(actor, plan, ReleaseState.QUEUED, take_lock=True, **fields)
        except LockHeld as held:
            raise UserError(lock_refusal(held.lock, self.config.zone)) from None
        await self.audit(actor, "release.requested", f"release:{release.id}", version=plan.version, env=plan.env)
        await self.post_parent(release)
        self.spawn(self.run_release(release.id), f"release-{release.id}")
        return Reply(render.info(f"Release #{release.id}: {escape(plan.version)} to {plan.env} has started."))

"""The reads the gates decide on: the window now, the checklist on today's evidence, the rollback plan.

Shared by a request (before anyone is asked) and the runner (again, right before the deploy), so both
judge a plan on the same facts. The decisions themselves are pure (bot.core.windows, bot.core.checklist,
bot.policy.admission).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.core.checklist import ChecklistResult, Evidence, ItemResult, RollbackPlan, SuiteResult, evaluate_checklist
from bot.core.models import Candidate, EnvState, Release, ReleaseKind
from bot.core.trivy import ScanSummary
from bot.core.windows import AdhocFreeze, WindowDecision, WindowPolicy
from bot.engine.admitting import Reads
from bot.policy.admission import WINDOW_ITEM
from bot.ports import Clock
from bot.store import AsyncStore
from bot.views.requests import outside_window_reason


def window_item(decision: WindowDecision) -> ItemResult:
    """The pseudo checklist item a break-glass request outside its window records, so the approval
    overrides the window explicitly (and the runner's re-check and the parent message can tell)."""
    return ItemResult(WINDOW_ITEM, False, outside_window_reason(decision))


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


class Gates:
    def __init__(self, config: Config, db: AsyncStore, clock: Clock) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.windows = WindowPolicy(config)

    async def adhoc_freezes(self, service: str) -> list[AdhocFreeze]:
        return (await self.db.adhoc_freezes(service)).get(service, [])

    async def window(self, service: str, env: str, at: datetime | None = None) -> WindowDecision:
        return self.windows.decide(env, at or self.clock.now(), await self.adhoc_freezes(service))

    def rollback_plan(self, env: str, last_healthy: Release | None) -> RollbackPlan:
        """How ``env`` would return to ``last_healthy`` (the newest healthy release of another version)."""
        # The method reads after "by" in the parent message: "back to 1.4.1 by switching traffic back to …".
        if last_healthy is None:
            return RollbackPlan(None, "nothing to roll back to")
        if self.config.strategy_for(last_healthy.service, env).type == "blue_green":
            return RollbackPlan(last_healthy.version, "switching traffic back to the previous colour")
        deploy = self.config.environments[env].deploy
        if deploy.provider == "command" and deploy.rollback:
            return RollbackPlan(last_healthy.version, "the configured rollback command")
        return RollbackPlan(last_healthy.version, f"redeploying {last_healthy.version}")

    def evaluate(self, plan: Plan, notes: dict[str, Any], rollback: RollbackPlan, reads: Reads) -> ChecklistResult:
        """The env's checklist for ``plan`` on the evidence read (tests and scan of its version)."""
        evidence = Evidence(
            tests={
                suite: SuiteResult(suite=suite, status=t["status"], url=t["url"])
                for suite, t in reads.tests.items()
                if t["status"] in ("passed", "failed")
            },
            # Scans stored before they were kept per image (component '') stand for the whole candidate.
            scan=ScanSummary.from_dict(reads.scans[""]) if "" in reads.scans else None,
            scans={name: ScanSummary.from_dict(summary) for name, summary in reads.scans.items() if name},
            components=plan.candidate.components,
            notes=f"unavailable: {notes['unavailable']}" if "unavailable" in notes else "generated",
            rollback_plan=rollback,
            expected_components=self.config.services[plan.service].components,
        )
        return evaluate_checklist(self.config.environments[plan.env], evidence)

    def checklist_now(self, release: Release, candidate: Candidate, reads: Reads) -> ChecklistResult:
        """The checklist of a stored release, evaluated on today's evidence."""
        plan = Plan(release.service, release.env, release.version, release.kind, release.source_env, candidate, None)
        rollback = RollbackPlan(release.rollback_target, release.rollback_method or "")
        return self.evaluate(plan, release.notes or {}, rollback, reads)

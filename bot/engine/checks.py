"""Post-release checks: persisted schedule, measurement once per (release, check, offset), outcomes."""

from __future__ import annotations

from datetime import timedelta

from bot.config import Check
from bot.core.models import Release
from bot.core.mrkdwn import escape
from bot.core.rollout import Step
from bot.core.verdicts import Measurement, Verdict, worst
from bot.engine.approvals import ApprovalMixin
from bot.engine.base import Actor, Reply, UserError, log
from bot.slack import render

VERDICT_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "❔", "error": "⚠️"}


class ChecksMixin(ApprovalMixin):
    def _checks(self, env: str) -> list[Check]:
        return list(self.config.environments[env].checks)

    def _measurement_message(self, measurement: Measurement, offset: str) -> render.Message:
        icon = VERDICT_ICON.get(measurement.verdict.value, "•")
        text = f"{icon} *{escape(measurement.check)}* ({offset}): {escape(measurement.summary)}"
        if measurement.detail:
            text += f" — {escape(measurement.detail)}"
        blocks = [render.section(text)]
        if measurement.query:
            blocks.append(render.context(f"query: `{escape(measurement.query)[:2800]}`"))
        return render.Message(text=f"{measurement.check}: {measurement.verdict.value}", blocks=blocks)

    async def _measure(self, release: Release, check: Check, offset: str) -> Measurement | None:
        if self.deps.checks is None:
            return None

        async def show_error(attempt: Measurement) -> None:
            await self.reply(release.id, self._measurement_message(attempt, offset))

        measurement = await self.deps.checks.run(
            check,
            self.now(),
            service=release.service,
            environment=release.env,
            version=release.version,
            on_error=show_error,
        )
        await self.reply(release.id, self._measurement_message(measurement, offset))
        return measurement

    async def verify_step(self, release: Release, step: Step) -> Verdict:
        """Checks between canary / blue-green steps: every configured check, measured now."""
        checks = self._checks(release.env)
        if not checks or self.deps.checks is None:
            return Verdict.PASS
        verdicts = []
        for check in checks:
            measurement = await self._measure(release, check, step.label)
            if measurement is not None:
                verdicts.append(measurement.verdict)
        return worst(verdicts) or Verdict.PASS

    async def schedule_checks(self, release: Release) -> None:
        """Persist one row per (check, offset) after the release; the store is the source of truth."""
        checks = self._checks(release.env)
        if not checks:
            return
        start = release.finished_at or self.now()
        planned = [(c.name, int(off.total_seconds()), start + off) for c in checks for off in c.after]
        await self.db.run(self.db.sync.schedule_measurements, release.id, planned)
        offsets = ", ".join(sorted({render.when(due, self.config.zone) for _, _, due in planned}))
        await self.reply(release.id, render.thread_reply(f"🗓️ Post-release checks scheduled: {offsets}."))
        self.arm_schedule(planned_release=release.id)

    def arm_schedule(self, planned_release: int | None = None) -> None:
        """Ask the scheduler to wake us at the next due measurement (restart-safe: rows drive it)."""
        if self.deps.scheduler is None:
            return
        self.spawn(self._arm(), "arm-checks")

    async def _arm(self) -> None:
        assert self.deps.scheduler is not None
        pending = await self.db.run(self.db.sync.pending_measurements, None)
        for row in pending:
            key = f"check:{row['release_id']}:{row['check_name']}:{row['offset_s']}"
            self.deps.scheduler.at(row["due_at"], key, self._wake)

    async def _wake(self) -> None:
        await self.run_due_measurements()

    async def run_due_measurements(self) -> int:
        """Take every pending measurement whose time has come (missed ones included), each exactly once."""
        now = self.now()
        ran = 0
        for row in await self.db.run(self.db.sync.pending_measurements, None):
            if row["due_at"] > now:
                continue
            if not await self.db.run(
                self.db.sync.claim_measurement, row["release_id"], row["check_name"], row["offset_s"]
            ):
                continue  # another wake-up took it
            ran += 1
            try:
                await self._take(row["release_id"], row["check_name"], row["offset_s"])
            except Exception:
                log.exception("measurement %s failed", row)
        return ran

    async def _take(self, release_id: int, check_name: str, offset_s: int) -> None:
        release = await self.db.run(self.db.sync.get_release, release_id)
        check = next((c for c in self._checks(release.env) if c.name == check_name), None) if release else None
        if release is None or check is None:
            await self.db.run(
                self.db.sync.record_measurement,
                release_id,
                check_name,
                offset_s,
                verdict="error",
                value=None,
                summary="check no longer configured",
                query=None,
                now=self.now(),
            )
            return
        offset = f"+{timedelta(seconds=offset_s)}"
        measurement = await self._measure(release, check, offset)
        if measurement is None:
            await self.db.run(
                self.db.sync.record_measurement,
                release_id,
                check_name,
                offset_s,
                verdict="inconclusive",
                value=None,
                summary="metrics are not configured",
                query=None,
                now=self.now(),
            )
            return
        await self.db.run(
            self.db.sync.record_measurement,
            release_id,
            check_name,
            offset_s,
            verdict=measurement.verdict.value,
            value=measurement.value,
            summary=measurement.summary,
            query=measurement.query,
            now=self.now(),
        )
        await self._settle_verdict(release, measurement.verdict)

    async def _settle_verdict(self, release: Release, latest: Verdict) -> None:
        rows = await self.db.run(self.db.sync.measurements, release.id)
        verdicts = [Verdict(r["verdict"]) for r in rows if r["verdict"]]
        verdict = worst(verdicts)
        if verdict is None:
            return
        await self.db.run(
            self.db.sync.update_release,
            release.id,
            verdict=verdict.value,
            **({"healthy": False} if verdict is Verdict.FAIL else {}),
        )
        await self.refresh_parent(release.id)
        if latest is Verdict.PASS:
            return
        policy = self.config.environments[release.env].on_check_failure
        if latest is Verdict.FAIL:
            await self.db.run(self.db.sync.cancel_measurements, release.id)
            await self.audit("release-bot", "check.failed", f"release:{release.id}")
            if policy == "auto_rollback":
                await self.reply(release.id, render.thread_reply("❌ A check failed: rolling back automatically."))
                await self.request_rollback(
                    Actor(user="release-bot"), release.service, release.env, None, of_release=release.id
                )
                return
        if policy == "notify" or latest is Verdict.ERROR:
            return
        oncall = " ".join(render.user(u) for u in self.config.groups.get("oncall", []) if u.startswith("U"))
        what = "failed" if latest is Verdict.FAIL else "is inconclusive"
        message = render.Message(
            text=f"A post-release check {what}",
            blocks=[
                render.section(f"{oncall} a post-release check {what} for {escape(release.version)}."),
                render.check_buttons(release.id, latest.value),
            ],
        )
        await self.reply(release.id, message)

    async def check_action(self, actor: Actor, release_id: int, action: str) -> Reply:
        """Buttons under a check result: roll back, dismiss, or looks good."""
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None:
            raise UserError("that release no longer exists.")
        oncall = self.config.environments[release.env].rollback.approvals.from_ or ["oncall"]
        if not await self.in_groups(actor.user, oncall):
            raise UserError(f"you are not in {', '.join(oncall)}, so you cannot act on this check.")
        if action == "check_rollback":
            if not await self.db.run(self.db.sync.claim, f"check-rollback:{release_id}", self.now()):
                raise UserError("a rollback of this release was already requested.")
            return await self.request_rollback(actor, release.service, release.env, None, of_release=release_id)
        if not await self.db.run(self.db.sync.claim, f"check-ack:{release_id}:{action}", self.now()):
            raise UserError("already noted.")
        healthy = action == "check_looks_good"
        await self.db.run(self.db.sync.update_release, release_id, **({"healthy": True} if healthy else {}))
        await self.audit(actor, "check.acknowledged", f"release:{release_id}", button=action)
        what = "looks good" if healthy else "dismissed"
        await self.reply(release_id, render.thread_reply(f"👍 {render.user(actor.user)}: {what}."))
        return Reply(render.info(f"Noted: {what}."))

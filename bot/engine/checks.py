"""Post-release checks: persisted schedule, measurement once per (release, check, offset), outcomes.

The store is the source of truth: one row per (release, check, offset) with its due time. APScheduler
only wakes us; a wake takes every due row through ``claim_measurement`` (pending → running, once), so
a job that fires twice, a restart, or two wakes racing never measure the same row twice, and a
cancelled row (newer release, rollback) is never taken.

A watch window (``every`` + ``for``) is one row per tick (bot/core/watch.py), judged from its rows: it is
ONE reply with a running tally, edited in place by every tick (its ts kept on the rows, so a restart keeps
editing it), until the window ends or fails; a FAIL cancels the remaining ticks.

Each measurement is one reply in the release thread, posted at its first failed attempt (or with its
result) and edited in place as attempts go on. A measurement that ends "metrics unavailable" keeps its
reply's ts on its row, and the check's next measurement continues that reply: a backend outage reads as
one reply per check, with the attempt count and the error said once — not one reply per attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.config import Check, Config
from bot.core.durations import format_duration
from bot.core.models import Release, ReleaseState
from bot.core.rollout import Step, compared_sides, offset_text
from bot.core.verdicts import Measurement, Verdict
from bot.core.watch import Planned, release_verdict, tally, tick_offsets
from bot.engine.base import SYSTEM
from bot.engine.gatekeeper import Gatekeeper
from bot.engine.story import Story, Tasks, log
from bot.metrics.compare import measure_compare
from bot.metrics.run import CheckRunner
from bot.observability import check_measured
from bot.ports import Scheduler
from bot.views import render, thread
from bot.views.checks import check_ping, checks_planned, hold_message, watch_reply


def job_key(release_id: int, check_name: str, offset_s: int) -> str:
    """The scheduler job id of one scheduled measurement (re-arming the same row replaces its job)."""
    return f"check:{release_id}:{check_name}:{offset_s}"


def offset_label(offset_s: int) -> str:
    """How a post-release offset is shown in the thread: ``+15m``, as a rollout's verify steps write their pause."""
    return offset_text(timedelta(seconds=offset_s))


@dataclass
class CheckReply:
    """Where a measurement is shown: its thread reply once posted (edited in place from then on)."""

    ts: str | None = None
    unavailable_at: tuple[str, ...] = ()  # the check's earlier offsets, unreadable in the outage this reply shows


def continued_reply(rows: list[dict[str, Any]], row: dict[str, Any]) -> CheckReply:
    """The reply a measurement continues: its check's previous one, when that ended "metrics unavailable"."""
    earlier = [
        r
        for r in rows
        if r["check_name"] == row["check_name"] and r["offset_s"] < row["offset_s"] and r["state"] == "done"
    ]
    if not earlier or earlier[-1]["outage_ts"] is None:
        return CheckReply()
    ts = earlier[-1]["outage_ts"]
    return CheckReply(ts, tuple(offset_label(r["offset_s"]) for r in earlier if r["outage_ts"] == ts))


RollBack = Callable[[Release], Awaitable[object]]


class Checks:
    """Metric checks between rollout steps and after a release: measured, shown, judged, acted on."""

    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        tasks: Tasks,
        gate: Gatekeeper,
        runner: CheckRunner | None,
        scheduler: Scheduler | None,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.tasks = tasks
        self.gate = gate
        self.runner = runner  # None: checks are skipped
        self.scheduler = scheduler
        # What a failed check does under ``on_check_failure: auto_rollback``. Rollbacks deploy and deploys
        # are checked, so this one edge of that cycle is connected after both exist (see Engine).
        self.roll_back: RollBack | None = None
        # Check wake-ups can fire by the hundred at once: one sweep runs at a time, and a wake-up that
        # arrives meanwhile asks for one more sweep instead of starting its own.
        self._sweep_lock = asyncio.Lock()
        self._sweep_again = False
        self._measure_slots = asyncio.Semaphore(8)  # measurements in flight at once (backends are remote)

    def _checks(self, release: Release) -> list[Check]:
        return self.config.checks_for(release.service, release.env)

    async def _measure(
        self, release: Release, check: Check, offset: str, at: datetime, reply: CheckReply | None = None
    ) -> Measurement | None:
        """Measure ``check`` as of ``at``, showing failed attempts and the result in one reply (``reply``)."""
        if self.runner is None:
            return None
        shown = reply if reply is not None else CheckReply()
        attempts = 1 + self.config.metrics.retries

        async def show(measurement: Measurement) -> None:
            message = render.check_reply(measurement, offset, of=attempts, unavailable_at=shown.unavailable_at)
            await self._show(release, shown, message)

        if check.compare is not None:
            measurement = await self._compare(release, check, at, show)
        else:
            measurement = await self.runner.run(
                check,
                at,
                service=release.service,
                environment=release.env,
                version=release.version,
                on_error=show,
            )
        check_measured(release.env, measurement.verdict.value)
        await show(measurement)
        return measurement

    async def _compare(
        self, release: Release, check: Check, at: datetime, show: Callable[[Measurement], Awaitable[None]]
    ) -> Measurement:
        """A ``compare: canary_to_stable`` check: the canary and the stable side by side, judged on the ratio."""
        assert self.runner is not None
        strategy = self.config.strategy_for(release.service, release.env)
        sides = compared_sides(
            strategy.type, version=release.version, previous_version=release.previous_version, colour=release.colour
        )
        if sides is None:
            # A first release has no stable: nothing to compare is not a verdict on the canary.
            summary = f"{check.name}: no stable release to compare {release.version} with"
            return Measurement(check.name, Verdict.INCONCLUSIVE, None, summary, check.prometheus)
        return await measure_compare(
            self.runner,
            check,
            at,
            service=release.service,
            environment=release.env,
            version=release.version,
            sides=sides,
            on_error=show,
        )

    async def _show(self, release: Release, reply: CheckReply, message: render.Message) -> None:
        """Post ``message`` in the release's thread the first time, then edit that reply in place."""
        if reply.ts is None:
            reply.ts = await self.story.reply(release.id, message)
            return
        if release.channel is None:
            return
        try:
            await self.story.notifier.update(release.channel, reply.ts, message.text, message.blocks)
        except Exception:
            log.exception("could not update a check reply in the thread of release %s", release.id)

    async def verify_step(self, release: Release, step: Step) -> list[Measurement]:
        """Checks between canary / blue-green steps: every configured check, measured now."""
        if self.runner is None:
            return []
        measured = []
        for check in self._checks(release):
            measurement = await self._measure(release, check, step.label, self.story.now())
            if measurement is not None:
                measured.append(measurement)
        return measured

    def planned(self, release: Release) -> list[Planned]:
        """The measurements after ``release``: each check at each offset, a watch window at each tick.

        A compare check is not among them: it compares a canary with the stable, at the verify steps.
        """
        start = release.finished_at or self.story.now()
        planned = []
        for c in self._checks(release):
            if c.compare is not None:
                continue
            if c.every is not None and c.for_ is not None:
                every_s = int(c.every.total_seconds())
                planned += [
                    Planned(c.name, off, start + timedelta(seconds=off), every_s, c.failure_limit)
                    for off in tick_offsets(c.every, c.for_)
                ]
            else:
                planned += [Planned(c.name, int(off.total_seconds()), start + off) for off in c.after]
        return planned

    async def scheduled(self, release: Release, planned: list[Planned]) -> None:
        """The ``planned`` rows are stored: say when they run, and ask the scheduler to wake us then."""
        if not planned:
            return
        windows = []
        for c in self._checks(release):
            ticks = [p.due for p in planned if p.check == c.name and p.every_s is not None]
            if ticks and c.every is not None and c.for_ is not None:
                windows.append((c.name, format_duration(c.every), format_duration(c.for_), max(ticks)))
        offsets = (p.due for p in planned if p.every_s is None)
        await self.story.reply(release, checks_planned(offsets, windows, self.config.zone))
        self._arm([(release.id, p.check, p.offset_s, p.due) for p in planned])

    def arm_schedule(self) -> None:
        """On start: ask the scheduler to wake us at every pending measurement (the rows drive it)."""
        if self.scheduler is not None:
            self.tasks.spawn(self._arm_pending(), "arm-checks")

    async def _arm_pending(self) -> None:
        pending = await self.db.pending_measurements(None)
        self._arm([(r["release_id"], r["check_name"], r["offset_s"], r["due_at"]) for r in pending])

    def _arm(self, rows: list[tuple[int, str, int, datetime]]) -> None:
        """One scheduler job per measurement row; re-arming a row replaces its job."""
        if self.scheduler is None:
            return
        for release_id, check_name, offset_s, due_at in rows:
            self.scheduler.at(due_at, job_key(release_id, check_name, offset_s), self._wake)

    async def cancel_checks(self, release_id: int, why: str) -> int:
        """Cancel the release's pending measurements (rows and scheduler jobs) and say why in its thread."""
        cancelled = await self.db.cancel_measurements(release_id=release_id)
        await self._cancelled(cancelled, why)
        return len(cancelled)

    async def superseded(self, release: Release, cancelled: list[dict[str, Any]]) -> None:
        """``release`` superseded the checks still pending for older ones (``cancelled``, already stored)."""
        await self._cancelled(cancelled, f"superseded by {release.version} (release #{release.id})")

    async def _cancelled(self, rows: list[dict[str, Any]], why: str) -> None:
        """Drop the scheduler jobs of cancelled rows and tell each release's thread how many went."""
        per_release: dict[int, int] = {}
        windows: set[tuple[int, str]] = set()
        for row in rows:
            # A watch window's remaining ticks are one check cancelled, however many ticks it had left.
            window = (row["release_id"], row["check_name"])
            if row.get("every_s") is None or window not in windows:
                per_release[row["release_id"]] = per_release.get(row["release_id"], 0) + 1
            if row.get("every_s") is not None:
                windows.add(window)
            if self.scheduler is not None:
                self.scheduler.cancel(job_key(row["release_id"], row["check_name"], row["offset_s"]))
        for release_id, count in per_release.items():
            await self.story.reply(release_id, thread.checks_cancelled(count, why))

    async def _wake(self) -> None:
        # Tracked like any background work, so shutdown and tests can await it.
        self.tasks.spawn(self.run_due_measurements(), "checks-due")

    async def run_due_measurements(self) -> int:
        """Take every pending measurement whose time has come (missed ones included), each exactly once."""
        if self._sweep_lock.locked():
            self._sweep_again = True  # the running sweep will look again when it finishes
            return 0
        ran = 0
        async with self._sweep_lock:
            while True:
                self._sweep_again = False
                due = await self.db.due_measurements(self.story.now())
                # Checks run side by side; one check's offsets in order, so each can continue the reply of the
                # one before it (several are due at once after a restart).
                per_check: dict[tuple[int, str], list[dict[str, Any]]] = {}
                for row in due:
                    per_check.setdefault((row["release_id"], row["check_name"]), []).append(row)
                ran += sum(await asyncio.gather(*(self._take_in_order(rows) for rows in per_check.values())))
                if not self._sweep_again and len(due) < 500:
                    return ran

    async def _take_in_order(self, rows: list[dict[str, Any]]) -> int:
        return sum([await self._take_if_unclaimed(row) for row in sorted(rows, key=lambda r: r["offset_s"])])

    async def _take_if_unclaimed(self, row: dict[str, Any]) -> int:
        async with self._measure_slots:
            if not await self.db.claim_measurement(row["release_id"], row["check_name"], row["offset_s"]):
                return 0  # another wake-up took it, or it was cancelled meanwhile
            if self.scheduler is not None:
                # Taken early (on start, or by another row's wake-up): its own job has nothing left to do.
                self.scheduler.cancel(job_key(row["release_id"], row["check_name"], row["offset_s"]))
            try:
                await self._take(row)
            except Exception:
                log.exception("measurement %s failed", row)
            return 1

    async def _record(self, row: dict[str, Any], verdict: str, summary: str, **fields: Any) -> None:
        await self.db.record_measurement(
            row["release_id"],
            row["check_name"],
            row["offset_s"],
            verdict=verdict,
            value=fields.get("value"),
            summary=summary,
            query=fields.get("query"),
            now=self.story.now(),
            outage_ts=fields.get("outage_ts"),
            reply_ts=fields.get("reply_ts"),
        )

    async def _take(self, row: dict[str, Any]) -> None:
        release = await self.db.get_release(row["release_id"])
        check = next((c for c in self._checks(release) if c.name == row["check_name"]), None) if release else None
        if release is None or check is None:
            await self._record(row, "error", "check no longer configured")
            return
        if row.get("every_s") is not None:
            await self._take_tick(release, check, row)
            return
        reply = continued_reply(await self.db.measurements(release.id), row)
        # Measured as of the due time (release time + offset), not "now": a missed measurement that
        # runs late after a restart still describes the release at its offset.
        measurement = await self._measure(release, check, offset_label(row["offset_s"]), row["due_at"], reply)
        if measurement is None:
            await self._record(row, "inconclusive", "metrics are not configured")
            return
        await self._record(
            row,
            measurement.verdict.value,
            measurement.summary,
            value=measurement.value,
            query=measurement.query,
            outage_ts=reply.ts if measurement.error is not None else None,
        )
        await self._settle_verdict(release, measurement.verdict)

    async def _take_tick(self, release: Release, check: Check, row: dict[str, Any]) -> None:
        """One tick of a watch window: measured as of its due time, shown in the window's one reply."""
        rows = await self.db.measurements(release.id)
        mine = [r for r in rows if r["check_name"] == check.name and r.get("every_s") is not None]
        reply = CheckReply(next((r["reply_ts"] for r in reversed(mine) if r.get("reply_ts")), None))
        so_far = tally(rows, check.name)
        shown = {
            "every": format_duration(timedelta(seconds=row["every_s"])),
            "window": format_duration(check.for_) if check.for_ is not None else "?",
        }
        last_at = offset_label(so_far.last_offset_s) if so_far.last_offset_s is not None else None
        attempts = 1 + self.config.metrics.retries

        async def show_attempt(failed: Measurement) -> None:
            await self._show(release, reply, watch_reply(so_far, **shown, last_at=last_at, latest=failed, of=attempts))

        if self.runner is None:
            await self._record(row, "inconclusive", "metrics are not configured")
            return
        measurement = await self.runner.run(
            check,
            row["due_at"],
            service=release.service,
            environment=release.env,
            version=release.version,
            on_error=show_attempt,
        )
        check_measured(release.env, measurement.verdict.value)
        taken = {**row, "state": "done", "verdict": measurement.verdict.value, "value": measurement.value}
        now = tally([taken if r["offset_s"] == row["offset_s"] and r in mine else r for r in rows], check.name)
        message = watch_reply(now, **shown, last_at=offset_label(row["offset_s"]), latest=measurement, of=attempts)
        await self._show(release, reply, message)
        await self._record(
            row,
            measurement.verdict.value,
            measurement.summary,
            value=measurement.value,
            query=measurement.query,
            reply_ts=reply.ts,
        )
        # A FAIL within failure_limit is tolerated: it is in the tally, and acts on nothing.
        tolerated = measurement.verdict is Verdict.FAIL and now.verdict is not Verdict.FAIL
        await self._settle_verdict(release, Verdict.PASS if tolerated else measurement.verdict)

    async def _settle_verdict(self, release: Release, latest: Verdict) -> None:
        rows = await self.db.measurements(release.id)
        verdict = release_verdict(rows)
        if verdict is None:
            return
        # The parent message shows the worst verdict so far: edit it only when that changes. ``release``
        # was read just before this measurement; the worst verdict only ever rises, so an older read can
        # cause an extra edit but never a missed one.
        if release.verdict != verdict.value:
            await self.db.update_release(
                release.id,
                verdict=verdict.value,
                **({"healthy": False} if verdict is Verdict.FAIL else {}),
            )
            await self.story.refresh_parent(release.id)
        if latest is Verdict.PASS:
            return
        policy = self.config.environments[release.env].on_check_failure
        if latest is Verdict.FAIL:
            await self.cancel_checks(release.id, "a check failed")
            await self.story.audit(SYSTEM, "check.failed", f"release:{release.id}")
            # Only a FAIL rolls back on its own: INCONCLUSIVE (including an unreachable backend) never does.
            if policy == "auto_rollback":
                await self.story.reply(release.id, thread.auto_rollback())
                assert self.roll_back is not None, "the engine connects rollbacks to checks"
                await self.roll_back(release)
                return
        if policy == "notify" or latest is Verdict.ERROR:
            return
        # On-call is asked once per release and verdict: the buttons act once per release anyway, and an
        # outage that leaves every offset inconclusive must not ping them at each one.
        if not await self.db.claim(f"check-ping:{release.id}:{latest.value}", self.story.now()):
            return
        ping = check_ping(
            self.config.groups,
            self._rollback_approvers(release.env),
            release_id=release.id,
            version=release.version,
            verdict=latest,
        )
        await self.story.reply(release.id, ping)

    def _rollback_approvers(self, env: str) -> Sequence[str]:
        """The groups pinged about ``env``'s checks: who may approve a rollback there (``rollback.approvals.from``,
        else on-call)."""
        return self.gate.who(env).rollback_approvers

    async def hold_rollout(self, release: Release, step: Step, reasons: str) -> None:
        """Checks were inconclusive between steps: keep the current weight and ask on-call to decide."""
        await self.story.move(
            release.id,
            release.env,
            ReleaseState.VERIFYING,
            actor=SYSTEM,
            detail=f"held at {step.label}",
            only_from={ReleaseState.VERIFYING},
            verdict=Verdict.INCONCLUSIVE.value,
            held_step=step.label,
        )
        await self.story.audit(SYSTEM, "rollout.held", f"release:{release.id}", step=step.label)
        await self.story.refresh_parent(release.id)
        message = hold_message(
            self.config.groups,
            self._rollback_approvers(release.env),
            release_id=release.id,
            version=release.version,
            step=step.label,
            reasons=reasons,
        )
        await self.story.reply(release.id, message)

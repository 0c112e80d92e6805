"""Release summaries for managers: releases per service/env, failures, DORA figures, closed days ahead."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.core import dora
from bot.core.mrkdwn import escape
from bot.core.windows import WindowDecision
from bot.engine.admin import AdminMixin
from bot.engine.base import Reply
from bot.slack import render
from bot.store import rows

Period = Literal["day", "week"]
ARROW = {"better": "▲ better", "worse": "▼ worse", "same": "= same", "n/a": ""}


def _to_prod_release(row: dict[str, Any]) -> dora.ProdRelease:
    state = row["state"]
    outcome: dora.Outcome = "failed" if state == "failed" else "rolled_back" if state == "rolled_back" else "succeeded"
    finished = rows.need_dt(row["finished_at"])
    detected: datetime | None = None
    recovered: datetime | None = None
    if outcome == "failed":
        detected = finished
    elif row["failed_check_at"] or row["rollback_requested_at"]:
        candidates = [rows.need_dt(v) for v in (row["failed_check_at"], row["rollback_requested_at"]) if v]
        detected = min(candidates)
    if detected is not None:
        ends = [rows.need_dt(v) for v in (row["rollback_done_at"], row["next_success_at"]) if v]
        recovered = min(ends) if ends else None
    return dora.ProdRelease(
        release_id=row["id"],
        service=row["service"],
        finished_at=finished,
        outcome=outcome,
        verdict=row["verdict"],
        committed_at=rows.dt(row["committed_at"]),
        failure_detected_at=detected,
        recovered_at=recovered,
    )


class SummaryMixin(AdminMixin):
    def period_bounds(self, period: Period, at: datetime) -> tuple[datetime, datetime]:
        """The period that ends at the local midnight after ``at`` (a day, or the 7 days up to it)."""
        zone = self.config.zone
        local = at.astimezone(zone)
        end_day = local.date() + timedelta(days=1)
        start_day = end_day - timedelta(days=1 if period == "day" else 7)
        start = datetime.combine(start_day, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(end_day, datetime.min.time(), tzinfo=zone)
        return start, end

    async def dora_between(self, start: datetime, end: datetime) -> tuple[dora.DoraReport, list[dora.ProdRelease]]:
        envs = {name: svc.pipeline[-1] for name, svc in self.config.services.items()}
        found = await self.db.run(self.db.sync.production_outcomes, envs, start, end)
        releases = [_to_prod_release(r) for r in found]
        return dora.compute_dora(releases, start=start, end=end), releases

    async def summary_message(self, period: Period, at: datetime | None = None) -> render.Message:
        at = at or self.now()
        start, end = self.period_bounds(period, at)
        report, _ = await self.dora_between(start, end)
        previous, _ = await self.dora_between(start - (end - start), start)
        comparison = report.compare(previous)
        counts = await self.db.run(self.db.sync.counts_by_env, start, end)
        per: dict[str, list[str]] = defaultdict(list)
        for row in counts:
            per[f"{row['service']} → {row['env']}"].append(f"{row['n']} {row['kind']} {row['state']}")
        lines = [f"• *{escape(k)}*: {', '.join(v)}" for k, v in per.items()] or ["No releases in this period."]
        envs = {name: svc.pipeline[-1] for name, svc in self.config.services.items()}
        failures = [
            r
            for r in await self.db.run(self.db.sync.production_outcomes, envs, start, end)
            if r["state"] != "succeeded" or r["verdict"] == "fail"
        ]
        failure_lines = [
            f"• #{r['id']} {escape(r['service'])} {escape(r['version'])}: {r['state']}"
            + (f", checks {r['verdict']}" if r["verdict"] else "")
            for r in failures[:10]
        ]

        def figure(name: str, value: str, band: str | None, direction: str) -> str:
            return (
                f"• *{name}*: {value}"
                + (f" ({band})" if band else "")
                + (f" {ARROW[direction]}" if ARROW.get(direction) else "")
            )

        df, lt, cfr, rt = (
            report.deployment_frequency,
            report.lead_time,
            report.change_failure_rate,
            report.recovery_time,
        )
        dora_lines = [
            figure(
                "Deployment frequency",
                f"{df.value:.2f}/day" if df.value is not None else "no deploys",
                df.band,
                comparison.deployment_frequency.direction,
            ),
            figure(
                "Lead time for changes",
                dora.format_duration(lt.value) if lt.value is not None else "n/a",
                lt.band,
                comparison.lead_time.direction,
            ),
            figure(
                "Change failure rate",
                f"{cfr.value:.0%}" if cfr.value is not None else "n/a",
                cfr.band,
                comparison.change_failure_rate.direction,
            ),
            figure(
                "Failed-deployment recovery time",
                dora.format_duration(rt.value) if rt.value is not None else "n/a",
                rt.band,
                comparison.recovery_time.direction,
            ),
        ]
        ahead = await self.closed_ahead(at)
        title = f"Release summary — {'today' if period == 'day' else 'this week'}"
        blocks = [render.header(title), render.section("*Releases*\n" + "\n".join(lines))]
        if failure_lines:
            blocks.append(render.section("*Failures and rollbacks*\n" + "\n".join(failure_lines)))
        blocks.append(render.section("*DORA*\n" + "\n".join(dora_lines)))
        blocks.append(render.section("*Closed windows in the next 7 days*\n" + ("\n".join(ahead) or "none")))
        blocks.append(render.context(f"Bands per {dora.REPORT}."))
        return render.Message(text=title, blocks=blocks)

    async def closed_ahead(self, at: datetime) -> list[str]:
        """Holidays and freezes that close a production window in the next 7 days."""
        seen: list[str] = []
        for name, svc in self.config.services.items():
            env = svc.pipeline[-1]
            if self.config.environments[env].window != "business_hours":
                continue
            freezes = await self.adhoc_freezes(name)
            for offset in range(1, 8):
                day = (at.astimezone(self.config.zone) + timedelta(days=offset)).replace(hour=12, minute=0)
                decision: WindowDecision = self.windows.decide(env, day, freezes)
                for reason in decision.reasons:
                    if reason.code in {"holiday", "freeze", "adhoc_freeze"}:
                        line = f"• {day:%a %d %b}: {escape(reason.text)} ({escape(env)})"
                        if line not in seen:
                            seen.append(line)
        return seen

    async def summary_reply(self, period: str) -> Reply:
        return Reply(await self.summary_message("week" if period == "week" else "day"))

    async def post_summary(self, period: Period, at: datetime | None = None) -> bool:
        """Post the period's summary to the summary channel once (a restart or a second wake-up skips it)."""
        if self.config.summaries is None:
            return False
        at = at or self.now()
        local_day = at.astimezone(self.config.zone).date()
        key = f"summary:{period}:{local_day.isoformat() if period == 'day' else local_day.isocalendar()[:2]}"
        if not await self.db.run(self.db.sync.mark_job_done, key, self.now()):
            return False
        message = await self.summary_message(period, at)
        channel = self.config.summaries.channel
        ts = await self.deps.notifier.post(channel, message.text, message.blocks)
        await self.audit("release-bot", "summary.posted", key)
        if period == "week":
            await self._upload_chart(channel, ts, at)
        return True

    async def _upload_chart(self, channel: str, ts: str, at: datetime) -> None:
        import asyncio  # noqa: PLC0415

        from bot.chart import ChartUnavailable, chart_available, weekly_chart_png  # noqa: PLC0415

        if not chart_available():
            return
        start, end = self.period_bounds("week", at)
        _, releases = await self.dora_between(start, end)
        per_day = dora.releases_per_day(releases, start, end, self.config.zone)
        lead = dora.median_lead_time_hours_per_day(releases, start, end, self.config.zone)
        try:
            png = await asyncio.to_thread(weekly_chart_png, per_day, lead, title="Production releases this week")
        except ChartUnavailable:
            return
        await self.deps.notifier.upload(channel, ts, "releases-week.png", png, "Production releases and lead time")

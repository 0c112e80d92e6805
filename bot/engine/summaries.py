"""Release summaries for managers: releases per service/env, failures, DORA figures, closed days ahead.

Posted daily and weekly to ``summaries.channel`` by the scheduler (once per period, even across a
restart: the ``jobs_done`` table remembers each period's post) and shown on demand by `/release summary`.
The summary is data (a :class:`~bot.views.summary.Summary`); bot.views.summary words it.

Failures link to their release threads. Slack's canonical message link comes from ``chat.getPermalink``;
the notifier fetches it; where it has none (the console) or the call fails, the link falls back to an
``app_redirect`` link, which needs no API call but is only documented to open the channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.core import dora
from bot.core.windows import ClosedAhead, WindowPolicy
from bot.engine.base import SYSTEM
from bot.engine.story import Story
from bot.views.summary import Failure, Period, ReleaseCount, Summary, summary_message

log = logging.getLogger("release_bot.summaries")

MAX_FAILURE_LINES = 10  # failures shown (their permalinks looked up); the rest are counted
AHEAD_DAYS = 7
OUTCOMES: dict[str, dora.Outcome] = {"failed": "failed", "rolled_back": "rolled_back"}


def _to_prod_release(row: dict[str, Any]) -> dora.ProdRelease:
    """A production_outcomes row as the pure DORA core sees it (a hot path: thousands per summary)."""
    finished = datetime.fromisoformat(row["finished_at"])
    committed = datetime.fromisoformat(row["committed_at"]) if row["committed_at"] else None
    failure = row["failure"]
    if failure is None:
        return dora.ProdRelease(row["id"], row["service"], finished, "succeeded", row["verdict"], committed, None, None)
    state = row["state"]
    detected: datetime | None = None
    recovered: datetime | None = None
    if state == "failed":
        detected = finished
    elif failure["failed_check_at"] or failure["rollback_requested_at"]:
        times = (failure["failed_check_at"], failure["rollback_requested_at"])
        detected = min(datetime.fromisoformat(v) for v in times if v)
    if detected is not None:
        ends = [datetime.fromisoformat(v) for v in (failure["rollback_done_at"], failure["next_success_at"]) if v]
        recovered = min(ends) if ends else None
    return dora.ProdRelease(
        release_id=row["id"],
        service=row["service"],
        finished_at=finished,
        outcome=OUTCOMES.get(state, "succeeded"),
        verdict=row["verdict"],
        committed_at=committed,
        failure_detected_at=detected,
        recovered_at=recovered,
    )


def summary_key(period: Period, at: datetime, zone: ZoneInfo) -> str:
    """The idempotency key of a period's post: one per local date, or per ISO week."""
    day = at.astimezone(zone).date()
    if period == "day":
        return f"summary:day:{day.isoformat()}"
    year, week, _ = day.isocalendar()
    return f"summary:week:{year}-W{week:02d}"


def app_redirect_link(channel: str, ts: str) -> str:
    """A link that needs no API call; Slack documents ``channel`` (opens it), ``message_ts`` rides along."""
    return "https://slack.com/app_redirect?" + urlencode({"channel": channel, "message_ts": ts})


class Summaries:
    """The day's and week's release summaries, posted once per period and shown on demand."""

    def __init__(self, *, config: Config, story: Story, windows: WindowPolicy) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.notifier = story.notifier
        self.windows = windows

    def period_bounds(self, period: Period, at: datetime) -> tuple[datetime, datetime]:
        """The period that ends at the local midnight after ``at`` (a day, or the 7 days up to it)."""
        zone = self.config.zone
        local = at.astimezone(zone)
        end_day = local.date() + timedelta(days=1)
        start_day = end_day - timedelta(days=1 if period == "day" else 7)
        start = datetime.combine(start_day, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(end_day, datetime.min.time(), tzinfo=zone)
        return start, end

    def _production_envs(self) -> dict[str, str]:
        return {name: self.config.production_env(name) for name in self.config.services}

    async def _outcomes(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return await self.db.production_outcomes(self._production_envs(), start, end)

    async def _with_incidents(
        self, found: list[dict[str, Any]], start: datetime, end: datetime
    ) -> list[dora.ProdRelease]:
        """The rows as DORA sees them, each with the alert-started incidents of its watch window folded in
        (bot/store/alerts.py); a row only an alert made a failure gets its thread from the incident."""
        releases = [_to_prod_release(r) for r in found]
        incidents = await self.db.release_incidents(start, end)
        if not incidents:
            return releases
        index = {r.release_id: i for i, r in enumerate(releases)}
        for incident in incidents:  # earliest first, as with_incident folds them
            i = index.get(incident.release_id) if incident.release_id is not None else None
            if i is None:
                continue
            releases[i] = dora.with_incident(releases[i], incident.started_at, incident.resolved_at)
            if found[i]["failure"] is None:
                found[i]["failure"] = {"channel": incident.channel, "thread_ts": incident.thread_ts or incident.ts}
        return releases

    async def dora_between(self, start: datetime, end: datetime) -> tuple[dora.DoraReport, list[dora.ProdRelease]]:
        """DORA over the production releases that finished in [start, end), and those releases."""
        # In UTC, like the stored times: comparing across zones costs a zone lookup per comparison.
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        releases = await self._with_incidents(await self._outcomes(start, end), start, end)
        return dora.compute_dora(releases, start=start, end=end), releases

    async def thread_link(self, channel: str, ts: str) -> str:
        """A link to a message: its permalink when the notifier can fetch one, else an app_redirect link."""
        try:
            permalink = await self.notifier.permalink(channel, ts)
        except Exception:
            log.warning("no permalink for %s/%s; linking through app_redirect", channel, ts, exc_info=True)
            permalink = None
        return permalink or app_redirect_link(channel, ts)

    async def summary(self, period: Period, at: datetime | None = None) -> Summary:
        """The summary of the day or week around ``at`` (default now), as posted and as shown on demand."""
        summary, _ = await self._summary(period, at or self.story.now())
        return summary

    async def _summary(self, period: Period, at: datetime) -> tuple[Summary, list[dora.ProdRelease]]:
        local_start, local_end = self.period_bounds(period, at)
        # The previous period starts at local midnight too; all bounds then go to UTC like the stored times.
        previous_start = (local_start - (local_end - local_start)).astimezone(UTC)
        start, end = local_start.astimezone(UTC), local_end.astimezone(UTC)
        # One read covers this period and the previous one; compute_dora keeps each to its own bounds.
        found = await self._outcomes(previous_start, end)
        releases = await self._with_incidents(found, previous_start, end)
        this = [r for r in releases if r.finished_at >= start]
        report = dora.compute_dora(this, start=start, end=end)
        previous = dora.compute_dora([r for r in releases if r.finished_at < start], start=previous_start, end=start)
        current = [(row, rel) for row, rel in zip(found, releases, strict=True) if rel.finished_at >= start]

        counts = tuple(
            ReleaseCount(row["service"], row["env"], row["kind"], row["state"], row["n"])
            for row in await self.db.counts_by_env(start, end)
        )
        failures = sorted(
            ((row, rel) for row, rel in current if rel.is_change_failure),
            key=lambda pair: (pair[1].finished_at, pair[1].release_id),
        )
        summary = Summary(
            period=period,
            start=local_start,
            end=local_end,
            counts=counts,
            pipelines={name: svc.pipeline for name, svc in self.config.services.items()},
            failures=await self._failures(failures[:MAX_FAILURE_LINES]),
            failure_count=len(failures),
            report=report,
            previous=previous,
            closed_ahead=tuple(await self.closed_ahead(at)),
            ahead_days=AHEAD_DAYS,
            trains=await self.db.train_counts(start, end) if self.config.trains else None,
        )
        return summary, [rel for _, rel in current]

    async def _failures(self, failures: Sequence[tuple[dict[str, Any], dora.ProdRelease]]) -> tuple[Failure, ...]:
        """The failures with their thread links resolved (a permalink lookup each)."""
        found = []
        for row, release in failures:
            channel, thread_ts = row["failure"]["channel"], row["failure"]["thread_ts"]
            link = await self.thread_link(channel, thread_ts) if channel and thread_ts else None
            found.append(Failure(release, row["version"], row["state"], link))
        return tuple(found)

    async def closed_ahead(self, at: datetime) -> list[ClosedAhead]:
        """Holidays and freezes that close a production window in the next 7 days, by their first day."""
        zone = self.config.zone
        first = at.astimezone(zone).date()
        noons = [datetime.combine(first + timedelta(days=i), time(12), tzinfo=zone) for i in range(1, AHEAD_DAYS + 1)]
        adhoc = await self.db.adhoc_freezes(None)
        days_of: dict[ClosedAhead, list[date]] = {}  # what closes (its days left out) -> the days it closes
        # Holidays and configured freezes depend on the environment only: decide each day once per env.
        decided: dict[str, list[tuple[date, str]]] = {}
        for name in self.config.services:
            env = self.config.production_env(name)
            if env not in decided:
                decided[env] = [
                    (noon.date(), reason.text)
                    for noon in noons
                    for reason in self.windows.decide(env, noon).reasons
                    if reason.code in {"holiday", "freeze"}
                ]
            found = [(day, ClosedAhead(env, (), text)) for day, text in decided[env]]
            for freeze in adhoc.get(name, []):
                if freeze.environment != env:
                    continue
                what = ClosedAhead(env, (), freeze.reason, name, freeze.by)
                found += [(noon.date(), what) for noon in noons if freeze.created_at <= noon < freeze.until]
            for day, what in found:
                days = days_of.setdefault(what, [])
                if day not in days:
                    days.append(day)
        ordered = sorted(days_of.items(), key=lambda item: min(item[1]))
        return [replace(what, days=tuple(sorted(days))) for what, days in ordered]

    async def post_summary(self, period: Period, at: datetime | None = None) -> bool:
        """Post the period's summary to the summary channel once (a restart or a second wake-up skips it).

        The weekly one gets its chart in the thread when matplotlib is installed. A post that fails
        is forgotten again, so a later attempt can still make it.
        """
        if self.config.summaries is None:
            return False
        at = at or self.story.now()
        key = summary_key(period, at, self.config.zone)
        if not await self.db.mark_job_done(key, self.story.now()):
            return False
        channel = self.config.summaries.channel
        try:
            summary, releases = await self._summary(period, at)
            # Posting is this service's job, so it is the one place it renders: through the view.
            message = summary_message(summary, self.config.zone)
            ts = await self.notifier.post(channel, message.text, message.blocks)
        except BaseException:
            await self.db.unmark_job_done(key)
            raise
        await self.story.audit(SYSTEM, "summary.posted", key)
        if period == "week":
            try:
                await self._upload_chart(channel, ts, at, releases)
            except Exception:
                # The text summary stands alone; a chart that cannot be drawn or uploaded only costs itself.
                log.exception("the weekly chart was not uploaded")
        return True

    async def _upload_chart(self, channel: str, ts: str, at: datetime, releases: list[dora.ProdRelease]) -> None:
        from bot.chart import ChartUnavailable, chart_available, weekly_chart_png  # noqa: PLC0415 - optional extra

        if not chart_available():
            return
        start, end = self.period_bounds("week", at)
        per_day = dora.releases_per_day(releases, start, end, self.config.zone)
        lead = dora.median_lead_time_hours_per_day(releases, start, end, self.config.zone)
        try:
            png = await asyncio.to_thread(weekly_chart_png, per_day, lead, title="Production releases this week")
        except ChartUnavailable:
            return
        await self.notifier.upload(channel, ts, "releases-week.png", png, "Production releases and lead time")

"""Release summaries for managers: releases per service/env, failures, DORA figures, closed days ahead.

Posted daily and weekly to ``summaries.channel`` by the scheduler (once per period, even across a
restart: the ``jobs_done`` table remembers each period's post) and shown on demand by `/release summary`.

Failures link to their release threads. Slack's canonical message link comes from ``chat.getPermalink``;
the notifier fetches it; where it has none (the console) or the call fails, the link falls back to an
``app_redirect`` link, which needs no API call but is only documented to open the channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.core import dora
from bot.core.windows import ClosedAhead, WindowPolicy
from bot.engine.base import SYSTEM, Reply
from bot.engine.story import Story
from bot.views import render
from bot.views.mrkdwn import escape
from bot.views.windows import closed_ahead_lines

log = logging.getLogger("release_bot.summaries")

Period = Literal["day", "week"]
ARROW = {"better": "▲ better", "worse": "▼ worse", "same": "= same"}
STATE_WORDS = {"rolled_back": "rolled back"}
STATE_ORDER = ("succeeded", "failed", "rolled_back", "interrupted", "cancelled", "rollback run")
MAX_FAILURE_LINES = 10
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


def _sections(title: str, lines: Sequence[str]) -> list[render.Block]:
    """``lines`` under a bold title, split over as many sections as Block Kit's 3,000 characters need."""
    blocks: list[render.Block] = []
    chunk = f"*{title}*"
    for line in lines:
        if len(chunk) + 1 + len(line) > render.SECTION_LIMIT:
            blocks.append(render.section(chunk))
            chunk = line
        else:
            chunk += "\n" + line
    blocks.append(render.section(chunk))
    return blocks


def _release_lines(counts: Sequence[dict[str, Any]], pipelines: dict[str, list[str]]) -> list[str]:
    """One line per service: per environment (pipeline order) how many releases ended in each state."""
    ended: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for row in counts:
        # Rollbacks are counted apart from the releases they undid; deploys and promotions together.
        state = "rollback run" if row["kind"] == "rollback" else row["state"]
        ended[row["service"]][row["env"]][state] += row["n"]
    lines = []
    for service in sorted(ended):
        order = pipelines.get(service, [])
        envs = sorted(ended[service], key=lambda e: (order.index(e) if e in order else len(order), e))
        parts = []
        for env in envs:
            states = ended[service][env]
            words = [_count_words(s, n) for s, n in sorted(states.items(), key=lambda i: _rank(i[0]))]
            parts.append(f"{escape(env)}: {', '.join(words)}")
        lines.append(f"• *{escape(service)}* — " + " · ".join(parts))
    return lines


def _count_words(state: str, n: int) -> str:
    if state == "rollback run":
        return f"{n} rollback{'' if n == 1 else 's'} run"
    return f"{n} {STATE_WORDS.get(state, state)}"


def _rank(state: str) -> tuple[int, str]:
    return (STATE_ORDER.index(state) if state in STATE_ORDER else len(STATE_ORDER), state)


def _dora_lines(report: dora.DoraReport, previous: dora.DoraReport, period: Period) -> list[str]:
    """The four figures with their band, and each against the previous period."""
    comparison = report.compare(previous)
    df, lt, cfr, rt = (
        report.deployment_frequency,
        report.lead_time,
        report.change_failure_rate,
        report.recovery_time,
    )

    def freq(value: float | None) -> str:
        return f"{value:.2f}/day" if value is not None else "no deploys"

    def dur(value: timedelta | None) -> str:
        return dora.format_duration(value) if value is not None else "n/a"

    def rate(value: float | None) -> str:
        return f"{value:.0%}" if value is not None else "n/a"

    def line(name: str, value: str, band: str | None, delta: dora.Delta[Any], before: str) -> str:
        text = f"• *{name}*: {value}" + (f" — _{band}_" if band else "")
        if delta.direction in ARROW:
            text += f" · {ARROW[delta.direction]} than the previous {period} ({before})"
        elif delta.previous is None:
            text += f" · previous {period}: n/a"
        return text

    pdf, plt, pcfr, prt = (
        previous.deployment_frequency,
        previous.lead_time,
        previous.change_failure_rate,
        previous.recovery_time,
    )
    lead = f"median {dur(lt.value)}, p90 {dur(lt.p90)} over {lt.sample_size}" if lt.value is not None else "n/a"
    recovery = dur(rt.value) + (f" ({rt.unrecovered} not recovered yet)" if rt.unrecovered else "")
    return [
        line(
            "Deployment frequency",
            f"{freq(df.value)} ({df.sample_size} to production)",
            df.band,
            comparison.deployment_frequency,
            freq(pdf.value),
        ),
        line("Lead time for changes", lead, lt.band, comparison.lead_time, dur(plt.value)),
        line(
            "Change failure rate",
            f"{rate(cfr.value)} ({cfr.failures} of {cfr.sample_size})" if cfr.value is not None else "n/a",
            cfr.band,
            comparison.change_failure_rate,
            rate(pcfr.value),
        ),
        line("Failed-deployment recovery time", recovery, rt.band, comparison.recovery_time, dur(prt.value)),
    ]


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
        return {name: svc.pipeline[-1] for name, svc in self.config.services.items()}

    async def _outcomes(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return await self.db.production_outcomes(self._production_envs(), start, end)

    async def dora_between(self, start: datetime, end: datetime) -> tuple[dora.DoraReport, list[dora.ProdRelease]]:
        """DORA over the production releases that finished in [start, end), and those releases."""
        # In UTC, like the stored times: comparing across zones costs a zone lookup per comparison.
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        releases = [_to_prod_release(r) for r in await self._outcomes(start, end)]
        return dora.compute_dora(releases, start=start, end=end), releases

    async def thread_link(self, channel: str, ts: str) -> str:
        """A link to a message: its permalink when the notifier can fetch one, else an app_redirect link."""
        try:
            permalink = await self.notifier.permalink(channel, ts)
        except Exception:
            log.warning("no permalink for %s/%s; linking through app_redirect", channel, ts, exc_info=True)
            permalink = None
        return permalink or app_redirect_link(channel, ts)

    async def summary_message(self, period: Period, at: datetime | None = None) -> render.Message:
        """The summary of the day or week around ``at`` (default now), as posted and as shown on demand."""
        message, _ = await self._summary(period, at or self.story.now())
        return message

    async def _summary(self, period: Period, at: datetime) -> tuple[render.Message, list[dora.ProdRelease]]:
        local_start, local_end = self.period_bounds(period, at)
        # The previous period starts at local midnight too; all bounds then go to UTC like the stored times.
        previous_start = (local_start - (local_end - local_start)).astimezone(UTC)
        start, end = local_start.astimezone(UTC), local_end.astimezone(UTC)
        # One read covers this period and the previous one; compute_dora keeps each to its own bounds.
        found = await self._outcomes(previous_start, end)
        releases = [_to_prod_release(r) for r in found]
        this = [r for r in releases if r.finished_at >= start]
        report = dora.compute_dora(this, start=start, end=end)
        previous = dora.compute_dora([r for r in releases if r.finished_at < start], start=previous_start, end=start)
        current = [(row, rel) for row, rel in zip(found, releases, strict=True) if rel.finished_at >= start]

        counts = await self.db.counts_by_env(start, end)
        pipelines = {name: svc.pipeline for name, svc in self.config.services.items()}
        release_lines = _release_lines(counts, pipelines) or ["No releases in this period."]
        failures = sorted(
            ((row, rel) for row, rel in current if rel.is_change_failure),
            key=lambda pair: (pair[1].finished_at, pair[1].release_id),
        )
        failure_lines = await self._failure_lines(failures)
        ahead = [f"• {line}" for line in closed_ahead_lines(await self.closed_ahead(at))]

        zone = self.config.zone
        last_day = local_end.date() - timedelta(days=1)
        span = f"{last_day:%a %d %b}" if period == "day" else f"{local_start:%a %d %b} – {last_day:%a %d %b}"
        title = f"Release summary — {'the day' if period == 'day' else 'the week'} ({span})"
        blocks = [render.header(title), *_sections("Releases", release_lines)]
        if failure_lines:
            blocks += _sections("Production failures and rollbacks", failure_lines)
        blocks += _sections("DORA (production)", _dora_lines(report, previous, period))
        blocks += _sections(f"Closed windows in the next {AHEAD_DAYS} days", ahead or ["none"])
        blocks.append(render.context(f"Bands per {dora.REPORT}. Times in {zone.key}."))
        return render.Message(text=title, blocks=blocks), [rel for _, rel in current]

    async def _failure_lines(self, failures: Sequence[tuple[dict[str, Any], dora.ProdRelease]]) -> list[str]:
        lines = []
        for row, release in failures[:MAX_FAILURE_LINES]:
            what = STATE_WORDS.get(row["state"], row["state"])
            if row["verdict"] == "fail":
                what += ", checks failed"
            if release.recovered_at is not None and release.failure_detected_at is not None:
                what += f", recovered in {dora.format_duration(release.recovered_at - release.failure_detected_at)}"
            elif release.failure_detected_at is not None:
                what += ", not recovered yet"
            link = ""
            channel, thread_ts = row["failure"]["channel"], row["failure"]["thread_ts"]
            if channel and thread_ts:
                link = f" · <{await self.thread_link(channel, thread_ts)}|thread>"
            lines.append(
                f"• #{row['id']} *{escape(row['service'])}* {escape(row['version'])} "
                f"({render.when(release.finished_at, self.config.zone)}): {what}{link}"
            )
        if len(failures) > MAX_FAILURE_LINES:
            lines.append(f"…and {len(failures) - MAX_FAILURE_LINES} more: see `/release <service> history`.")
        return lines

    async def closed_ahead(self, at: datetime) -> list[ClosedAhead]:
        """Holidays and freezes that close a production window in the next 7 days, by their first day."""
        zone = self.config.zone
        first = at.astimezone(zone).date()
        noons = [datetime.combine(first + timedelta(days=i), time(12), tzinfo=zone) for i in range(1, AHEAD_DAYS + 1)]
        adhoc = await self.db.adhoc_freezes(None)
        days_of: dict[ClosedAhead, list[date]] = {}  # what closes (its days left out) -> the days it closes
        # Holidays and configured freezes depend on the environment only: decide each day once per env.
        decided: dict[str, list[tuple[date, str]]] = {}
        for name, svc in self.config.services.items():
            env = svc.pipeline[-1]
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

    async def summary_reply(self, period: str) -> Reply:
        return Reply(await self.summary_message("week" if period == "week" else "day"))

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
            message, releases = await self._summary(period, at)
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

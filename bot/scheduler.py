"""APScheduler in the bot: wakes for post-release checks and summaries. The store stays the source of truth.

Jobs live only in memory: on start the engine re-arms them from the store (pending measurements,
summary slots), so a restart neither loses nor repeats work, and no pickled jobs outlive the code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.config import Config
from bot.ports import Clock, SystemClock

log = logging.getLogger("release_bot.scheduler")
Job = Callable[[], Awaitable[None]]


class BotScheduler:
    """The engine's Scheduler port over APScheduler's AsyncIOScheduler."""

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._instants: dict[str, datetime] = {}  # each one-off job's instant on the engine's clock
        self._scheduler = AsyncIOScheduler(timezone=config.zone)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def at(self, when: datetime, key: str, job: Job) -> None:
        """Run ``job`` at ``when`` on the engine's clock. APScheduler runs on the wall clock, so the job is set
        that far from the wall's now: the same instant when the engine's clock is the wall's (always, outside
        tests that move a clock of their own)."""
        run_date = datetime.now(UTC) + (when - self._clock.now())
        self._instants[key] = when

        async def run() -> None:
            if self._instants.get(key) == when:  # not re-armed for another instant meanwhile
                del self._instants[key]
            await job()

        # misfire_grace_time=None: a wake-up that is late (a busy loop, a suspended laptop) still runs.
        self._scheduler.add_job(
            run,
            DateTrigger(run_date=run_date),
            id=key,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def cancel(self, key: str) -> None:
        self._instants.pop(key, None)
        if self._scheduler.get_job(key) is not None:
            self._scheduler.remove_job(key)

    def cron(self, key: str, trigger: CronTrigger, job: Job) -> None:
        self._scheduler.add_job(job, trigger, id=key, replace_existing=True, misfire_grace_time=3600, coalesce=True)

    def next_run(self, key: str) -> datetime | None:
        """When ``key`` runs next: a one-off job's instant as it was given (the engine's clock), a repeating
        job's next fire time (the wall clock's)."""
        job = self._scheduler.get_job(key)
        if job is None:
            self._instants.pop(key, None)
            return None
        fires: datetime | None = job.next_run_time
        return self._instants.get(key, fires)

    def job_ids(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()]


def summary_triggers(config: Config) -> dict[str, CronTrigger]:
    """Cron triggers in the configured zone for the daily and weekly summaries."""
    triggers: dict[str, CronTrigger] = {}
    if config.summaries is None:
        return triggers
    if config.summaries.daily is not None:
        at = config.summaries.daily
        triggers["day"] = CronTrigger(hour=at.hour, minute=at.minute, timezone=config.zone)
    weekly = config.summaries.weekly_at()
    if weekly is not None:
        day, at = weekly
        triggers["week"] = CronTrigger(day_of_week=day, hour=at.hour, minute=at.minute, timezone=config.zone)
    return triggers

"""APScheduler in the bot: wakes for post-release checks and summaries. The store stays the source of truth.

Jobs live only in memory: on start the engine re-arms them from the store (pending measurements,
summary slots), so a restart neither loses nor repeats work, and no pickled jobs outlive the code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.config import Config

log = logging.getLogger("release_bot.scheduler")
Job = Callable[[], Awaitable[None]]


class BotScheduler:
    """The engine's Scheduler port over APScheduler's AsyncIOScheduler."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._scheduler = AsyncIOScheduler(timezone=config.zone)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def at(self, when: datetime, key: str, job: Job) -> None:
        # misfire_grace_time=None: a wake-up that is late (a busy loop, a suspended laptop) still runs.
        self._scheduler.add_job(
            job,
            DateTrigger(run_date=when),
            id=key,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def cancel(self, key: str) -> None:
        if self._scheduler.get_job(key) is not None:
            self._scheduler.remove_job(key)

    def cron(self, key: str, trigger: CronTrigger, job: Job) -> None:
        self._scheduler.add_job(job, trigger, id=key, replace_existing=True, misfire_grace_time=3600, coalesce=True)

    def next_run(self, key: str) -> datetime | None:
        job = self._scheduler.get_job(key)
        return job.next_run_time if job is not None else None

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

"""Wiring: build the engine and its ports from settings and config, start and stop them in order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from apscheduler.triggers.cron import CronTrigger

from bot.config import Config
from bot.engine import Deps, Engine
from bot.github_api import GitHubClient
from bot.http_session import HttpSession
from bot.metrics.run import CheckRunner
from bot.ports import Clock, Directory, Notifier, SystemClock
from bot.providers.base import DeployProvider
from bot.providers.factory import build_provider
from bot.scheduler import BotScheduler, summary_triggers
from bot.settings import Settings
from bot.sources.base import CommitSource
from bot.sources.git import LocalGitSource
from bot.sources.github import GitHubSource
from bot.store import AsyncStore, Store

log = logging.getLogger("release_bot")
SummaryJob = Callable[[], Awaitable[None]]
# A summary whose slot passed while the bot was down is still posted on start within this grace, the
# same lateness APScheduler allows a running job (misfire_grace_time); later, the next slot is awaited.
SUMMARY_CATCH_UP = timedelta(hours=1)


class Service(Protocol):
    """Background work the runtime starts first and stops last (the Slack outbox)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    """A running bot: the engine and everything it owns."""

    engine: Engine
    store: AsyncStore
    scheduler: BotScheduler | None
    checks: CheckRunner
    # The one outgoing HTTP session (Prometheus, HTTP checks, providers, GitHub, response_url answers):
    # opened first in start(), closed last in close(). See bot.http_session for why it is a holder.
    http: HttpSession
    summary_jobs: dict[str, SummaryJob] = field(default_factory=dict)  # period -> the job its cron runs
    outbox: Service | None = None  # delivers Slack writes; started before anything can post

    async def start(self) -> None:
        await self.http.open()  # before anything can send: start-up recovery may deploy
        if self.outbox is not None:
            await self.outbox.start()
        if self.scheduler is not None:
            self.scheduler.start()
            for period, trigger in summary_triggers(self.engine.config).items():
                job = _summary_job(self.engine, period)
                self.summary_jobs[period] = job
                self.scheduler.cron(f"summary:{period}", trigger, job)
                missed = last_fire_time(trigger, self.engine.now(), SUMMARY_CATCH_UP)
                if missed is not None:
                    # Posted once: a slot already posted before the restart is skipped by its jobs_done key.
                    self.engine.spawn(_post_summary(self.engine, period, missed), f"summary:{period}:catch-up")
        await self.engine.start()

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
        await self.engine.close()
        if self.outbox is not None:
            await self.outbox.stop()  # after the engine: its last writes are queued, pending ones kept
        await self.checks.close()
        await self.http.close()  # after the engine and the outbox: nothing sends any more
        self.store.close()


def last_fire_time(trigger: CronTrigger, now: datetime, within: timedelta) -> datetime | None:
    """The trigger's latest fire time in (now - within, now], or None."""
    fire = trigger.get_next_fire_time(None, now - within)
    return fire if fire is not None and fire <= now else None


async def _post_summary(engine: Engine, period: str, at: datetime | None) -> None:
    await engine.post_summary("week" if period == "week" else "day", at)


def _summary_job(engine: Engine, period: str) -> SummaryJob:
    async def job() -> None:
        await _post_summary(engine, period, None)

    return job


def build_runtime(
    settings: Settings,
    config: Config,
    *,
    notifier: Notifier,
    directory: Directory,
    config_dir: Path,
    clock: Clock | None = None,
    schedule: bool = True,
    db_path: Path | str | None = None,
) -> Runtime:
    """Assemble a Runtime; nothing touches the network until ``start()``."""
    store = AsyncStore(Store(db_path if db_path is not None else settings.db_path))
    http = HttpSession()
    github_token = settings.github_token.get_secret_value() if settings.github_token else None
    github = GitHubClient(session=http, token=github_token, api_url=settings.github_api_url)
    providers: dict[str, DeployProvider] = {
        name: build_provider(env.deploy, session=http, github=github) for name, env in config.environments.items()
    }
    sources: dict[str, CommitSource] = {}
    for name, svc in config.services.items():
        if svc.repo is None:
            continue
        if svc.repo.path is not None:
            path = svc.repo.path if svc.repo.path.is_absolute() else (config_dir / svc.repo.path)
            sources[name] = LocalGitSource(path.resolve())
        elif svc.repo.github is not None:
            sources[name] = GitHubSource(svc.repo.github, client=github)
    checks = CheckRunner(config.metrics, session=http)
    scheduler = BotScheduler(config) if schedule else None
    engine = Engine(
        Deps(
            config=config,
            db=store,
            notifier=notifier,
            directory=directory,
            clock=clock or SystemClock(),
            providers=providers.__getitem__,
            sources=sources.get,
            checks=checks,
            scheduler=scheduler,
            base_url=settings.public_url,
            notes_link_key=settings.notes_link_key(),
        )
    )
    return Runtime(engine=engine, store=store, scheduler=scheduler, checks=checks, http=http)

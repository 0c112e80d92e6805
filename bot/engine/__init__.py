"""The release engine: services composed over ports (store, notifier, directory, clock, providers, scheduler).

Each service has its dependencies in its constructor; :class:`Engine` builds them in dependency order:

    Story, Tasks, Gatekeeper, Gates, DeployRuns  →  Checks  →  Rollouts  →  Outcomes, Approvals  →  Rollbacks
                                                 →  Releases  →  Schedules, Trains, CheckActions, Admin, Summaries
                                                 →  Alerts, Recovery

Rollbacks deploy and deploys are checked, so "a failed check rolls back" is an edge that points backwards;
so is "a release the store could not record is recorded later" (Rollouts hands it to Outcomes). Both are
connected here, after both ends exist (``checks.roll_back``, ``rollouts.unrecorded``).

Command deploy steps write their output under ``deploys/`` in the data directory, the database's directory.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.models import Release
from bot.engine.admin import Admin
from bot.engine.alerts import Alerts
from bot.engine.approvals import Approvals
from bot.engine.base import Actor, Deps, Reply, system_actor
from bot.engine.check_actions import CheckActions
from bot.engine.checks import Checks
from bot.engine.errors import NotPermitted, UserError
from bot.engine.fences import DeployRuns
from bot.engine.gatekeeper import Gatekeeper
from bot.engine.gates import Gates
from bot.engine.outcomes import Outcomes
from bot.engine.recovery import Recovery
from bot.engine.requests import Releases
from bot.engine.rollbacks import Rollbacks
from bot.engine.runner import Rollouts
from bot.engine.schedules import Schedules
from bot.engine.story import Story, Tasks
from bot.engine.summaries import Summaries
from bot.engine.trains import Trains

__all__ = ["Actor", "Deps", "Engine", "NotPermitted", "Reply", "UserError", "system_actor"]


class Engine:
    """The composed engine. Construct with :class:`Deps`, then ``await start()``."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.config = config = deps.config
        self.db = deps.db
        self.tasks = tasks = Tasks()
        self.story = story = Story(config, deps.db, deps.notifier, deps.clock)
        self.gate = gate = Gatekeeper(config, deps.directory, deps.clock, deps.group_cache_ttl)
        self.gates = gates = Gates(config, deps.db, deps.clock)
        self.windows = gates.windows
        runs = DeployRuns(config, deps.db, deps.clock, deps.data_dir / "deploys")
        self.checks = checks = Checks(
            config=config, story=story, tasks=tasks, gate=gate, runner=deps.checks, scheduler=deps.scheduler
        )
        self.rollouts = rollouts = Rollouts(
            config=config,
            story=story,
            gates=gates,
            checks=checks,
            runs=runs,
            providers=deps.providers,
            sleep=deps.sleep,
            base_url=deps.base_url,
            notes_link_key=deps.notes_link_key,
        )
        self.outcomes = outcomes = Outcomes(
            config=config,
            story=story,
            tasks=tasks,
            rollouts=rollouts,
            runs=runs,
            providers=deps.providers,
            retry=deps.retry,
        )
        rollouts.unrecorded = outcomes.remember
        self.approvals = approvals = Approvals(
            config=config, story=story, tasks=tasks, gate=gate, scheduler=deps.scheduler, rollouts=rollouts
        )
        self.rollbacks = rollbacks = Rollbacks(
            config=config, story=story, tasks=tasks, gate=gate, approvals=approvals, rollouts=rollouts
        )
        checks.roll_back = self._roll_back_failed
        self.releases = releases = Releases(
            config=config,
            story=story,
            tasks=tasks,
            gate=gate,
            gates=gates,
            sources=deps.sources,
            approvals=approvals,
            rollouts=rollouts,
        )
        self.schedules = schedules = Schedules(
            config=config,
            story=story,
            tasks=tasks,
            gate=gate,
            gates=gates,
            releases=releases,
            scheduler=deps.scheduler,
        )
        self.trains = Trains(
            config=config,
            story=story,
            tasks=tasks,
            gate=gate,
            gates=gates,
            releases=releases,
            scheduler=deps.scheduler,
        )
        self.check_actions = CheckActions(story=story, tasks=tasks, gate=gate, rollbacks=rollbacks, rollouts=rollouts)
        self.admin = Admin(
            config=config, story=story, gate=gate, gates=gates, sources=deps.sources, directory=deps.directory
        )
        self.summaries = Summaries(config=config, story=story, windows=gates.windows)
        # Alertmanager's alerts (POST /api/v1/alerts): Roll back now goes through rollbacks, like a check's.
        self.alerts = Alerts(config=config, story=story, gate=gate, check_actions=self.check_actions)
        self.recovery = Recovery(
            config=config,
            story=story,
            releases=releases,
            rollouts=rollouts,
            rollbacks=rollbacks,
            approvals=approvals,
            checks=checks,
            outcomes=outcomes,
            schedules=schedules,
        )
        self.on_change = story.on_change  # App Home refreshers, per service
        self.spawn = tasks.spawn
        self.drain = tasks.drain

    async def _roll_back_failed(self, release: Release) -> None:
        """A failed check under ``auto_rollback``: the bot asks, through the same path as a person would."""
        await self.rollbacks.request_rollback(system_actor(), release.service, release.env, None, of_release=release.id)

    def now(self) -> datetime:
        return self.story.now()

    async def start(self) -> None:
        await self.recovery.start()
        await self.trains.recover()  # after releases are recovered: departures admit against the settled state
        await self.alerts.recover()

    async def close(self) -> None:
        await self.tasks.cancel_all()

"""Fenced deploy steps: every provider step is recorded in the store before it starts, so a restarted bot
finds what its previous process left running and never starts a second deploy of an environment beside it.

:class:`DeployRuns` gives each step a :class:`Fence`, the provider's ``RunRecord``: the provider calls
``starting`` before it starts anything (a command before its script runs, named by its process group; a
remote provider before its request, then ``identified`` with the remote run's id), and the engine closes
the record with how the step ended (``end``, inside the unit that records what the step changed). A command
step's output goes to ``<data dir>/deploys/<release>-<action>-<weight>-<token>.log``, its exit status next to it.

A step whose end cannot be written (the store refuses writes) raises :class:`StepUnrecorded` with the result,
so the engine can record it once writes work again (bot/engine/outcomes.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

from bot.config import Config
from bot.core.models import DeployRun, Release, RunOutcome, RunRole
from bot.ports import Clock
from bot.providers.base import LeftRun, RunIdentity, StepResult, Unproven
from bot.store import AsyncStore, Store, StoreWriteError


class StepUnrecorded(Exception):
    """A step ended, and the store refused to record how: ``result`` is what it proved."""

    def __init__(self, run_id: int | None, result: StepResult, error: StoreWriteError) -> None:
        super().__init__(str(error))
        self.run_id = run_id
        self.result = result
        self.error = error


def outcome_of(result: StepResult | Unproven) -> RunOutcome:
    if isinstance(result, Unproven):
        return RunOutcome.UNKNOWN
    return RunOutcome.SUCCEEDED if result.ok else RunOutcome.FAILED


def end_run(store: Store, run_id: int | None, result: StepResult | Unproven, now: datetime) -> None:
    """On the store thread (inside a unit): close a step's record with how it ended (no record: nothing)."""
    if run_id is None:
        return
    if isinstance(result, Unproven):
        store.end_deploy_run(run_id, outcome=RunOutcome.UNKNOWN, exit_status=None, error=result.reason, now=now)
        return
    store.end_deploy_run(
        run_id, outcome=outcome_of(result), exit_status=result.exit_status, error=result.error, now=now
    )


class Fence:
    """One step's record (implements ``bot.ports.RunRecord``); ``run_id`` is set once ``starting`` wrote it."""

    def __init__(
        self,
        db: AsyncStore,
        release: Release,
        *,
        label: str,
        action: str,
        role: RunRole,
        provider: str,
        weight: int | None,
        colour: str | None,
        output: Path,
        started_at: datetime,
        timeout: timedelta,
    ) -> None:
        self.db = db
        self.release = release
        self.label = label
        self.action = action
        self.role = role
        self.provider = provider
        self.weight = weight
        self.colour = colour
        self._output = output
        self.started_at = started_at
        self.timeout = timeout
        self.run_id: int | None = None

    @property
    def output(self) -> Path:
        return self._output

    async def starting(self, identity: RunIdentity) -> None:
        self.run_id = await self.db.start_deploy_run(
            release_id=self.release.id,
            step=self.label,
            action=self.action,
            role=self.role,
            provider=self.provider,
            started_at=self.started_at,
            deadline_at=self.started_at + self.timeout,
            weight=self.weight,
            colour=self.colour,
            # Only a command writes its output here; a remote step's log stays with its service.
            output_path=str(self._output) if self.provider == "command" else None,
            pgid=identity.pgid,
            proc_start=identity.proc_start,
            boot_id=identity.boot_id,
        )

    async def identified(self, remote_id: str) -> None:
        assert self.run_id is not None, "a remote step is identified after it started"
        await self.db.identify_deploy_run(self.run_id, remote_id)


KEEP_OUTPUT = timedelta(days=30)  # how long a step's full output stays in deploys/ (its tail stays with the release)


class DeployRuns:
    """Hands out fences for provider steps and describes steps a previous process left."""

    def __init__(self, config: Config, db: AsyncStore, clock: Clock, deploys_dir: Path) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.deploys_dir = deploys_dir

    def fence(
        self,
        release: Release,
        *,
        label: str,
        action: str,
        role: RunRole,
        weight: int | None,
        colour: str | None,
    ) -> Fence:
        deploy = self.config.environments[release.env].deploy
        # A fresh token per step: a file of an earlier database or run is never read as this step's status.
        name = f"{release.id}-{action}-{weight if weight is not None else 100}-{uuid.uuid4().hex[:8]}.log"
        return Fence(
            self.db,
            release,
            label=label,
            action=action,
            role=role,
            provider=deploy.provider,
            weight=weight,
            colour=colour,
            output=self.deploys_dir / name,
            started_at=self.clock.now(),
            timeout=deploy.timeout,
        )

    def prune(self, now: datetime) -> int:
        """Delete step output and status files older than :data:`KEEP_OUTPUT` (run at start, off the loop).

        A step still running was started within its timeout, so its files are never this old; the release's
        own record keeps the output's tail. Returns how many files went.
        """
        if not self.deploys_dir.is_dir():
            return 0
        cutoff = (now - KEEP_OUTPUT).timestamp()
        gone = 0
        for path in self.deploys_dir.iterdir():
            if path.suffix in {".log", ".status"} and path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                gone += 1
        return gone

    def left(self, run: DeployRun) -> LeftRun:
        """A recorded step as its provider is asked about it after a restart."""
        return LeftRun(
            action=run.action,
            identity=RunIdentity(pgid=run.pgid, proc_start=run.proc_start, boot_id=run.boot_id),
            output=Path(run.output_path) if run.output_path else None,
            remote_id=run.remote_id,
            remaining=(run.deadline_at - self.clock.now()).total_seconds(),
        )

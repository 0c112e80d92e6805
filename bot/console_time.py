"""The console's clock: time that the person at the console can speed up and move forward.

The engine waits on time in two ways: a rollout's pauses through its injected sleep (``Deps.sleep``), and the
checks after a release, approvals' expiry and the summaries through the Scheduler port. In Slack mode those are
``asyncio.sleep`` and APScheduler on the wall clock. In the console both wait on a :class:`ConsoleClock`
instead: ``--speed N`` runs it N times faster than the wall clock, ``advance 5m`` moves it forward at once,
and whoever waits on it wakes when it reaches their instant. :class:`ConsoleScheduler` is the Scheduler port on
that clock: a job runs when the clock reaches it, whether by running or by being moved.

Because every wait goes through the clock, the clock also knows when the console has nothing left to show but
waits: :meth:`ConsoleClock.settle` returns once the console's work is finished or waiting on it (the console's
``wait``, and what ``advance`` does after moving), without sleeping or polling. The console's work is every
task started inside :meth:`ConsoleClock.working` (a command, the start-up, a scheduled job) or by such a task,
which the clock learns of through the event loop's task factory (:meth:`ConsoleClock.attach`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger("release_bot.console")
Job = Callable[[], Awaitable[None]]
T = TypeVar("T")
Awaited = Generator[Any, None, T] | Coroutine[Any, Any, T]  # what asyncio makes a task of
# The clock whose work the current code is doing: tasks created while it is set are that clock's work, and so
# are the tasks they create (a task starts with a copy of its creator's context).
_WORKING_FOR: ContextVar[ConsoleClock | None] = ContextVar("console_work", default=None)


class ConsoleClock:
    """Starts at ``start`` (default: now) and runs ``speed`` times as fast as the wall clock (0: stands still
    until advanced); :meth:`advance` moves it forward. A Clock for the engine, with a sleep that waits on it."""

    def __init__(
        self, start: datetime | None = None, *, speed: float = 1.0, wall: Callable[[], float] = time.monotonic
    ) -> None:
        if speed < 0:
            raise ValueError("the clock's speed cannot be negative")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._wall = wall
        self._wall_start = wall()
        self._advanced = timedelta(0)
        # Set (and replaced) whenever the clock is moved or a new wake-up is due: every waiter looks again.
        self._moved = asyncio.Event()
        # Tasks waiting on the clock now, with the instant each waits for (None: only for the clock to move).
        self._waiting: dict[asyncio.Task[object], datetime | None] = {}
        # Futures of settle() calls, resolved when a task starts waiting: what settle() waits for may be that.
        self._settlers: list[asyncio.Future[None]] = []
        # The instant each sleep() in progress ends at (rollout pauses), by task.
        self._sleeps: dict[asyncio.Task[object], datetime] = {}
        self._work: set[asyncio.Future[Any]] = set()  # the console's tasks not yet done
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self) -> None:
        """Learn of every task the console's work creates on the running loop, until :meth:`detach`."""
        loop = asyncio.get_running_loop()
        previous = loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Awaited[T], /, **kwargs: Any) -> asyncio.Future[T]:
            # kwargs: the `context` asyncio passes when create_task() was given one.
            task = previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
            if _WORKING_FOR.get() is self:
                self._work.add(task)
                task.add_done_callback(self._work.discard)
            return task

        loop.set_task_factory(factory)
        self._loop, self._previous_factory = loop, previous

    def detach(self) -> None:
        if self._loop is not None:
            self._loop.set_task_factory(self._previous_factory)
            self._loop = None

    @contextmanager
    def working(self) -> Iterator[None]:
        """The tasks started in this block (and the ones they start) are the console's work."""
        token = _WORKING_FOR.set(self)
        try:
            yield
        finally:
            _WORKING_FOR.reset(token)

    def now(self) -> datetime:
        running = timedelta(seconds=(self._wall() - self._wall_start) * self.speed)
        return self._start + running + self._advanced

    def advance(self, by: timedelta) -> None:
        """Move the clock forward by ``by``: every wait that ``by`` reaches ends."""
        if by < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._advanced += by
        self.poke()

    def poke(self) -> None:
        """Wake every waiter to look at the clock again (it moved, or a scheduler has a new, earlier job)."""
        self._moved.set()
        self._moved = asyncio.Event()
        # Until they have looked, they are not idle: settle() must not take them for waiting any more.
        self._waiting.clear()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep`` on this clock: ``seconds`` of its time, however it gets there."""
        until = self.now() + timedelta(seconds=max(seconds, 0.0))
        task: asyncio.Task[object] | None = asyncio.current_task()
        assert task is not None, "the console clock is waited on from a task"
        self._sleeps[task] = until
        try:
            while self.now() < until:
                await self.wait(until)
        finally:
            del self._sleeps[task]

    def sleeping(self) -> list[datetime]:
        """When each sleep in progress ends (a rollout's pauses)."""
        return list(self._sleeps.values())

    async def wait(self, until: datetime | None) -> None:
        """Wait until the clock reaches ``until`` (None: no instant) or is moved or poked; callers look again."""
        task: asyncio.Task[object] | None = asyncio.current_task()
        assert task is not None, "the console clock is waited on from a task"
        if until is not None and until <= self.now():
            await asyncio.sleep(0)  # there already: not a wait, and never counted as one by settle()
            return
        moved = self._moved
        self._waiting[task] = until
        for settler in self._settlers:
            if not settler.done():
                settler.set_result(None)
        timeout = None
        if until is not None and self.speed > 0:
            timeout = max((until - self.now()).total_seconds(), 0.0) / self.speed
        try:
            async with asyncio.timeout(timeout):
                await moved.wait()
        except TimeoutError:
            pass  # the clock ran there by itself
        finally:
            self._waiting.pop(task, None)  # poke() may have taken it off already

    async def settle(self) -> None:
        """Return once the console's work has finished or is waiting on this clock.

        The work a console command started shows its output as it goes; this waits for the point where the
        rest of it can only happen when the clock gets somewhere (a pause, a scheduled check), or for its end.
        """
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        while True:
            busy = {task for task in self._work if not task.done() and task is not me and task not in self._waiting}
            if not busy:
                return
            # Something busy finishes, or starts waiting on the clock: either way, look again.
            started_waiting: asyncio.Future[None] = loop.create_future()
            self._settlers.append(started_waiting)
            try:
                await asyncio.wait([*busy, started_waiting], return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._settlers.remove(started_waiting)
                started_waiting.cancel()


class ConsoleScheduler:
    """The engine's Scheduler port on a :class:`ConsoleClock`: each job runs once the clock reaches its instant.

    One task drives it, started by :meth:`start`: it runs the jobs that are due, one after the other, then waits
    on the clock for the next. Instants are the clock's (the engine's) time.
    """

    def __init__(self, clock: ConsoleClock) -> None:
        self.clock = clock
        self._jobs: dict[str, tuple[datetime, Job]] = {}
        self._repeating: set[str] = set()  # the keys of cron jobs: always there, so no work in progress
        self._driver: asyncio.Task[None] | None = None

    def start(self) -> None:
        with self.clock.working():  # the jobs it runs, and what they start, are the console's work
            self._driver = asyncio.get_running_loop().create_task(self._drive(), name="console-scheduler")

    def shutdown(self) -> None:
        if self._driver is not None:
            self._driver.cancel()
            self._driver = None

    def at(self, when: datetime, key: str, job: Job) -> None:
        self._jobs[key] = (when, job)
        self.clock.poke()  # the driver may be waiting for a later job

    def cancel(self, key: str) -> None:
        self._jobs.pop(key, None)

    def cron(self, key: str, trigger: CronTrigger, job: Job) -> None:
        """Run ``job`` at every fire time of ``trigger`` on the clock (the daily and weekly summaries)."""
        when: datetime | None = trigger.get_next_fire_time(None, self.clock.now() + timedelta(seconds=1))
        if when is None:
            return
        self._repeating.add(key)

        async def fire() -> None:
            # The next run is armed from the clock's time now, so a clock moved past several fire times runs
            # the job once, not once per time passed.
            self.cron(key, trigger, job)
            await job()

        self.at(when, key, fire)

    def upcoming(self) -> list[datetime]:
        """When each one-off job waiting is due (checks after a release, approvals' expiry): work in progress."""
        return [when for key, (when, _) in self._jobs.items() if key not in self._repeating]

    def next_run(self, key: str) -> datetime | None:
        found = self._jobs.get(key)
        return found[0] if found is not None else None

    async def _drive(self) -> None:
        while True:
            now = self.clock.now()
            due = sorted((when, key) for key, (when, _) in self._jobs.items() if when <= now)
            for _, key in due:
                found = self._jobs.pop(key, None)  # an earlier job may have cancelled it
                if found is None:
                    continue
                try:
                    await found[1]()
                except Exception:
                    log.exception("scheduled job %s failed", key)
            if not due:
                await self.clock.wait(min((when for when, _ in self._jobs.values()), default=None))

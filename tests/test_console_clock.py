"""The console's clock: faster than real time, moved by hand, and able to tell when the console's work only waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from apscheduler.triggers.cron import CronTrigger

from bot.console_time import ConsoleClock, ConsoleScheduler, Job

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class Wall:
    """A wall clock the test turns by hand (seconds, like time.monotonic)."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def __call__(self) -> float:
        return self.seconds


@pytest_asyncio.fixture
async def clock() -> AsyncIterator[ConsoleClock]:
    """A clock standing still until advanced, learning of the console's work on the test's loop."""
    clock = ConsoleClock(START, speed=0)
    clock.attach()
    yield clock
    clock.detach()


def test_the_clock_runs_speed_times_as_fast_as_the_wall_and_moves_forward_only() -> None:
    wall = Wall()
    clock = ConsoleClock(START, speed=60, wall=wall)
    wall.seconds += 5
    assert clock.now() == START + timedelta(minutes=5)
    clock.advance(timedelta(hours=1))
    assert clock.now() == START + timedelta(hours=1, minutes=5)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="cannot be negative"):
        ConsoleClock(START, speed=-1)


async def test_a_sleep_ends_when_the_clock_is_advanced_past_it(clock: ConsoleClock) -> None:
    with clock.working():
        pause = asyncio.get_running_loop().create_task(clock.sleep(300))
    await clock.settle()
    assert not pause.done() and clock.sleeping() == [START + timedelta(minutes=5)]

    clock.advance(timedelta(minutes=4))
    await clock.settle()
    assert not pause.done(), "four minutes of a five-minute pause"
    clock.advance(timedelta(minutes=1))
    await clock.settle()
    assert pause.done() and clock.sleeping() == []


async def test_a_fast_clock_ends_a_sleep_by_itself() -> None:
    clock = ConsoleClock(START, speed=36_000)  # an hour in a tenth of a second
    await clock.sleep(3600)
    assert clock.now() >= START + timedelta(hours=1)


async def test_settle_waits_for_the_consoles_work_but_not_for_other_tasks(clock: ConsoleClock) -> None:
    gate = asyncio.Event()
    finished: list[str] = []

    async def work() -> None:
        await gate.wait()
        finished.append("work")
        await clock.sleep(60)  # then only the clock is awaited
        finished.append("slept")

    elsewhere = asyncio.get_running_loop().create_task(asyncio.Event().wait())  # e.g. a server's connection
    with clock.working():
        task = asyncio.get_running_loop().create_task(work())
    settled = asyncio.get_running_loop().create_task(clock.settle())
    await asyncio.sleep(0)
    assert not settled.done(), "the work is busy: not waiting on the clock"
    gate.set()
    await settled
    assert finished == ["work"] and not task.done()
    clock.advance(timedelta(minutes=1))
    await clock.settle()
    assert finished == ["work", "slept"]
    elsewhere.cancel()


async def test_scheduled_jobs_run_when_the_clock_reaches_them(clock: ConsoleClock) -> None:
    scheduler = ConsoleScheduler(clock)
    ran: list[str] = []

    def job(name: str) -> Job:
        async def run() -> None:
            ran.append(name)

        return run

    scheduler.start()
    scheduler.at(START + timedelta(minutes=15), "late", job("late"))
    scheduler.at(START + timedelta(minutes=5), "soon", job("soon"))
    scheduler.at(START + timedelta(minutes=10), "cancelled", job("cancelled"))
    scheduler.cancel("cancelled")
    assert sorted(scheduler.upcoming()) == [START + timedelta(minutes=5), START + timedelta(minutes=15)]

    clock.advance(timedelta(minutes=5))
    await clock.settle()
    assert ran == ["soon"]
    clock.advance(timedelta(hours=1))
    await clock.settle()
    assert ran == ["soon", "late"] and scheduler.upcoming() == []
    scheduler.shutdown()


async def test_a_repeating_job_runs_once_however_far_the_clock_moves_and_is_not_work_in_progress(
    clock: ConsoleClock,
) -> None:
    scheduler = ConsoleScheduler(clock)
    ran: list[datetime] = []

    async def summary() -> None:
        ran.append(clock.now())

    scheduler.start()
    scheduler.cron("summary:day", CronTrigger(hour=17, minute=0, timezone=UTC), summary)
    assert scheduler.next_run("summary:day") == START.replace(hour=17)
    assert scheduler.upcoming() == [], "a daily summary is always coming: the console does not wait for it"

    clock.advance(timedelta(days=3))
    await clock.settle()
    assert ran == [START + timedelta(days=3)]
    assert scheduler.next_run("summary:day") == START.replace(hour=17) + timedelta(days=3)
    scheduler.shutdown()

"""The Scheduler port speaks the engine's clock: APScheduler, on the wall clock, runs a job as far from now as the
engine's instant is from the engine's now (the console's own scheduler runs on the console clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import parse_config
from bot.scheduler import BotScheduler
from tests.harness import MutableClock, config_dict


async def test_a_job_armed_on_a_shifted_engine_clock_runs_that_far_from_the_walls_now(tmp_path: Path) -> None:
    engine_now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # far from the wall clock, as in tests and `console --now`
    scheduler = BotScheduler(parse_config(config_dict(tmp_path / "deploys.log")), MutableClock(engine_now))
    scheduler.start()
    try:
        ran = asyncio.Event()

        async def job() -> None:
            ran.set()

        later = engine_now + timedelta(hours=1)
        scheduler.at(later, "far", job)
        soon = engine_now + timedelta(milliseconds=50)
        scheduler.at(soon, "soon", job)
        assert scheduler.next_run("far") == later  # given and shown on the engine's clock
        assert scheduler.next_run("soon") == soon
        await asyncio.wait_for(ran.wait(), timeout=5)  # the one 50 ms away ran ...
        assert scheduler.next_run("soon") is None
        assert scheduler.next_run("far") == later  # ... the one an hour away did not (it was in the wall's past)
        scheduler.cancel("far")
        assert scheduler.next_run("far") is None
    finally:
        scheduler.shutdown()

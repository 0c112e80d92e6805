"""A stop is only promised for a rollout that runs: when a run ends before its rollout began (a store write refused
while the release was being announced), ``Rollouts.request_stop`` says no, so a click is not told "stopping" for a
rollout nothing will stop — and the release's own Roll back stays usable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.store import StoreWriteError
from tests.harness import running_bot


async def test_a_run_that_ended_before_its_rollout_promises_no_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_bot(tmp_path) as bot:
        bot.add_candidate("1.2.3")
        story = bot.engine.story
        refused: list[int] = []
        refresh = story.refresh_parent

        async def refuse_once(release: Any) -> None:
            if not refused:
                refused.append(release.id if hasattr(release, "id") else int(release))
                raise StoreWriteError("disk full")
            await refresh(release)

        monkeypatch.setattr(story, "refresh_parent", refuse_once)
        await bot.command("staging 1.2.3")
        await bot.settle()
        assert refused, "the write was refused where the run announces the release"
        assert bot.deploys() == [], "the run stopped there: nothing deployed"
        assert bot.engine.rollouts.request_stop(refused[0], "an alert fired") is False

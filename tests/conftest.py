"""Shared fixtures: a fake Slack Web API and the whole bot running against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import FakeSlackWebAPI
from tests.harness import BotHarness, running_bot


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as fake:
        yield fake


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot in HTTP mode on a free port: signed Slack requests in, Web API calls out to the fake."""
    async with running_bot(tmp_path) as harness:
        yield harness

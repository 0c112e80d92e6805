"""Shared fixtures: a fake Slack Web API and the whole bot running against it; a fake GitHub, an outgoing
HTTP session, a self-signed certificate for local HTTPS and a store on a temporary file for the tests of
single clients and the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.http_session import HttpSession
from bot.store import AsyncStore, Store
from tests.fakes import FakeSlackWebAPI
from tests.fakes.github_api import FakeGitHub
from tests.fakes.tls import SelfSigned, self_signed
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


@pytest.fixture
async def http() -> AsyncIterator[HttpSession]:
    async with HttpSession() as session:
        yield session


@pytest.fixture
async def gh() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub() as fake:
        yield fake


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    """A self-signed certificate for 127.0.0.1 (its own CA), made once per session."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AsyncStore]:
    store = AsyncStore(Store(tmp_path / "db.sqlite"))
    yield store
    store.close()

"""Versions and commits are safe by construction: what could reach a deploy argv, a URL or git is refused at the door.

The same rule (``bot.core.models.VERSION_RE``) guards the CI API, the `/release` grammar and the query parameters;
each refusal names the field and leaves every table as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api import API_PREFIX, mount_api
from bot.config import parse_config
from bot.core.grammar import ParseError, Vocabulary, parse
from bot.core.models import VERSION_RE, version_problem
from bot.store import AsyncStore
from tests.harness import RELEASER, BotHarness
from tests.test_api import AUTH, CONFIG, TOKEN, Clock, candidate

Client = TestClient[web.Request, web.Application]
TABLES = ("candidates", "candidate_tests", "candidate_scans", "audit")

# Each would be read as an option (`-rf`), a path (`a/b`, `..`), a hidden file (`.x`) or overflow a column.
HOSTILE = ["-rf", "--force", "..", "1.2..3", "a/b", "../etc", ".hidden", "-1.2.3", "+1", "_1", "1" * 129, "1.2.3\n"]
GOOD = ["1.2.3", "v2", "1.2.3+build.7", "2026.03.02-rc_1", "a", "9" * 128, "1.2.3.", "x-", "1._2"]


@pytest.mark.parametrize("version", GOOD)
def test_ordinary_versions_pass(version: str) -> None:
    assert version_problem(version) is None and VERSION_RE.match(version)


@pytest.mark.parametrize("version", HOSTILE)
def test_hostile_versions_are_named_and_refused(version: str) -> None:
    problem = version_problem(version)
    assert problem is not None and problem.startswith(f"{version[:80]!r} is not a version")
    assert "starting with a letter or digit" in problem and "`..`" in problem


@pytest.fixture
async def client(db: AsyncStore) -> AsyncIterator[Client]:
    app = web.Application()
    assert mount_api(app, db=db, config=parse_config(CONFIG), token=TOKEN, clock=Clock())
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


def counts(db: AsyncStore) -> dict[str, int]:
    return {t: db.sync.sql.query(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in TABLES}  # noqa: S608


@pytest.mark.parametrize("version", HOSTILE)
async def test_the_api_refuses_a_hostile_version_and_stores_nothing(
    client: Client, db: AsyncStore, version: str
) -> None:
    response = await client.post(f"{API_PREFIX}/candidates", json=candidate(version=version), headers=AUTH)

    answer: dict[str, Any] = await response.json()
    assert (response.status, answer["field"]) == (422, "version"), answer
    assert answer["error"].startswith("version: ") and "is not a version" in answer["error"]
    assert counts(db) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize(
    "commit",
    ["abcdef1", "a" * 39, "a" * 41, "a" * 63, "a" * 65, "g" * 40, "-" + "a" * 39, "a" * 40 + "\n", "HEAD"],
)
async def test_the_api_takes_only_full_commit_ids(client: Client, db: AsyncStore, commit: str) -> None:
    response = await client.post(f"{API_PREFIX}/candidates", json=candidate(commit=commit), headers=AUTH)

    answer: dict[str, Any] = await response.json()
    assert (response.status, answer["field"]) == (422, "commit"), answer
    assert "40 or 64 hexadecimal" in answer["error"]
    assert counts(db) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize("commit", ["b" * 40, "C" * 64])
async def test_sha1_and_sha256_ids_are_accepted(client: Client, db: AsyncStore, commit: str) -> None:
    response = await client.post(f"{API_PREFIX}/candidates", json=candidate(commit=commit), headers=AUTH)

    assert response.status in (200, 201), await response.text()
    assert (await response.json())["commit"] == commit.lower()
    assert counts(db)["candidates"] == 1


async def test_a_version_query_parameter_is_held_to_the_same_rule(client: Client) -> None:
    response = await client.get(f"{API_PREFIX}/notes", params={"service": "notify", "to": "-rf"}, headers=AUTH)

    answer: dict[str, Any] = await response.json()
    assert (response.status, answer["field"]) == (400, "to"), answer
    assert "is not a version" in answer["error"]


VOCAB = Vocabulary(services=frozenset({"notify"}), environments=frozenset({"staging", "prod"}))


TEMPLATES = ["staging {v}", "deploy {v} to staging", "rollback prod to {v}", "notes {v}", "notes 1.0..{v}"]
# `notes 1.2..3` is the range 1.2 → 3, not a version; whitespace splits words before the grammar sees them.
WORDS = [v for v in HOSTILE if v.strip() == v and not v.startswith("--")]


@pytest.mark.parametrize(
    ("template", "version"), [(t, v) for t in TEMPLATES for v in WORDS if not (t == "notes {v}" and v == "1.2..3")]
)
def test_the_grammar_refuses_hostile_versions(template: str, version: str) -> None:
    with pytest.raises(ParseError, match="is not a version"):
        parse(template.format(v=version), VOCAB, channel_service="notify")


@pytest.mark.parametrize("text", ["staging -rf", "staging ..", "staging a/b", "staging .1", "rollback prod to -1"])
async def test_a_hostile_version_in_a_slash_command_changes_nothing(bot: BotHarness, text: str) -> None:
    bot.add_candidate("1.2.3")
    before = {t: bot.count(t) for t in ("releases", "release_locks", "approvals", "audit", "env_state")}

    response = await bot.command(text, user=RELEASER)
    await bot.settle()

    assert response.status == 200
    body = await response.text()
    assert "is not a version" in (body if "is not a version" in body else bot.last_reply(RELEASER))
    assert {t: bot.count(t) for t in before} == before
    assert bot.deploys() == []


@pytest.mark.parametrize("route", ["scan", "tests"])
async def test_a_hostile_version_in_the_path_is_refused_naming_it(client: Client, db: AsyncStore, route: str) -> None:
    response = await client.post(f"{API_PREFIX}/candidates/notify/-rf/{route}", json={}, headers=AUTH)
    answer: dict[str, Any] = await response.json()
    assert (response.status, answer["field"]) == (422, "version"), answer
    assert counts(db) == dict.fromkeys(TABLES, 0)

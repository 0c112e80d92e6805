"""The "full notes" link: signed, expiring, URL-encoded, and opened by a Slack user without a token.

The page is served by a real aiohttp server over a real SQLite store; the link under test is the one
the bot makes (``notes_link``), and in the scenario test the one it actually posted to Slack.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api import API_PREFIX, mount_api
from bot.bootstrap import http_app
from bot.config import Config, parse_config
from bot.core.commits import Person
from bot.core.models import ReleaseKind, ReleaseState
from bot.core.notes import NoteEntry, NoteSection, ReleaseNotes
from bot.demo import make_repo
from bot.notes_link import LINK_TTL, derive_link_key, notes_link
from bot.notes_page import mount_notes_page
from bot.settings import Settings, SettingsError
from bot.store import AsyncStore
from tests.fakes import FakeSlackWebAPI
from tests.harness import CHANNEL, BotHarness, MutableClock, config_dict, harness_settings
from tests.test_api import Clock

TOKEN = "ci-token-0123456789"
KEY = derive_link_key("a-link-secret-of-at-least-32-characters")
BASE = "https://releases.example.org"
START = Clock().now  # 2026-03-02 15:00 UTC
CONFIG: dict[str, Any] = {
    "timezone": "America/Toronto",
    "services": {
        "notify": {"channel": "C01RELEASES", "components": ["api"], "pipeline": ["staging", "prod"]},
        "billing": {"channel": "C02BILLING", "components": ["api"], "pipeline": ["staging", "prod"]},
    },
    "environments": {
        "staging": {"window": "always", "deploy": {"provider": "command", "run": ["true"]}},
        "prod": {"window": "always", "deploy": {"provider": "command", "run": ["true"]}},
    },
}
HOSTILE = '<script>alert("x")</script> & <!channel>'
INVALID = (
    "This link is not valid: it was changed after the bot made it, or the bot's link key has changed since. "
    "Open the link from the release thread again.\n"
)
INCOMPLETE = "This link is incomplete: copy the whole link from the release thread.\n"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config() -> Config:
    return parse_config(CONFIG)


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(db: AsyncStore, config: Config, clock: Clock) -> AsyncIterator[Client]:
    """The notes page and the bearer API side by side, as ``build_web_app`` mounts them."""
    app = web.Application()
    assert mount_api(app, db=db, config=config, token=TOKEN, clock=clock)
    assert mount_notes_page(app, db=db, config=config, key=KEY, clock=clock)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


def notes(count: int = 20, description: str = "change") -> ReleaseNotes:
    """More features than Slack shows (15 per section): the page must list them all."""
    ada = Person("Ada <Lovelace>", "ada@example.org")
    entries = tuple(
        NoteEntry(
            sha=f"{i:07x}" + "0" * 33,
            type="feat",
            scope="api",
            description=f"{description} {i}",
            breaking=False,
            breaking_note=None,
            pr_numbers=(100 + i,),
            authors=(ada,),
        )
        for i in range(count)
    )
    return ReleaseNotes(
        sections=(NoteSection("features", "Features", entries),),
        contributors=(ada,),
        commit_count=count,
        merge_count=0,
        reverted_count=0,
        pr_url_base="https://github.com/cds-snc/notify",
    )


def stored(db: AsyncStore, version: str, previous_live: str | None, notes_dict: dict[str, Any]) -> None:
    """A finished release of ``version`` to staging with notes, replacing ``previous_live`` (if any)."""
    store = db.sync
    if previous_live is not None:
        old = store.create_release(
            service="notify",
            env="staging",
            version=previous_live,
            kind=ReleaseKind.DEPLOY,
            state=ReleaseState.QUEUED,
            requested_by="U01RELEASE",
            now=START - timedelta(days=2),
            take_lock=True,
        )
        store.transition(
            old.id, ReleaseState.SUCCEEDED, actor="U01RELEASE", detail="done", now=START - timedelta(days=2)
        )
    new = store.create_release(
        service="notify",
        env="staging",
        version=version,
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=START - timedelta(hours=1),
        take_lock=True,
        notes=notes_dict,
    )
    store.transition(new.id, ReleaseState.SUCCEEDED, actor="U01RELEASE", detail="done", now=START - timedelta(hours=1))


def path_of(url: str) -> str:
    """What reaches the bot for a link: the path and query behind RELEASEBOT_PUBLIC_URL."""
    assert url.startswith(BASE + "/")
    return url[len(BASE) :]


def link(clock: Clock, version: str = "1.2.3+build.7", previous: str | None = "1.2.2", **changes: Any) -> str:
    args: dict[str, Any] = {"service": "notify", "previous": previous, "version": version, "now": clock.now}
    args.update(changes)
    key = args.pop("key", KEY)
    return path_of(notes_link(BASE, key, **args))


def counts(db: AsyncStore) -> dict[str, int]:
    tables = ("releases", "audit", "release_events")
    return {t: db.sync.sql.query(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}  # noqa: S608


# --- the link itself and the page it opens


async def test_a_signed_link_opens_every_note_as_a_readable_page(client: Client, db: AsyncStore, clock: Clock) -> None:
    stored(db, "1.2.3+build.7", "1.2.2", notes(description=f"fix {HOSTILE}").to_dict())
    path = link(clock)
    expires = int((START + timedelta(days=30)).timestamp())
    sig = path.rsplit("&sig=", 1)[1]

    assert path == f"/notes/notify?from=1.2.2&to=1.2.3%2Bbuild.7&expires={expires}&sig={sig}"
    assert re.fullmatch(r"[0-9a-f]{64}", sig)
    response = await client.get(path)  # no Authorization header: a Slack user has none

    assert response.status == 200
    assert (response.content_type, response.charset) == ("text/html", "utf-8")
    assert response.headers["Referrer-Policy"] == "no-referrer", "the signed URL must not leak to linked pages"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert "<title>notify 1.2.2..1.2.3+build.7</title>" in page
    assert "<h2>Features (20)</h2>" in page
    escaped = "fix &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;!channel&gt;"
    for i in (0, 15, 19):  # Slack shows 15; the page shows all of them
        assert (
            f"<li><strong>api:</strong> {escaped} {i}"
            f' (<a href="https://github.com/cds-snc/notify/pull/{100 + i}">#{100 + i}</a>, <code>{i:07x}</code>)'
            " — Ada &lt;Lovelace&gt;</li>"
        ) in page
    assert "<script>" not in page and "<!channel>" not in page


async def test_notes_stored_as_markdown_are_shown_as_written(client: Client, db: AsyncStore, clock: Clock) -> None:
    stored(db, "1.4.0", None, {"markdown": "# 1.4.0\n\n- fix <b>bold</b>\n"})

    response = await client.get(link(clock, version="1.4.0", previous=None))

    assert response.status == 200
    assert "<pre># 1.4.0\n\n- fix &lt;b&gt;bold&lt;/b&gt;\n</pre>" in await response.text()


def tamper(path: str, how: str) -> str:
    expires = re.search(r"expires=(\d+)", path)
    assert expires
    later = str(int(expires.group(1)) + 86_400)
    sig = path.rsplit("=", 1)[1]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    return {
        "other-version": path.replace("%2Bbuild.7", "%2Bbuild.8"),
        "plus-sent-unencoded": path.replace("%2B", "+"),  # what the old, unencoded link did: `+` arrives as a space
        "other-previous": path.replace("from=1.2.2", "from=1.2.1"),
        "other-service": path.replace("/notes/notify?", "/notes/billing?"),
        "longer-expiry": path.replace(expires.group(1), later),
        "flipped-signature": path[: -len(sig)] + flipped,
        "uppercase-signature": path[: -len(sig)] + sig.upper(),
    }[how]


@pytest.mark.parametrize(
    "how",
    [
        "other-version",
        "plus-sent-unencoded",
        "other-previous",
        "other-service",
        "longer-expiry",
        "flipped-signature",
        "uppercase-signature",
    ],
)
async def test_a_tampered_link_is_refused_with_a_plain_403(
    client: Client, db: AsyncStore, clock: Clock, how: str
) -> None:
    stored(db, "1.2.3+build.7", "1.2.2", notes().to_dict())
    stored(db, "1.2.3+build.8", "1.2.2", notes().to_dict())  # a real target: only the signature stops it
    before = counts(db)

    response = await client.get(tamper(link(clock), how))

    assert response.status == 403
    assert (response.content_type, response.charset) == ("text/plain", "utf-8")
    assert await response.text() == INVALID
    assert counts(db) == before


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        pytest.param("/notes/notify?from=1.2.2&to=1.2.3%2Bbuild.7", INCOMPLETE, id="no-expiry-no-signature"),
        pytest.param("/notes/notify?from=1.2.2&to=1.2.3%2Bbuild.7&expires=1775055600", INCOMPLETE, id="no-signature"),
        pytest.param(f"/notes/notify?to=1.2.3&expires=soon&sig={'0' * 64}", INCOMPLETE, id="bad-expiry"),
        pytest.param(f"/notes/notify?to=1.2.3&expires={'9' * 12}&sig={'0' * 64}", INCOMPLETE, id="huge-expiry"),
        pytest.param(f"/notes/notify?from=1.2.2&expires=1775055600&sig={'0' * 64}", INCOMPLETE, id="no-version"),
        pytest.param(f"/notes/notify?to=1.2.3&expires=1775055600&sig={'é' * 64}", INVALID, id="non-ascii-signature"),
    ],
)
async def test_an_incomplete_link_is_refused_with_a_plain_403(
    client: Client, db: AsyncStore, path: str, answer: str
) -> None:
    stored(db, "1.2.3+build.7", "1.2.2", notes().to_dict())

    response = await client.get(path)

    assert (response.status, await response.text()) == (403, answer)


async def test_a_link_signed_with_another_key_is_refused(client: Client, db: AsyncStore, clock: Clock) -> None:
    stored(db, "1.2.3+build.7", "1.2.2", notes().to_dict())

    response = await client.get(link(clock, key=derive_link_key("another-deployment-secret-0123456789")))

    assert (response.status, await response.text()) == (403, INVALID)


async def test_a_link_works_for_30_days_then_says_it_expired(client: Client, db: AsyncStore, clock: Clock) -> None:
    stored(db, "1.2.3+build.7", "1.2.2", notes().to_dict())
    path = link(clock)

    clock.now = START + LINK_TTL - timedelta(seconds=1)
    last_second = await client.get(path)
    clock.now = START + LINK_TTL
    expired = await client.get(path)

    assert last_second.status == 200
    assert expired.status == 403
    assert await expired.text() == (
        "This link expired on 2026-04-01 15:00 UTC: links to the full notes work for 30 days. "
        "Run `/release notes 1.2.3+build.7` in Slack to see these notes there.\n"
    )


@pytest.mark.parametrize(
    ("service", "version", "message"),
    [
        pytest.param("notify", "1.9.0", "No release notes are stored for this release.", id="no-such-release"),
        pytest.param("payroll", "1.2.3+build.7", "payroll is no longer a configured service.", id="unknown-service"),
    ],
)
async def test_a_good_link_to_missing_notes_is_a_readable_404(
    client: Client, db: AsyncStore, clock: Clock, service: str, version: str, message: str
) -> None:
    stored(db, "1.2.3+build.7", "1.2.2", notes().to_dict())

    response = await client.get(link(clock, service=service, version=version))

    assert response.status == 404
    assert response.content_type == "text/html"
    assert f"<p>{message}</p>" in await response.text()


async def test_the_bearer_api_keeps_working_and_does_not_open_the_page(
    client: Client, db: AsyncStore, clock: Clock
) -> None:
    stored(db, "1.2.3+build.7", "1.2.2", notes().to_dict())
    auth = {"Authorization": f"Bearer {TOKEN}"}

    api = await client.get(
        f"{API_PREFIX}/notes", params={"service": "notify", "from": "1.2.2", "to": "1.2.3+build.7"}, headers=auth
    )
    page_with_token_only = await client.get("/notes/notify?from=1.2.2&to=1.2.3%2Bbuild.7", headers=auth)

    assert (api.status, api.content_type) == (200, "text/markdown")
    assert (await api.text()).startswith("# notify 1.2.2..1.2.3+build.7\n")
    assert (page_with_token_only.status, await page_with_token_only.text()) == (403, INCOMPLETE)


# --- where the key comes from


def test_the_link_key_comes_from_the_link_secret_or_else_the_api_token() -> None:
    secret = "s" * 32
    with_both = Settings.from_env({"RELEASEBOT_API_TOKEN": TOKEN, "RELEASEBOT_LINK_SECRET": secret})
    token_only = Settings.from_env({"RELEASEBOT_API_TOKEN": TOKEN})

    assert with_both.notes_link_key() == derive_link_key(secret)
    assert token_only.notes_link_key() == derive_link_key(TOKEN)
    assert token_only.notes_link_key() not in {TOKEN.encode(), None}, "the key is derived, never the token itself"
    assert Settings.from_env({}).notes_link_key() is None


def test_a_short_link_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELEASEBOT_LINK_SECRET": "hunter2"})

    assert str(caught.value) == ("RELEASEBOT_LINK_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)")


# --- end to end: the link the bot posts in the release thread


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
async def test_the_release_thread_carries_a_signed_link_that_opens(tmp_path: Path) -> None:
    public = "https://releases.example.org"
    shas = make_repo(
        tmp_path / "repo",
        datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        [("chore: start", "Ada", "ada@example.com")]
        + [(f"feat(api): change {i}", "Ada", "ada@example.com") for i in range(20)],
    )
    config = config_dict(tmp_path / "deploys.log")
    config["services"]["notify"]["repo"] = {"path": str(tmp_path / "repo")}
    parsed = parse_config(config)
    clock = MutableClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    async with FakeSlackWebAPI() as slack:
        settings = harness_settings(slack, tmp_path / "releasebot.db").model_copy(update={"public_url": public})
        app = http_app(settings, parsed, tmp_path, clock=clock)
        async with TestClient(TestServer(app)) as client:
            bot = BotHarness(
                slack=slack,
                client=client,
                clock=clock,
                log=tmp_path / "deploys.log",
                db_path=tmp_path / "releasebot.db",
                config=parsed,
            )
            bot.add_candidate("1.2.2", commit=shas[0])
            bot.add_candidate("1.2.3+build.7", commit=shas[-1])
            bot.live("staging", "1.2.2")
            await bot.command("staging 1.2.3+build.7")
            await bot.settle()

            [story] = [m for m in slack.messages(CHANNEL) if m.text == "Release notes for 1.2.3+build.7"]
            found = re.findall(r"full notes: <(https://[^|>]+)\|link>", str(story.blocks))
            assert len(found) == 1, story.blocks
            url = found[0].replace("&amp;", "&")  # mrkdwn escapes `&` inside a link; Slack opens the plain URL
            expires = int((clock.now() + timedelta(days=30)).timestamp())
            assert url.startswith(f"{public}/notes/notify?from=1.2.2&to=1.2.3%2Bbuild.7&expires={expires}&sig=")

            opened = await client.get(url[len(public) :])
            page = await opened.text()
            assert opened.status == 200 and opened.content_type == "text/html"
            assert "<title>notify 1.2.2..1.2.3+build.7</title>" in page
            assert all(f"change {i} (" in page for i in range(20)), "every change, not Slack's first 15"

            clock.advance(days=30)
            expired = await client.get(url[len(public) :])
            assert expired.status == 403 and "This link expired on" in await expired.text()

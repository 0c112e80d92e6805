"""GitHub Deployments: releases through the real engine (HTTP app, SQLite, fake Slack) create deployments and post
their statuses to the fake GitHub (tests/fakes/github_api.py), through outages, rate limits and lost answers,
without ever holding a release up; and every event reaches a signature-checking webhook receiver in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot import bootstrap
from bot.bootstrap import http_app
from bot.config import parse_config
from bot.config.events import PREFIX
from bot.core.models import ReleaseKind, ReleaseState
from bot.events.deliver import Deliveries, DeliveryPolicy
from bot.github_api import GitHubClient
from bot.github_deployments import GitHubDeployments
from bot.http_session import HttpSession
from bot.observability import REGISTRY
from bot.store import AsyncStore, Store
from bot.store.events import GITHUB, EventTarget
from tests.fakes import FakeSlackWebAPI
from tests.fakes.github_api import FakeGitHub
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.harness import CHANNEL, TUESDAY_10AM, BotHarness, MutableClock, config_dict, harness_settings

REPO = "acme/notify"
OTHER = "acme/billing"  # a second service's repository (github_worker configures it)
SECRET = "whsec-test"


class Waits:
    """The worker's backoff sleep (also the GitHub client's): records each wait; holds until wake() while ``held``."""

    def __init__(self, *, held: bool = False) -> None:
        self.seen: list[float] = []
        self.held = held
        self.waiting = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        if self.held:
            self.waiting.set()
            await asyncio.Event().wait()


@asynccontextmanager
async def bot_with_github(
    tmp_path: Path, gh: FakeGitHub, waits: Waits, monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver | None = None
) -> AsyncIterator[BotHarness]:
    """The real HTTP app with GITHUB_TOKEN set against the fake GitHub, the service's repo on it."""
    log = tmp_path / "deploys.log"
    data = config_dict(log)
    data["services"]["notify"]["repo"] = {"github": REPO}
    if hook is not None:
        data["events"] = {"webhooks": [{"url": hook.url, "secret_env": "RB_TEST_HOOK_SECRET"}]}
        monkeypatch.setenv("RB_TEST_HOOK_SECRET", SECRET)
    monkeypatch.setattr(bootstrap, "EVENTS_POLICY", DeliveryPolicy(sleep=waits))
    config = parse_config(data)
    clock = MutableClock(TUESDAY_10AM)
    db = tmp_path / "releasebot.db"
    async with FakeSlackWebAPI() as slack:
        slack.set_usergroup("S01PLATFORM", ["U01PLATFORM"])
        settings = harness_settings(slack, db).model_copy(
            update={"github_token": SecretStr("ghp_test"), "github_api_url": gh.url}
        )
        async with TestClient(TestServer(http_app(settings, config, tmp_path, clock=clock))) as client:
            bot = BotHarness(slack=slack, client=client, clock=clock, log=log, db_path=db, config=config)
            yield bot
            await bot.settle()


async def delivered(bot: BotHarness) -> None:
    """Await the engine's work, then the event worker's (never sleep)."""
    await bot.settle()
    events: Deliveries = bot.runtime.events
    await events.drained()


def creates(gh: FakeGitHub) -> list[Any]:
    return [r.body for r in gh.requests if r.method == "POST" and r.path.endswith("/deployments")]


async def staging(bot: BotHarness, gh: FakeGitHub, version: str) -> str:
    """Register ``version`` at a new commit on the fake GitHub and release it to staging; its commit."""
    sha = gh.add_history(REPO, [f"feat: {version}"])[0]
    bot.add_candidate(version, commit=sha)
    await bot.command(f"staging {version}")
    return sha


async def test_a_release_makes_a_deployment_and_its_statuses(
    tmp_path: Path, gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh.add_history(REPO, ["chore: initial"])
    async with (
        WebhookReceiver(SECRET) as hook,
        bot_with_github(tmp_path, gh, Waits(), monkeypatch, hook) as bot,
    ):
        sha = await staging(bot, gh, "1.2.3")
        await delivered(bot)
        release = bot.store.history("notify", "staging", 1)[0]
        assert release.state is ReleaseState.SUCCEEDED

        assert creates(gh) == [
            {
                "ref": sha,
                "task": "deploy",
                "auto_merge": False,
                "required_contexts": [],
                "environment": "staging",
                "payload": {
                    "release_id": release.id,
                    "service": "notify",
                    "version": "1.2.3",
                    "release_bot": creates(gh)[0]["payload"]["release_bot"],
                },
                "description": "deploy 1.2.3 by release-bot",
                "production_environment": False,
                "transient_environment": False,
            }
        ]
        (deployment,) = gh.deployments[REPO]
        assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress", "success"]
        success = gh.statuses[deployment["id"]][-1]
        permalink = await bot.runtime.engine.story.notifier.permalink(CHANNEL, release.thread_ts)
        assert success["log_url"] == permalink and permalink.startswith("https://")
        posted = [r.body for r in gh.requests if r.path.endswith("/statuses")]
        assert all(body["auto_inactive"] is False for body in posted)

        # The webhook got every event of it, in order, signed (the receiver refuses a bad signature).
        assert hook.refused == []
        assert [t.removeprefix(PREFIX) for t in hook.types()] == [
            "release.queued",
            "release.deploying",
            "release.succeeded",
        ]
        assert [e["releasebotseq"] for e in hook.events] == sorted(e["releasebotseq"] for e in hook.events)

        # The next release of the environment replaces it: that one is marked inactive, this one is the success.
        await staging(bot, gh, "1.2.4")
        await delivered(bot)
        first, second = gh.deployments[REPO]
        assert gh.statuses_of(first["id"]) == ["queued", "in_progress", "success", "inactive"]
        assert gh.statuses_of(second["id"]) == ["queued", "in_progress", "success"]


async def test_github_down_never_delays_a_release_and_statuses_follow_once_it_is_back(
    tmp_path: Path, gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh.add_history(REPO, ["chore: initial"])
    waits = Waits(held=True)
    async with bot_with_github(tmp_path, gh, waits, monkeypatch) as bot:
        gh.down = True
        started = bot.clock.now()
        await staging(bot, gh, "1.2.3")
        await bot.settle()  # the release's own work is done: nothing of it waited for GitHub
        release = bot.store.history("notify", "staging", 1)[0]
        assert release.state is ReleaseState.SUCCEEDED and bot.clock.now() == started
        await waits.waiting.wait()  # the worker is backing off
        assert gh.deployments == {} and bot.deploys()  # deployed all the same
        pending = bot.store.sql.query("SELECT state FROM deliveries WHERE target = 'github'")
        assert [r["state"] for r in pending] == ["pending"] * 3

        gh.down = False
        waits.held = False
        bot.runtime.events.wake()
        await delivered(bot)
        (deployment,) = gh.deployments[REPO]
        assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress", "success"]
        # The create answered 503 may have landed (a 5xx is in doubt): it was looked for before the second one.
        calls = [(r.method, r.path.rsplit("/", 1)[-1]) for r in gh.requests if "/deployments" in r.path]
        assert calls[:3] == [("POST", "deployments"), ("GET", "deployments"), ("POST", "deployments")]


# --- the GitHub target on its own, over a store (no engine) -------------------------------------------------------


@asynccontextmanager
async def github_worker(
    tmp_path: Path, gh: FakeGitHub, waits: Waits, clock: MutableClock, **policy: Any
) -> AsyncIterator[tuple[Deliveries, AsyncStore]]:
    data = config_dict(tmp_path / "deploys.log")
    data["services"]["notify"]["repo"] = {"github": REPO}
    data["services"]["billing"] = {**data["services"]["notify"], "repo": {"github": OTHER}}
    config = parse_config(data)
    db = AsyncStore(Store(tmp_path / "db.sqlite"))
    db.sync.event_targets = (EventTarget(GITHUB, (PREFIX + "release.*",), frozenset({"notify", "billing"})),)
    async with HttpSession() as http:
        client = GitHubClient(
            session=http,
            token="ghp_test",
            api_url=gh.url,
            sleep=waits,
            max_wait=120,
            clock=lambda: clock.now().timestamp(),  # x-ratelimit-reset is read against the test's clock
        )

        async def permalink(channel: str, ts: str) -> str | None:
            return f"https://example.slack.com/archives/{channel}/p{ts.replace('.', '')}"

        sender = GitHubDeployments(client, db, config, permalink=permalink, now=clock.now)
        deliveries = Deliveries(db, [sender], clock=clock, policy=DeliveryPolicy(sleep=waits, **policy))
        await deliveries.start()
        try:
            yield deliveries, db
        finally:
            await deliveries.stop()
            db.close()


def release(
    store: Store, version: str, commit: str, clock: MutableClock, *, service: str = "notify", **kwargs: Any
) -> int:
    store.put_candidate(
        service=service, version=version, commit=commit, committed_at=None, components={}, tests={}, now=clock.now()
    )
    created = store.create_release(
        service=service,
        env="prod",
        version=version,
        kind=kwargs.pop("kind", ReleaseKind.DEPLOY),
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=clock.now(),
        take_lock=True,
        **kwargs,
    )
    store.update_release(created.id, channel=CHANNEL, thread_ts="1732460400.000100")
    return created.id


def finish(store: Store, release_id: int, clock: MutableClock, to: ReleaseState = ReleaseState.SUCCEEDED) -> None:
    store.transition(release_id, ReleaseState.DEPLOYING, actor="release-bot", detail="", now=clock.now())
    store.transition(release_id, to, actor="release-bot", detail="", now=clock.now())


async def test_a_secondary_rate_limit_is_waited_out_as_github_asks(tmp_path: Path, gh: FakeGitHub) -> None:
    shas = gh.add_history(REPO, ["feat: a"])
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    async with github_worker(tmp_path, gh, waits, clock) as (deliveries, db):
        gh.rate_limit(status=403, retry_after=3)  # answers the create: it is not retried blindly, but re-queued
        rid = release(db.sync, "1.0.0", shas[0], clock)
        await deliveries.drained()
        gh.rate_limit(status=403, retry_after=5)  # a status: the client waits it out itself
        finish(db.sync, rid, clock, ReleaseState.FAILED)
        await deliveries.drained()

        (deployment,) = gh.deployments[REPO]
        assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress", "failure"]
        # The create is re-queued after the create's own Retry-After (the queue's backoff, 1 s, is shorter); the
        # status's Retry-After is honoured exactly by the client.
        assert waits.seen == [3.0, 5.0]
        assert len(creates(gh)) == 2 and len(gh.deployments[REPO]) == 1
        assert all(r.headers["Authorization"] == "Bearer ghp_test" for r in gh.requests)


async def test_a_primary_rate_limit_requeues_until_its_reset_and_a_bare_one_waits_a_minute(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    shas = gh.add_history(REPO, ["feat: a", "feat: b"])
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    async with github_worker(tmp_path, gh, waits, clock) as (deliveries, db):
        # The primary limit is spent until 7 minutes from now: the create is queued again until then (+1 s for the
        # reset second itself), longer than the client would sit out (max_wait 120 s) and than the backoff.
        gh.rate_limit(status=403, reset_at=int(clock.now().timestamp()) + 420)
        first = release(db.sync, "1.0.0", shas[0], clock)
        await deliveries.drained()
        finish(db.sync, first, clock)
        await deliveries.drained()
        # A 429 naming no time at all: GitHub's advice for secondary limits is a minute.
        gh.rate_limit(status=429)
        second = release(db.sync, "1.1.0", shas[1], clock)
        await deliveries.drained()

        assert waits.seen == [421.0, 60.0]
        made = {d["payload"]["release_id"] for d in gh.deployments[REPO]}
        assert made == {first, second} and len(creates(gh)) == 4
        queued = db.sync.sql.query(
            "SELECT d.state, d.attempts FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE e.type = ? ORDER BY d.event_id",
            (PREFIX + "release.queued",),
        )
        assert queued == [{"state": "sent", "attempts": 2}, {"state": "sent", "attempts": 2}]


async def test_a_create_whose_answer_was_lost_is_found_on_the_next_page_not_made_twice(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    shas = gh.add_history(REPO, ["feat: a"])
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits(held=True)
    async with github_worker(tmp_path, gh, waits, clock) as (deliveries, db):
        gh.lose_next_creates = 1  # created, but the answer is a gateway's 502
        rid = release(db.sync, "1.0.0", shas[0], clock)
        await waits.waiting.wait()  # the attempt failed in doubt; the worker backs off
        # Meanwhile another tool deploys the same commit there 150 times: the bot's is now past the first page.
        for _ in range(150):
            await _foreign_deployment(gh, shas[0])
        waits.held = False
        deliveries.wake()
        await deliveries.drained()

        ours = [d for d in gh.deployments[REPO] if d["payload"].get("release_id") == rid]
        assert len(ours) == 1 and len([c for c in creates(gh) if c["payload"].get("release_id") == rid]) == 1
        lookups = [r for r in gh.requests if r.method == "GET" and r.path.endswith("/deployments")]
        assert [r.query.get("page", "1") for r in lookups] == ["1", "2"]  # followed Link to the second page
        assert lookups[0].query["sha"] == shas[0] and lookups[0].query["environment"] == "prod"
        assert gh.statuses_of(ours[0]["id"]) == ["queued"]
        row = db.sync.sql.one("SELECT deployment_id FROM github_deployments WHERE release_id = ?", (rid,))
        assert row == {"deployment_id": ours[0]["id"]}


async def _foreign_deployment(gh: FakeGitHub, sha: str) -> None:
    async with HttpSession() as http:
        client = GitHubClient(session=http, token="t", api_url=gh.url)
        await client.request(
            "POST", f"{gh.url}/repos/{REPO}/deployments", body={"ref": sha, "environment": "prod", "payload": {}}
        )


async def test_a_rollback_deploys_the_version_it_returns_to(tmp_path: Path, gh: FakeGitHub) -> None:
    old, new = gh.add_history(REPO, ["feat: a", "feat: b"])
    clock = MutableClock(TUESDAY_10AM)
    async with github_worker(tmp_path, gh, Waits(), clock) as (deliveries, db):
        first = release(db.sync, "1.0.0", old, clock)
        finish(db.sync, first, clock)
        second = release(db.sync, "1.1.0", new, clock)
        finish(db.sync, second, clock)
        clock.advance(minutes=5)
        back = release(db.sync, "1.0.0", old, clock, kind=ReleaseKind.ROLLBACK, rollback_of=second)
        finish(db.sync, back, clock)
        db.sync.transition(second, ReleaseState.ROLLED_BACK, actor="release-bot", detail="", now=clock.now())
        await deliveries.drained()

        d1, d2, d3 = gh.deployments[REPO]
        assert [d["sha"] for d in (d1, d2, d3)] == [old, new, old]
        assert d3["payload"]["release_id"] == back and d3["description"] == "rollback 1.0.0 by release-bot"
        assert gh.statuses_of(d1["id"]) == ["queued", "in_progress", "success", "inactive"]
        assert gh.statuses_of(d2["id"]) == ["queued", "in_progress", "success", "inactive"]
        assert gh.statuses_of(d3["id"]) == ["queued", "in_progress", "success"]
        assert gh.statuses[d3["id"]][0]["log_url"].startswith(f"https://example.slack.com/archives/{CHANNEL}/p")


async def test_an_unknown_commit_is_given_up_at_once_and_a_cancelled_request_makes_nothing(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    gh.add_history(REPO, ["feat: a"])
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    async with github_worker(tmp_path, gh, waits, clock) as (deliveries, db):
        rid = release(db.sync, "9.9.9", "f" * 40, clock)  # a commit GitHub does not have: 422
        waiting = db.sync.create_release(
            service="notify",
            env="staging",
            version="9.9.9",
            kind=ReleaseKind.DEPLOY,
            state=ReleaseState.AWAITING_APPROVAL,
            requested_by="U01RELEASE",
            now=clock.now(),
            take_lock=False,
        )
        db.sync.transition(waiting.id, ReleaseState.CANCELLED, actor="U01RELEASE", detail="", now=clock.now())
        await deliveries.drained()

        assert gh.deployments == {} and waits.seen == []
        rows = db.sync.sql.query("SELECT event_id, state, last_error FROM deliveries ORDER BY event_id")
        assert rows[0]["state"] == "dead" and "No ref found for: " + "f" * 40 in rows[0]["last_error"]
        assert [r["state"] for r in rows[1:]] == ["sent", "sent"]  # nothing to post: no deployment was made
        assert rows[2]["last_error"] == "no deployment: the release was cancelled before it was queued"
        assert db.sync.get_release(rid) is not None


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "Resource not accessible by integration"), (401, "Bad credentials"), (410, "Gone")]
)
async def test_a_repository_github_refuses_is_given_up_at_once_and_holds_no_other_service_back(
    tmp_path: Path, gh: FakeGitHub, caplog: pytest.LogCaptureFixture, status: int, reason: str
) -> None:
    (billing_sha,) = gh.add_history(OTHER, ["feat: b"])
    (notify_sha,) = gh.add_history(REPO, ["feat: a"])
    gh.refuse(OTHER, status)  # e.g. the token lacks the deployments permission on that one repository
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    before = given_up_on(GITHUB)
    caplog.set_level(logging.WARNING, logger="release_bot.events")
    async with github_worker(tmp_path, gh, waits, clock) as (deliveries, db):
        billing = release(db.sync, "2.0.0", billing_sha, clock, service="billing")  # first in the one github lane
        notify = release(db.sync, "1.0.0", notify_sha, clock)
        finish(db.sync, billing, clock)
        finish(db.sync, notify, clock)
        await deliveries.drained()

        # The lane never waited: each refused event was given up on its first attempt and the next one sent.
        assert waits.seen == []
        (deployment,) = gh.deployments[REPO]
        assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress", "success"]
        assert OTHER not in gh.deployments
        rows = db.sync.sql.query(
            "SELECT json_extract(e.data, '$.service') AS service, d.state, d.attempts, d.last_error "
            "FROM deliveries d JOIN events e ON e.id = d.event_id ORDER BY d.event_id"
        )
        refused = f"{OTHER}: GitHub answered HTTP {status}: {reason}"
        assert [(r["service"], r["state"], r["attempts"]) for r in rows] == [
            ("billing", "dead", 1),  # queued: its create refused
            ("notify", "sent", 1),
            ("billing", "dead", 1),  # deploying and succeeded: no deployment yet, so each tries the create again
            ("billing", "dead", 1),
            ("notify", "sent", 1),
            ("notify", "sent", 1),
        ]
        assert {r["last_error"] for r in rows if r["service"] == "billing"} == {refused}

    assert given_up_on(GITHUB) - before == 3
    errors = [r.getMessage() for r in caplog.records if r.name == "release_bot.events"]
    assert len(errors) == 3 and all(line.endswith(f"to github: {refused}") for line in errors), errors
    assert all(r.levelno == logging.ERROR for r in caplog.records if r.name == "release_bot.events")


async def test_a_status_refused_after_the_deployment_was_made_is_given_up_and_the_next_is_posted(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    (sha,) = gh.add_history(REPO, ["feat: a"])
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    async with github_worker(tmp_path, gh, waits, clock) as (deliveries, db):
        rid = release(db.sync, "1.0.0", sha, clock)
        await deliveries.drained()
        gh.refuse(REPO, 403)  # the permission is withdrawn: the in_progress status is refused
        db.sync.transition(rid, ReleaseState.DEPLOYING, actor="release-bot", detail="", now=clock.now())
        await deliveries.drained()
        gh.refusals.clear()  # and granted again
        db.sync.transition(rid, ReleaseState.SUCCEEDED, actor="release-bot", detail="", now=clock.now())
        await deliveries.drained()

        (deployment,) = gh.deployments[REPO]
        assert gh.statuses_of(deployment["id"]) == ["queued", "success"]
        assert [(t, state, attempts) for t, state, attempts, _ in github_rows(db.sync)] == [
            ("release.queued", "sent", 1),
            ("release.deploying", "dead", 1),
            ("release.succeeded", "sent", 1),
        ]
        assert waits.seen == []


def given_up_on(target: str) -> float:
    return REGISTRY.get_sample_value("releasebot_event_deliveries_given_up_total", {"target": target}) or 0.0


async def test_a_5xx_is_retried_by_the_client_then_by_the_queue_and_statuses_keep_their_order(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    shas = gh.add_history(REPO, ["feat: a"])
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    async with github_worker(tmp_path, gh, waits, clock, backoff_base=2.0) as (deliveries, db):
        rid = release(db.sync, "1.0.0", shas[0], clock)
        await deliveries.drained()
        for _ in range(4):  # the in_progress status: 1 + 3 client retries a second apart, all 503
            gh.rate_limit(status=503)
        finish(db.sync, rid, clock)
        await deliveries.drained()

        (deployment,) = gh.deployments[REPO]
        assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress", "success"]
        assert waits.seen == [1.0, 1.0, 1.0, 2.0]  # the client's own retries, then the queue's backoff
        rows = db.sync.sql.query("SELECT state, attempts FROM deliveries ORDER BY event_id")
        assert rows == [
            {"state": "sent", "attempts": 1},
            {"state": "sent", "attempts": 2},
            {"state": "sent", "attempts": 1},
        ]


def github_rows(store: Store) -> list[tuple[str, str, int, int]]:
    """(event type, state, attempts, in doubt) of each GitHub delivery, in event order."""
    found = store.sql.query(
        "SELECT e.type, d.state, d.attempts, d.in_doubt FROM deliveries d JOIN events e ON e.id = d.event_id "
        "WHERE d.target = 'github' ORDER BY d.event_id"
    )
    return [(r["type"].removeprefix(PREFIX), r["state"], r["attempts"], r["in_doubt"]) for r in found]


async def test_a_restart_while_a_create_is_in_doubt_finds_it_and_makes_no_second(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    shas = gh.add_history(REPO, ["feat: a"])
    clock = MutableClock(TUESDAY_10AM)
    gh.hold("POST", "/deployments")  # GitHub creates it; the answer never reaches the bot
    async with github_worker(tmp_path, gh, Waits(), clock) as (deliveries, db):
        rid = release(db.sync, "1.0.0", shas[0], clock)
        await gh.arrived.wait()
    # Stopped mid-request: the create is remembered as attempted and in doubt.
    after_stop = Store(tmp_path / "db.sqlite")
    assert github_rows(after_stop) == [("release.queued", "pending", 1, 1)]
    after_stop.close()
    gh.release()
    assert len(gh.deployments[REPO]) == 1  # it was made

    async with github_worker(tmp_path, gh, Waits(), clock) as (deliveries, db):  # the restarted bot
        finish(db.sync, rid, clock)
        await deliveries.drained()
        assert github_rows(db.sync) == [
            ("release.queued", "sent", 2, 0),
            ("release.deploying", "sent", 1, 0),
            ("release.succeeded", "sent", 1, 0),
        ]
        saved = db.sync.sql.one("SELECT deployment_id FROM github_deployments WHERE release_id = ?", (rid,))

    (deployment,) = gh.deployments[REPO]  # one deployment: found on the restart, not created again
    assert len(creates(gh)) == 1 and saved == {"deployment_id": deployment["id"]}
    assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress", "success"]
    calls = [(r.method, r.path.rsplit("/", 1)[-1]) for r in gh.requests]
    assert calls[:3] == [("POST", "deployments"), ("GET", "deployments"), ("GET", "statuses")]


async def test_a_restart_while_a_status_is_in_doubt_posts_it_once_and_loses_nothing(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    shas = gh.add_history(REPO, ["feat: a"])
    clock = MutableClock(TUESDAY_10AM)
    async with github_worker(tmp_path, gh, Waits(), clock) as (deliveries, db):
        rid = release(db.sync, "1.0.0", shas[0], clock)
        await deliveries.drained()  # created, with its queued status
        gh.hold("POST", "/statuses")  # the in_progress status lands; its answer never reaches the bot
        db.sync.transition(rid, ReleaseState.DEPLOYING, actor="release-bot", detail="", now=clock.now())
        await gh.arrived.wait()
        db.sync.transition(rid, ReleaseState.SUCCEEDED, actor="release-bot", detail="", now=clock.now())
    after_stop = Store(tmp_path / "db.sqlite")
    assert github_rows(after_stop) == [
        ("release.queued", "sent", 1, 0),
        ("release.deploying", "pending", 1, 1),
        ("release.succeeded", "pending", 0, 0),  # recorded while the worker was stuck: not lost
    ]
    after_stop.close()
    gh.release()
    (deployment,) = gh.deployments[REPO]
    assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress"]  # it landed

    async with github_worker(tmp_path, gh, Waits(), clock) as (deliveries, db):  # the restarted bot
        await deliveries.drained()
        assert github_rows(db.sync) == [
            ("release.queued", "sent", 1, 0),
            ("release.deploying", "sent", 2, 0),
            ("release.succeeded", "sent", 1, 0),
        ]

    # The in-doubt status was looked up (the newest is it) and not posted again; the next one followed.
    assert gh.statuses_of(deployment["id"]) == ["queued", "in_progress", "success"]
    assert len(creates(gh)) == 1
    statuses = [(r.method, r.query.get("per_page")) for r in gh.requests if r.path.endswith("/statuses")]
    assert statuses == [("POST", None), ("POST", None), ("GET", "1"), ("POST", None)]

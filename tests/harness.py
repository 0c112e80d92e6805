"""The scenario-test harness: the real HTTP app (Bolt, engine, SQLite) against a fake Slack Web API.

Requests are signed exactly as Slack signs them and POSTed to the running aiohttp server; assertions
read what Slack would have received (the fake records every call) and what the store holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import http_app
from bot.config import Config, parse_config
from bot.core.models import Release, ReleaseKind, ReleaseState
from bot.server import RUNTIME
from bot.settings import Settings
from bot.store import Store
from tests.fakes import FakeSlackWebAPI
from tests.fakes.slack_signing import block_actions_body, signed_headers, slash_command_body

STUB = Path(__file__).parent / "data" / "deploy_stub.sh"
SECRET = "test-signing-secret"
API_TOKEN = "test-api-token"
DIGEST = "sha256:" + "c0ffee00" * 8
RELEASER, ONCALL1, ONCALL2, OUTSIDER = "U01RELEASE", "U01ONCALL1", "U01ONCALL2", "U09OUTSIDE"
CHANNEL = "C01RELEASES"
# Tuesday 24 November 2026, 10:00 in Toronto: a business day, inside hours, no holiday or freeze.
TUESDAY_10AM = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class MutableClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


def config_dict(log: Path, **prod: Any) -> dict[str, Any]:
    """A realistic config whose deploys run the controllable stub script."""
    run = [str(STUB), str(log), "{service}", "{version}", "{environment}", "{weight}"]
    environments: dict[str, Any] = {
        "staging": {"window": "always", "deploy": {"provider": "command", "run": run, "timeout": "20s"}},
        "prod": {
            "window": "business_hours",
            "allowed": ["releasers"],
            "rollback": {"approvals": {"required": 1, "from": ["oncall"]}},
            "checklist": ["unit", "vulnerability_scan", "rollback_plan"],
            "vulnerability_scan": {"block_on": ["CRITICAL"]},
            "images": {"require_digest": True},
            "deploy": {"provider": "command", "run": run, "timeout": "20s"},
        },
    }
    environments["prod"].update(prod)
    return {
        **business_calendar(),
        "groups": {"releasers": [RELEASER, "S01PLATFORM"], "oncall": [ONCALL1, ONCALL2]},
        "services": {"notify": {"channel": CHANNEL, "components": ["api", "worker"], "pipeline": ["staging", "prod"]}},
        "environments": environments,
        "summaries": {"channel": CHANNEL, "daily": "17:00", "weekly": "fri 15:00"},
    }


@dataclass
class BotHarness:
    slack: FakeSlackWebAPI
    client: TestClient[Any, Any]
    clock: MutableClock
    log: Path
    db_path: Path
    config: Config
    requests: list[tuple[str, int]] = field(default_factory=list)

    @property
    def runtime(self) -> Any:
        return self.client.server.app[RUNTIME]

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    @property
    def store(self) -> Store:
        return self.runtime.store.sync

    async def command(
        self,
        text: str,
        *,
        user: str = RELEASER,
        channel: str = CHANNEL,
        timestamp: int | None = None,
        secret: str = SECRET,
    ) -> ClientResponse:
        """POST a signed `/release` slash command, as Slack does, and wait for the bot's answer.

        Bolt answers after the ack through the command's response_url; waiting for that post (not
        sleeping) means the listener has finished when this returns.
        """
        url = self.slack.new_response_url(channel=channel, user_id=user)
        body = slash_command_body("/release", text, user_id=user, channel_id=channel, response_url=url)
        before = len(self.slack.calls_to("response_url"))
        response = await self.client.post(
            "/slack/events", data=body, headers=signed_headers(secret, body, timestamp=timestamp)
        )
        await self._answered(response, before)
        return response

    async def _answered(self, response: ClientResponse, before: int) -> None:
        """Wait for the listener's answer through response_url, unless the ack itself carried it."""
        if response.status != 200 or (await response.read()).strip():
            return
        await self.slack.wait_for("response_url", count=before + 1)

    async def click(self, action_id: str, value: str, *, user: str, channel: str = CHANNEL) -> ClientResponse:
        """POST a signed block_actions payload for a button, as Slack does."""
        body = block_actions_body(
            user_id=user,
            action_id=action_id,
            value=value,
            channel_id=channel,
            response_url=self.slack.new_response_url(channel=channel, user_id=user),
        )
        before = len(self.slack.calls_to("response_url"))
        response = await self.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
        if action_id != "approval_deny":  # Deny opens a modal instead of answering
            await self._answered(response, before)
        return response

    async def settle(self) -> None:
        """Await every piece of work the acks started (never sleep)."""
        await self.engine.drain()

    def replies_to(self, user: str) -> list[str]:
        """Texts of the ephemeral answers a user received (slash-command and button responses)."""
        return [e.text + "\n" + blocks_text(e.blocks) for e in self.slack.ephemerals if e.user == user]

    def last_reply(self, user: str = RELEASER) -> str:
        replies = self.replies_to(user)
        assert replies, f"no reply to {user}"
        return replies[-1]

    def deploys(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def add_candidate(
        self, version: str, *, unit: str = "passed", critical: int = 0, pinned: bool = True, commit: str | None = None
    ) -> None:
        suffix = f"@{DIGEST}" if pinned else ""
        components = {
            "api": f"ghcr.io/example/api:{version}{suffix}",
            "worker": f"ghcr.io/example/worker:{version}{suffix}",
        }
        self.store.put_candidate(
            service="notify",
            version=version,
            commit=commit or (version.replace(".", "") + "a" * 40)[:40],
            committed_at=self.clock.now() - timedelta(hours=6),
            components=components,
            tests={"unit": unit},
            now=self.clock.now(),
        )
        top = [
            {
                "id": f"CVE-2026-000{i}",
                "pkg": "openssl",
                "installed": "3.0.1",
                "fixed": "3.0.2",
                "severity": "CRITICAL",
                "title": None,
                "url": None,
            }
            for i in range(critical)
        ]
        for component, ref in components.items():  # CI scans each image the candidate ships
            self.store.put_scan(
                "notify",
                version,
                component,
                {
                    "artifact": ref,
                    "artifact_type": "container_image",
                    "counts": {"CRITICAL": critical, "HIGH": 0, "MEDIUM": 1, "LOW": 0, "UNKNOWN": 0},
                    "total": critical + 1,
                    "top": top,
                },
                self.clock.now(),
            )

    def live(self, env: str, version: str) -> None:
        """Record that ``version`` already runs in ``env`` (history a real team would have)."""
        record_live(self.store, env, version, self.clock.now() - timedelta(days=1))

    def count(self, table: str) -> int:
        row = self.store.sql.one(f"SELECT count(*) AS n FROM {table}")  # noqa: S608 - test helper, fixed names
        return int(row["n"]) if row else 0


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    clock: MutableClock | None = None,
    config: dict[str, Any] | None = None,
    db_path: Path | None = None,
) -> AsyncIterator[BotHarness]:
    """Start the real HTTP app on a free port against a fresh fake Slack."""
    log = tmp_path / "deploys.log"
    clock = clock or MutableClock(TUESDAY_10AM)
    parsed = parse_config(config or config_dict(log))
    db = db_path or tmp_path / "releasebot.db"
    async with FakeSlackWebAPI() as slack:
        slack.set_usergroup("S01PLATFORM", ["U01PLATFORM"])
        app = http_app(harness_settings(slack, db), parsed, tmp_path, clock=clock)
        async with TestClient(TestServer(app)) as client:
            harness = BotHarness(slack=slack, client=client, clock=clock, log=log, db_path=db, config=parsed)
            yield harness
            await harness.settle()


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


# --- helpers several test modules share -----------------------------------------------------------------


def record_live(store: Store, env: str, version: str, when: datetime, *, service: str = "notify") -> int:
    """Record that ``version`` of ``service`` runs in ``env`` since ``when`` (history a real team would have);
    returns the release id."""
    release = store.create_release(
        service=service,
        env=env,
        version=version,
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by=RELEASER,
        now=when,
        take_lock=True,
    )
    store.transition(release.id, ReleaseState.SUCCEEDED, actor=RELEASER, detail="history", now=when)
    return release.id


def harness_settings(slack: FakeSlackWebAPI, db: Path) -> Settings:
    """Settings for the HTTP app against ``slack`` with the test tokens and signing secret."""
    settings = Settings(slack_api_url=slack.base_url, db_path=db)
    return settings.model_copy(
        update={
            "slack_bot_token": _secret("xoxb-test"),
            "slack_signing_secret": _secret(SECRET),
            "api_token": _secret(API_TOKEN),
        }
    )


@asynccontextmanager
async def app_on(tmp_path: Path, slack: FakeSlackWebAPI, clock: MutableClock) -> AsyncIterator[BotHarness]:
    """One run of the real HTTP app with the default config; the runs of a test share the database file
    under ``tmp_path`` and ``slack``, as restarts of one deployment do."""
    log = tmp_path / "deploys.log"
    config = parse_config(config_dict(log))
    db = tmp_path / "releasebot.db"
    client = TestClient(TestServer(http_app(harness_settings(slack, db), config, tmp_path, clock=clock)))
    await client.start_server()
    try:
        yield BotHarness(slack=slack, client=client, clock=clock, log=log, db_path=db, config=config)
    finally:
        await client.close()


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """action_id -> value of every button in ``blocks``."""
    return {
        element["action_id"]: element["value"]
        for block in blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("type") == "button"
    }


async def ship_to_prod(bot: BotHarness, version: str, *, first: bool = True) -> Release:
    """Release ``version`` through staging to prod (``first``: 1.2.2 already runs there) and return the
    prod release, however it ended."""
    if first:
        bot.live("prod", "1.2.2")
    bot.add_candidate(version)
    await bot.command(f"staging {version}")
    await bot.settle()
    await bot.command("prod")
    await bot.settle()
    return bot.store.history("notify", "prod", 1)[0]


def business_calendar() -> dict[str, Any]:
    """The config's calendar part the tests and benchmarks share: Toronto, Ontario's holidays, business
    hours Monday to Friday 9:00–16:00 (12:00 before a non-working day) and the year-end prod freeze."""
    return {
        "timezone": "America/Toronto",
        "calendar": {"country": "CA", "subdivision": "ON"},
        "business_hours": {
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00",
            "end": "16:00",
            "last_release_before_non_working_day": "12:00",
        },
        "freezes": [
            {"start": "2026-12-18", "end": "2027-01-04", "reason": "End-of-year freeze", "environments": ["prod"]}
        ],
    }

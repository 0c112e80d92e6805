"""Outside text is escaped at the view boundary, whichever system it came from.

Each test sends ``<!channel>`` and a disguised link ``<https://x|y>`` through one source the bot quotes —
a deploy service's error and log, a deploy command's output, an HTTP check's body, a Prometheus error, a
commit subject, a Trivy finding, a lock reason — then reads every call the fake Slack received (and the
acks the bot answered with) and finds neither raw, while the text did arrive, escaped.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.core.models import Release
from bot.demo import make_repo
from tests.fakes.deploy_service import FakeDeployService
from tests.fakes.server import LocalServer
from tests.harness import API_TOKEN, DIGEST, OUTSIDER, RELEASER, BotHarness, MutableClock, config_dict, running_bot

HOSTILE = "<!channel> see <https://x|y>"
RAW = ("<!channel>", "<https://x|y>", "<https://x")
ESCAPED = "&lt;!channel&gt;"


class Received:
    """Everything Slack was sent: every recorded Web API and response_url call, and the acks' bodies."""

    def __init__(self, bot: BotHarness) -> None:
        self.bot = bot
        self.acks: list[str] = []

    async def command(self, text: str, *, user: str = RELEASER) -> None:
        response = await self.bot.command(text, user=user)
        assert response.status == 200
        self.acks.append(await response.text())
        await self.bot.settle()

    def everything(self) -> list[str]:
        # ensure_ascii=False and no HTML escaping: a raw `<` in any field stays a raw `<` here.
        calls = [json.dumps(call.args, ensure_ascii=False) for call in self.bot.slack.calls]
        return calls + self.acks

    def assert_escaped(self, *, shown: str = ESCAPED) -> None:
        everything = self.everything()
        raw = [(token, text[:300]) for text in everything for token in RAW if token in text]
        assert not raw, f"outside text reached Slack raw: {raw[:3]}"
        assert any(shown in text for text in everything), f"the text never reached Slack ({shown!r} not shown)"


def staging_with(log: Path, **staging: Any) -> dict[str, Any]:
    config = config_dict(log)
    config["environments"]["staging"].update(staging)
    config["freezes"] = []
    return config


async def release_to_staging(bot: BotHarness, received: Received, version: str = "1.2.3") -> Release:
    bot.add_candidate(version)
    await received.command(f"staging {version}")
    [release] = bot.store.history("notify", "staging", 1)
    return release


# --- deploy providers ----------------------------------------------------------------------------------------


async def test_an_http_deploy_providers_error_and_log_reach_slack_escaped(tmp_path: Path) -> None:
    async with FakeDeployService() as service:
        service.accept_body = {"id": "1", "status": "failed", "error": HOSTILE, "log": f"step 1\n{HOSTILE}"}
        config = staging_with(tmp_path / "deploys.log", deploy={"provider": "http", "url": service.url})
        async with running_bot(tmp_path, config=config) as bot:
            received = Received(bot)
            release = await release_to_staging(bot, received)
            assert release.state.value == "failed" and release.error is not None and HOSTILE in release.error
            assert len(service.posts()) == 1, "the deploy was asked for once"
            received.assert_escaped()


async def test_a_deploy_commands_output_and_exit_reach_slack_escaped(tmp_path: Path) -> None:
    script = tmp_path / "deploy.sh"
    script.write_text(f"#!/bin/sh\necho 'building'\necho '{HOSTILE}'\necho '{HOSTILE}' >&2\nexit 3\n")
    script.chmod(0o755)
    config = staging_with(tmp_path / "deploys.log", deploy={"provider": "command", "run": [str(script)]})
    async with running_bot(tmp_path, config=config) as bot:
        received = Received(bot)
        release = await release_to_staging(bot, received)
        assert release.state.value == "failed"
        received.assert_escaped()


# --- post-release checks -------------------------------------------------------------------------------------


class HostileEndpoint(LocalServer):
    """A health endpoint answering ``HOSTILE`` as its body, and a Prometheus answering it as its error."""

    def __init__(self) -> None:
        self.hits = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _health(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(text=HOSTILE, content_type="text/html")

    async def _query(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response({"status": "error", "errorType": "bad_data", "error": HOSTILE}, status=400)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/api/v1/query", self._query)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def endpoint() -> AsyncIterator[HostileEndpoint]:
    async with HostileEndpoint() as running:
        yield running


def wall_clock() -> MutableClock:
    """The wall clock: APScheduler (real time) then fires no job before the test moves the clock itself."""
    return MutableClock(datetime.now(UTC).replace(microsecond=0))


async def measure_at(bot: BotHarness, release: Release, offset: timedelta) -> None:
    assert release.finished_at is not None
    bot.clock.set(release.finished_at + offset)
    await bot.engine.checks.run_due_measurements()
    await bot.settle()


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(
            {"name": "health", "http": "{url}/health", "json_field": "latency_ms", "pass_if": "< 1"}, id="http"
        ),
        pytest.param({"name": "errors", "prometheus": "up", "pass_if": "< 1"}, id="prometheus"),
    ],
)
async def test_a_checks_answer_reaches_slack_escaped(
    tmp_path: Path, endpoint: HostileEndpoint, check: dict[str, Any]
) -> None:
    check = {**check, "after": ["5m"]}
    if "http" in check:
        check["http"] = check["http"].replace("{url}", endpoint.url)
    config = staging_with(tmp_path / "deploys.log", checks=[check])
    config["metrics"] = {"prometheus_url": endpoint.url, "timeout": "5s", "retries": 1, "retry_delay": "0s"}
    async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
        received = Received(bot)
        release = await release_to_staging(bot, received)
        assert release.state.value == "succeeded", bot.last_reply()
        await measure_at(bot, release, timedelta(minutes=5, seconds=1))
        assert endpoint.hits >= 1, "the check asked the endpoint"
        received.assert_escaped()


# --- commit subjects, Trivy findings, people's words ---------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
async def test_a_commit_subject_reaches_slack_escaped(tmp_path: Path) -> None:
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    commits = [("chore: start", "Alice", "alice@example.com"), (f"feat: {HOSTILE}", "Mallory", "m@example.com")]
    shas = make_repo(tmp_path / "repo", start, commits)
    config = config_dict(tmp_path / "deploys.log")
    config["services"]["notify"]["repo"] = {"path": str(tmp_path / "repo")}
    async with running_bot(tmp_path, config=config) as bot:
        received = Received(bot)
        bot.add_candidate("1.2.2", commit=shas[0])
        bot.add_candidate("1.2.3", commit=shas[-1])
        bot.live("staging", "1.2.2")
        await received.command("staging 1.2.3")
        await received.command("notes 1.2.3")
        assert bot.deploys() == ["notify 1.2.3 staging 100"]
        received.assert_escaped()


async def test_a_trivy_finding_reaches_slack_escaped(bot: BotHarness) -> None:
    received = Received(bot)
    bot.add_candidate("1.2.2")
    bot.add_candidate("1.2.3")
    bot.live("prod", "1.2.2")
    bot.live("staging", "1.2.3")
    report = {
        "SchemaVersion": 2,
        "ArtifactName": "ghcr.io/example/api:1.2.3",
        "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [f"ghcr.io/example/api@{DIGEST}"]},  # the candidate's own image
        "Results": [
            {
                "Target": f"app/{HOSTILE}.env",
                "Class": "secret",
                "Secrets": [{"RuleID": "aws", "Category": "AWS", "Severity": "CRITICAL", "Title": HOSTILE}],
            },
            {
                "Target": "debian 12",
                "Vulnerabilities": [
                    {"VulnerabilityID": f"CVE-2026-0001 {HOSTILE}", "PkgName": "openssl", "Severity": "CRITICAL"}
                ],
            },
        ],
    }
    response = await bot.client.post(
        "/api/v1/candidates/notify/1.2.3/scan",
        data=json.dumps(report),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()
    await received.command("prod")
    assert "checklist is not satisfied" in bot.last_reply()
    assert bot.deploys() == []
    received.assert_escaped()


async def test_a_lock_reason_reaches_slack_escaped(bot: BotHarness) -> None:
    received = Received(bot)
    bot.add_candidate("1.2.3")
    await received.command(f"lock staging {HOSTILE}")
    await received.command("status")
    await received.command("staging 1.2.3", user=OUTSIDER)  # refused, quoting the holder's reason
    assert bot.count("manual_locks") == 1 and bot.deploys() == []
    received.assert_escaped()

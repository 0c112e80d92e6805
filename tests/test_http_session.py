"""One outgoing HTTP session: the runtime opens it at start, every client sends through it, close ends it.

The proof is on the wire: one fake server on port 0 answers Prometheus, an HTTP check, the http deploy
provider, GitHub and a response_url, and records the client port of each request. Sequential requests
through one aiohttp session reuse its kept-alive connection, so they all come from one port; a client
with a session of its own would open a second connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.bootstrap import build_runtime
from bot.config import Check, parse_config
from bot.http_session import HttpSession
from bot.metrics.prometheus import PrometheusClient
from bot.providers.base import DeployContext
from bot.providers.github_actions import GithubActionsDeployProvider
from bot.settings import Settings
from bot.slack.console import ConsoleDirectory, ConsoleNotifier
from bot.slack.respond import ResponseSender
from bot.sources.github import GitHubSource
from bot.store import AsyncStore, Store
from bot.views.render import Message
from tests.fakes.github_api import commit_item
from tests.fakes.runs import remote
from tests.harness import CHANNEL, RELEASER, business_calendar

SHA = "a" * 40
AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


class EverythingServer:
    """Answers each client the bot has, and records (path, client port) per request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> EverythingServer:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/api/v1/query", self._prometheus)
        app.router.add_get("/health", self._health)
        app.router.add_post("/deploy", self._deploy)
        app.router.add_get("/repos/acme/notify/commits/{sha}", self._commit)
        app.router.add_post("/response", self._response)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        assert request.transport is not None
        self.seen.append((request.path, request.transport.get_extra_info("peername")[1]))
        response: web.StreamResponse = await handler(request)
        return response

    async def _prometheus(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "success", "data": {"resultType": "scalar", "result": [0, "1"]}})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _deploy(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "succeeded", "log": "done"})

    async def _commit(self, request: web.Request) -> web.Response:
        return web.json_response(commit_item("acme/notify", SHA, "fix: one", date=AT, parents=[]))

    async def _response(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


@pytest.fixture
async def server() -> AsyncIterator[EverythingServer]:
    async with EverythingServer() as fake:
        yield fake


def config(url: str) -> dict[str, Any]:
    return {
        **business_calendar(),
        "groups": {"releasers": [RELEASER]},
        "services": {
            "notify": {"channel": CHANNEL, "repo": {"github": "acme/notify"}, "pipeline": ["staging", "prod"]}
        },
        "environments": {
            "staging": {"window": "always", "deploy": {"provider": "http", "url": f"{url}/deploy"}},
            "prod": {
                "window": "always",
                "deploy": {"provider": "github_actions", "repo": "acme/notify", "workflow": "deploy.yml"},
            },
        },
        "metrics": {"prometheus_url": url, "retries": 0},
    }


async def test_the_runtime_clients_share_one_session_closed_at_shutdown(
    server: EverythingServer, tmp_path: Path
) -> None:
    parsed = parse_config(config(server.url))
    runtime = build_runtime(
        Settings(github_token="ghp_test", github_api_url=server.url),  # type: ignore[arg-type]
        parsed,
        store=AsyncStore(Store(tmp_path / "bot.db")),
        notifier=ConsoleNotifier(),
        directory=ConsoleDirectory(parsed, {}),
        config_dir=tmp_path,
        schedule=False,
    )
    assert runtime.http.closed  # built, not started: nothing is open yet
    await runtime.start()
    try:
        source = runtime.engine.deps.sources("notify")
        actions = runtime.engine.deps.providers("prod")
        assert isinstance(source, GitHubSource) and isinstance(actions, GithubActionsDeployProvider)
        # One GitHub client, over the runtime's session, for the commit source and the github_actions provider.
        assert source.client is actions.client and source.client.session is runtime.http

        health = Check.model_validate({"name": "health", "http": f"{server.url}/health"})
        await runtime.checks.prometheus.instant_query("up", AT)
        assert await runtime.checks.http.measure(health, AT, service="notify", environment="staging", version="1")
        deployed = await runtime.engine.deps.providers("staging").deploy(
            DeployContext("notify", "1.2.3", "staging", 1), remote()
        )
        assert deployed.ok, deployed
        assert await source.commit_time(SHA) == AT
        await ResponseSender(runtime.http).send(f"{server.url}/response", Message("hi", []), public=False)
    finally:
        await runtime.close()

    paths = [path for path, _ in server.seen]
    assert paths == ["/api/v1/query", "/health", "/deploy", f"/repos/acme/notify/commits/{SHA}", "/response"]
    assert len({port for _, port in server.seen}) == 1, server.seen  # one connection: one session
    assert runtime.http.closed


async def test_a_client_leaves_a_shared_session_open(server: EverythingServer) -> None:
    async with HttpSession() as http:
        async with PrometheusClient(server.url, timeout=2, session=http) as prometheus:
            assert await prometheus.instant_query("up", AT) == [({}, 1.0)]
        assert not http.closed  # the client's close() is not the owner's
    assert http.closed


def test_a_session_used_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        HttpSession().get()

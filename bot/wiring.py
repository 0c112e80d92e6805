"""Start-up for each mode: HTTP (Events API), Socket Mode, and the console."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.config import Config
from bot.observability import HTTP_LATENCY
from bot.ports import Clock, SystemClock
from bot.runtime import Runtime, build_runtime
from bot.server import build_web_app
from bot.settings import Settings
from bot.slack.app import build_app, delivery_keys, first_delivery
from bot.slack.console import Console, ConsoleDirectory, ConsoleNotifier
from bot.slack.notifier import SlackDirectory, SlackNotifier, web_client
from bot.slack.outbox import OutboxNotifier, OutboxPolicy, outbox_web_client
from bot.store import AsyncStore

# Delivery timing of the Slack outbox (read at start-up, so tests can substitute a faster policy).
OUTBOX_POLICY = OutboxPolicy()


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else ""


def slack_runtime(
    settings: Settings, config: Config, config_dir: Path, *, clock: Clock | None = None
) -> tuple[Runtime, object]:
    """The runtime and its Web API client for the Slack modes; the bot's own writes go through the outbox."""
    token = _secret(settings.slack_bot_token)
    client = web_client(token, settings.slack_api_url)
    clock = clock or SystemClock()
    policy = OUTBOX_POLICY
    outbox = OutboxNotifier(
        SlackNotifier(outbox_web_client(token, settings.slack_api_url, policy.timeout)), clock=clock, policy=policy
    )
    runtime = build_runtime(
        settings,
        config,
        notifier=outbox,
        directory=SlackDirectory(client),
        config_dir=config_dir,
        clock=clock,
    )
    outbox.attach(runtime.store)
    runtime.outbox = outbox
    return runtime, client


def http_app(settings: Settings, config: Config, config_dir: Path, *, clock: Clock | None = None) -> web.Application:
    """HTTP mode: Bolt behind POST /slack/events, with Slack request signing verified."""
    runtime, client = slack_runtime(settings, config, config_dir, clock=clock)
    signing_secret = _secret(settings.slack_signing_secret)
    bolt = build_app(runtime.engine, client=client, session=runtime.http)  # type: ignore[arg-type]
    api_token = _secret(settings.api_token) or None
    return build_web_app(runtime, bolt, api_token=api_token, signing_secret=signing_secret)


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Socket Mode with its acks timed like HTTP ones: dispatch through Bolt until the ack is on the socket.

    An envelope Slack delivers again (same ``envelope_id``, or the same trigger_id / event_id in a new
    envelope) is acked and not dispatched: it has had its effect already.
    """

    def __init__(self, app: AsyncApp, app_token: str, *, store: AsyncStore) -> None:
        super().__init__(app, app_token)
        self.store = store

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        try:
            payload = req.payload if isinstance(req.payload, dict) else {}
            keys = [f"envelope_id:{req.envelope_id}", *delivery_keys(payload)]
            retry = f", retry {req.retry_attempt}" if req.retry_attempt else ""
            if await first_delivery(self.store, keys, f"Socket Mode{retry}"):
                await super().handle(client, req)
            else:
                # Bolt's own empty ack for this envelope id, as an ack() with nothing to say sends.
                await send_async_response(client, req, BoltResponse(status=200, body=""), time.time())
        finally:
            HTTP_LATENCY.labels(route="socket_mode").observe(time.perf_counter() - started)


def socket_app(settings: Settings, config: Config, config_dir: Path, *, clock: Clock | None = None) -> web.Application:
    """Socket Mode: Slack connects over a WebSocket we open; health, metrics and the API stay on HTTP."""
    runtime, client = slack_runtime(settings, config, config_dir, clock=clock)
    bolt = build_app(runtime.engine, client=client, session=runtime.http)  # type: ignore[arg-type]
    handler = TimedSocketModeHandler(bolt, _secret(settings.slack_app_token), store=runtime.store)

    async def socket_mode(app: web.Application) -> AsyncIterator[None]:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        yield
        await handler.close_async()  # type: ignore[no-untyped-call]

    return build_web_app(runtime, None, api_token=_secret(settings.api_token) or None, extra_startup=socket_mode)


class ShiftedClock:
    """Real time, shifted so the session starts at a chosen instant (console --now, for demos and tests)."""

    def __init__(self, start: datetime) -> None:
        self._offset: timedelta = start - SystemClock().now()

    def now(self) -> datetime:
        return SystemClock().now() + self._offset


async def run_console(
    settings: Settings,
    config: Config,
    config_dir: Path,
    *,
    user: str,
    db_path: Path,
    demo_dir: Path | None,
    start: datetime | None,
) -> None:
    """The console adapter over the shared handlers, optionally seeded with demo data."""
    from bot import demo  # noqa: PLC0415 - only the demo needs git at start-up

    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # its job chatter would drown the console
    clock: Clock = ShiftedClock(start) if start is not None else SystemClock()
    shas: list[str] = []
    if demo_dir is not None:
        shas = demo.make_repo(demo_dir / "repo", clock.now() - timedelta(days=2))
        config = demo.demo_config(config, demo_dir / "repo")
    notifier = ConsoleNotifier(out=sys.stdout)
    groups = {
        member: frozenset({"U01RELEASE"})
        for members in config.groups.values()
        for member in members
        if member.startswith("S")
    }
    runtime = build_runtime(
        settings,
        config,
        notifier=notifier,
        directory=ConsoleDirectory(config, groups),
        config_dir=config_dir,
        clock=clock,
        schedule=True,
        db_path=db_path,
    )
    if demo_dir is not None:
        demo.seed(runtime.store.sync, config, shas, clock.now())
    await runtime.start()
    channel = next(iter(config.services.values())).channel
    try:
        await Console(runtime.engine, notifier, user=user, channel=channel).run()
    finally:
        await runtime.close()

"""Bootstrap: build the bot store-first, then start and stop it in order, in each mode (HTTP, Socket Mode, console).

Each part is built from the ones before it: the store, the one outgoing HTTP session, the GitHub client,
the deploy providers, commit sources and check runner, the scheduler, and last the engine. In the Slack
modes the notifier is the outbox, whose rows live in the store, so it comes right after the store.
Nothing touches the network until ``Runtime.start()``; ``Runtime.close()`` stops everything in reverse.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import aiohttp
from aiohttp import web
from apscheduler.triggers.cron import CronTrigger
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.api import alerts_token, mount_alerts
from bot.config import Config
from bot.console_time import ConsoleClock, ConsoleScheduler
from bot.engine import Deps, Engine
from bot.events.deliver import Deliveries, DeliveryPolicy
from bot.events.setup import build_deliveries
from bot.github_api import GitHubClient
from bot.http_auth import Credentials
from bot.http_session import HttpSession
from bot.metrics.run import CheckRunner
from bot.ports import Clock, CommitSource, DeployProvider, Directory, Notifier, Scheduler, Service, Sleep, SystemClock
from bot.providers.factory import build_provider
from bot.scheduler import BotScheduler, summary_triggers
from bot.server import build_web_app
from bot.settings import Settings
from bot.slack.app import build_app
from bot.slack.console import Console, ConsoleDirectory, ConsoleNotifier
from bot.slack.notifier import SlackDirectory, SlackNotifier, web_client
from bot.slack.outbox import OutboxNotifier, OutboxPolicy, outbox_web_client
from bot.slack.socket_mode import TimedSocketModeHandler
from bot.sources.git import LocalGitSource
from bot.sources.github import GitHubSource
from bot.store import AsyncStore, Store

# Delivery timing of the Slack outbox (read at start-up, so tests can substitute a faster policy).
OUTBOX_POLICY = OutboxPolicy()
# Delivery timing of outbound events, webhooks and GitHub Deployments (likewise substituted by tests).
EVENTS_POLICY = DeliveryPolicy()
EVENTS_PRUNE_JOB = "events:prune"  # the scheduler's key of the hourly prune of old events (docs/events.md)
SummaryJob = Callable[[], Awaitable[None]]
# A summary whose slot passed while the bot was down is still posted on start within this grace, the
# same lateness APScheduler allows a running job (misfire_grace_time); later, the next slot is awaited.
SUMMARY_CATCH_UP = timedelta(hours=1)
log = logging.getLogger("release_bot")


class StartupError(Exception):
    """The bot cannot start; the message says why in one line (release-bot prints it and exits)."""


class JobScheduler(Scheduler, Protocol):
    """The Scheduler port as the runtime starts and stops it: APScheduler in the Slack modes, the console's
    clock in the console (bot.console_time)."""

    def start(self) -> None: ...

    def shutdown(self) -> None: ...

    def cron(self, key: str, trigger: CronTrigger, job: SummaryJob) -> None: ...


@dataclass
class Runtime:
    """A built bot: the engine and everything it owns, started and stopped in order."""

    store: AsyncStore
    # The one outgoing HTTP session (Prometheus, HTTP checks, providers, GitHub, response_url answers):
    # opened first in start(), closed last in close(). See bot.http_session for why it is a holder.
    http: HttpSession
    checks: CheckRunner
    scheduler: JobScheduler | None
    engine: Engine
    outbox: Service | None = None  # delivers Slack writes; started before anything can post
    # Delivers outbound events (docs/events.md); built even with no target, to give up rows of removed ones and
    # prune old events.
    events: Deliveries | None = None
    summary_jobs: dict[str, SummaryJob] = field(default_factory=dict)  # period -> the job its cron runs
    # Run first by start(): the Slack modes check their token here, so a bad one stops the start before
    # anything runs (raises StartupError).
    preflight: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        if self.preflight is not None:
            try:
                await self.preflight()
            except BaseException:
                self.store.close()  # nothing else is running yet; the store's thread must not outlive us
                raise
        await self.http.open()  # before anything can send: start-up recovery may deploy
        if self.outbox is not None:
            await self.outbox.start()
        if self.events is not None:
            await self.events.start()  # resumes deliveries an outage or a restart left pending
        if self.scheduler is not None:
            self.scheduler.start()
            for period, trigger in summary_triggers(self.engine.config).items():
                job = _summary_job(self.engine, period)
                self.summary_jobs[period] = job
                self.scheduler.cron(f"summary:{period}", trigger, job)
                missed = last_fire_time(trigger, self.engine.now(), SUMMARY_CATCH_UP)
                if missed is not None:
                    # Posted once: a slot already posted before the restart is skipped by its jobs_done key.
                    self.engine.spawn(_post_summary(self.engine, period, missed), f"summary:{period}:catch-up")
            if self.events is not None:
                # Hourly (and at start): forget finished deliveries and events past events.retention.
                self.scheduler.cron(EVENTS_PRUNE_JOB, CronTrigger(minute=23, timezone=UTC), self.events.prune)
        await self.engine.start()

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
        await self.engine.close()
        if self.outbox is not None:
            await self.outbox.stop()  # after the engine: its last writes are queued, pending ones kept
        if self.events is not None:
            await self.events.stop()  # likewise: undelivered events stay pending in the store
        await self.checks.close()
        await self.http.close()  # after the engine and the outbox: nothing sends any more
        self.store.close()


def last_fire_time(trigger: CronTrigger, now: datetime, within: timedelta) -> datetime | None:
    """The trigger's latest fire time in (now - within, now], or None."""
    fire = trigger.get_next_fire_time(None, now - within)
    return fire if fire is not None and fire <= now else None


async def _post_summary(engine: Engine, period: str, at: datetime | None) -> None:
    await engine.summaries.post_summary("week" if period == "week" else "day", at)


def _summary_job(engine: Engine, period: str) -> SummaryJob:
    async def job() -> None:
        await _post_summary(engine, period, None)

    return job


def build_runtime(
    settings: Settings,
    config: Config,
    *,
    store: AsyncStore,
    notifier: Notifier,
    directory: Directory,
    config_dir: Path,
    clock: Clock | None = None,
    schedule: bool = True,
    scheduler: JobScheduler | None = None,
    sleep: Sleep | None = None,
    outbox: Service | None = None,
) -> Runtime:
    """Everything after the store (and the edges the mode built over it); nothing touches the network yet.

    With ``schedule`` timed work runs on ``scheduler``, by default APScheduler on the wall clock; rollout pauses
    wait in ``sleep``, by default ``asyncio.sleep`` (the console gives both on its own clock).

    Raises CredentialsError when an ``auth`` block names a variable that is not set (or an unreadable
    ``ca_file``): the bot does not start rather than send requests without the credentials configured; so
    does a webhook whose ``secret_env`` is unset (nothing is sent unsigned).
    """
    credentials = Credentials(config_dir)
    credentials.check(config)  # every auth block, once: the clients below get the resolved ones
    http = HttpSession()
    github_token = settings.github_token.get_secret_value() if settings.github_token else None
    github = GitHubClient(session=http, token=github_token, api_url=settings.github_api_url)
    providers: dict[str, DeployProvider] = {
        name: build_provider(env.deploy, session=http, github=github, credentials=credentials)
        for name, env in config.environments.items()
    }
    sources: dict[str, CommitSource] = {}
    for name, svc in config.services.items():
        if svc.repo is None:
            continue
        if svc.repo.path is not None:
            path = svc.repo.path if svc.repo.path.is_absolute() else (config_dir / svc.repo.path)
            sources[name] = LocalGitSource(path.resolve())
        elif svc.repo.github is not None:
            sources[name] = GitHubSource(svc.repo.github, client=github)
    checks = CheckRunner(config.metrics, session=http, credentials=credentials)
    if not schedule:
        scheduler = None
    elif scheduler is None:
        scheduler = BotScheduler(config, clock)
    engine = Engine(
        Deps(
            config=config,
            db=store,
            notifier=notifier,
            directory=directory,
            clock=clock or SystemClock(),
            providers=providers.__getitem__,
            data_dir=Path(str(store.sync.path)).resolve().parent,  # the database's directory
            sources=sources.get,
            checks=checks,
            scheduler=scheduler,
            sleep=sleep or asyncio.sleep,
            base_url=settings.public_url,
            notes_link_key=settings.notes_link_key(),
        )
    )
    events = build_deliveries(
        config,
        store,
        http,
        github_token=github_token,
        github_api_url=settings.github_api_url,
        permalink=notifier.permalink,
        clock=clock or SystemClock(),
        policy=EVENTS_POLICY,
    )
    return Runtime(
        store=store, http=http, checks=checks, scheduler=scheduler, engine=engine, outbox=outbox, events=events
    )


def _secret(value: SecretStr | None) -> str:
    """A secret's value, "" when unset: each mode's ``Settings.require_*`` refused to start without its own."""
    return value.get_secret_value() if value is not None else ""


# What an auth.test refusal means for the person starting the bot, by Slack's error code.
_TOKEN_ERRORS = {
    "invalid_auth": "it is not a valid token; use the app's Bot User OAuth Token (xoxb-…) from its OAuth page",
    "not_authed": "it is empty",
    "token_revoked": "it was revoked; reinstall the app and use its new Bot User OAuth Token",
    "account_inactive": "the app's bot user or its workspace was deactivated",
    "not_allowed_token_type": "it is not a bot token; use the app's Bot User OAuth Token (xoxb-…)",
}


class SlackIdentity:
    """Who the bot is in Slack, asked once at start-up (``auth.test``) and given to Bolt for every request.

    Bolt, given a token, asks auth.test itself on the first request it handles, and when Slack does not answer
    then that request fails (our edge can only call it malformed). Asked here, a token Slack refuses or a Slack
    that cannot be reached stops the start, naming the cause (StartupError), and no request waits on it later.
    """

    def __init__(self, client: AsyncWebClient, api_url: str) -> None:
        self._client = client
        self._api_url = api_url
        self._result: AuthorizeResult | None = None

    async def verify(self) -> None:
        try:
            response = await self._client.auth_test()
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or str(exc).splitlines()[0])
            why = _TOKEN_ERRORS.get(error, "check SLACK_BOT_TOKEN")
            raise StartupError(
                f"Slack refused SLACK_BOT_TOKEN: auth.test at {self._api_url} answered {error} ({why})"
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise StartupError(
                f"cannot reach the Slack API at {self._api_url} (auth.test: {reason}); "
                "check SLACK_API_URL and this machine's network"
            ) from None
        self._result = AuthorizeResult.from_auth_test_response(
            bot_token=self._client.token, auth_test_response=response
        )
        log.info(
            "Slack: signed in as @%s (%s) in %s (%s)",
            response.get("user"),
            response.get("user_id"),
            response.get("team"),
            response.get("team_id"),
        )

    def authorizer(self) -> VerifiedIdentity:
        """Bolt's ``authorize``: the identity verified at start-up, before any request could arrive."""
        return VerifiedIdentity(self)

    def result(self) -> AuthorizeResult:
        """The verified identity; only asked once start-up has verified it."""
        if self._result is None:
            raise RuntimeError("a Slack request arrived before start-up verified the bot token")
        return self._result


class VerifiedIdentity(AsyncAuthorize):
    """Bolt's authorize step as an ``AsyncAuthorize``: Bolt calls it with fixed keywords. A plain function would
    be wrapped in Bolt's callable adapter, which inspects its signature to build its arguments on every request."""

    def __init__(self, identity: SlackIdentity) -> None:  # AsyncAuthorize's own __init__ does nothing
        self._identity = identity

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        return self._identity.result()


def slack_runtime(
    settings: Settings, config: Config, config_dir: Path, *, clock: Clock | None = None
) -> tuple[Runtime, AsyncApp]:
    """The runtime and its Bolt app for the Slack modes; the bot's own writes go through the outbox, and the
    runtime's start begins by checking the bot token with Slack."""
    clock = clock or SystemClock()
    token = _secret(settings.slack_bot_token)
    store = AsyncStore(Store(settings.db_path))
    policy = OUTBOX_POLICY
    slack = SlackNotifier(outbox_web_client(token, settings.slack_api_url, policy.timeout))
    outbox = OutboxNotifier(slack, store, clock=clock, policy=policy)
    client = web_client(token, settings.slack_api_url)
    runtime = build_runtime(
        settings,
        config,
        store=store,
        notifier=outbox,
        directory=SlackDirectory(client),
        config_dir=config_dir,
        clock=clock,
        outbox=outbox,
    )
    identity = SlackIdentity(client, settings.slack_api_url)
    runtime.preflight = identity.verify
    bolt = build_app(runtime.engine, client=client, session=runtime.http, authorize=identity.authorizer())
    return runtime, bolt


def http_app(settings: Settings, config: Config, config_dir: Path, *, clock: Clock | None = None) -> web.Application:
    """HTTP mode: Bolt behind POST /slack/events, with Slack request signing verified."""
    runtime, bolt = slack_runtime(settings, config, config_dir, clock=clock)
    app = build_web_app(
        runtime,
        bolt,
        api_token=_secret(settings.api_token) or None,
        signing_secret=_secret(settings.slack_signing_secret),
    )
    _mount_alerts(app, runtime, config)
    return app


def _mount_alerts(app: web.Application, runtime: Runtime, config: Config) -> None:
    """Alertmanager's webhook (POST /api/v1/alerts), when ``alerts:`` is configured: it acts through the engine."""
    mount_alerts(app, config=config, intake=runtime.engine.alerts, token=alerts_token(config))


def socket_app(settings: Settings, config: Config, config_dir: Path, *, clock: Clock | None = None) -> web.Application:
    """Socket Mode: Slack connects over a WebSocket we open; health, metrics and the API stay on HTTP."""
    runtime, bolt = slack_runtime(settings, config, config_dir, clock=clock)
    handler = TimedSocketModeHandler(bolt, _secret(settings.slack_app_token), store=runtime.store)

    async def socket_mode(app: web.Application) -> AsyncIterator[None]:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        yield
        await handler.close_async()  # type: ignore[no-untyped-call]

    app = build_web_app(runtime, None, api_token=_secret(settings.api_token) or None, extra_startup=socket_mode)
    _mount_alerts(app, runtime, config)
    return app


async def run_console(
    settings: Settings,
    config: Config,
    config_dir: Path,
    *,
    user: str,
    db_path: Path,
    demo_dir: Path | None,
    start: datetime | None,
    speed: float,
) -> None:
    """The console adapter over the shared handlers, optionally seeded with demo data.

    Its clock starts at ``start`` (default: now) and runs ``speed`` times as fast as the wall clock; rollout
    pauses and timed work (checks, expiries, summaries) wait on it, so the console can also move it forward.
    """
    from bot import demo  # noqa: PLC0415 - only the demo needs git at start-up

    clock = ConsoleClock(start, speed=speed)
    shas: list[str] = []
    if demo_dir is not None:
        shas = demo.make_repo(demo_dir / "repo", clock.now() - timedelta(days=2))
        config = demo.demo_config(config, demo_dir / "repo")
    store = AsyncStore(Store(db_path))
    if demo_dir is not None:
        demo.seed(store.sync, config, shas, clock.now())
    notifier = ConsoleNotifier(out=sys.stdout)
    groups = {
        member: frozenset({"U01RELEASE"})
        for members in config.groups.values()
        for member in members
        if member.startswith("S")
    }
    scheduler = ConsoleScheduler(clock)
    runtime = build_runtime(
        settings,
        config,
        store=store,
        notifier=notifier,
        directory=ConsoleDirectory(config, groups),
        config_dir=config_dir,
        clock=clock,
        scheduler=scheduler,
        sleep=clock.sleep,
    )
    clock.attach()
    try:
        with clock.working():  # what the start-up starts (recovery, catch-up summaries) is the console's work
            await runtime.start()
        channel = next(iter(config.services.values())).channel
        try:
            await Console(runtime.engine, notifier, scheduler, user=user, channel=channel).run()
        finally:
            await runtime.close()
    finally:
        clock.detach()

"""The one AsyncApp factory. Handlers ack first, then run the shared command handlers.

Bolt listeners here only translate Slack payloads to an Actor and text; everything else lives in
`commands/` and the engine, which the console adapter drives the same way.

Slack hears the ack as soon as a listener returns (``process_before_response``), so every listener
acks, hands whatever outlives the ack to ``engine.spawn`` and returns: after its ack a listener does
nothing that can wait or raise. tests/test_ack_path.py holds each listener's work and shows its HTTP
response arrives first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.grammar import ParseError
from bot.engine import Actor, Engine, Reply
from bot.http_session import HttpSession
from bot.logcontext import log_context
from bot.observability import SLACK_REQUESTS
from bot.slack.respond import ResponseSender
from bot.store import AsyncStore, Store
from bot.views import render
from bot.views import trains as train_views
from bot.views.mrkdwn import escape
from commands import parse_command, run_command
from commands.actions import ALL_ACTIONS, MODAL_ACTIONS, deny_refusal, on_action, on_deny
from commands.home import publish_home
from commands.trains import hold_refusal, on_hold

log = logging.getLogger("release_bot.slack")
SLASH_COMMAND = "/release"
ANSWERED_IN_ACK = frozenset({"status"})
IN_ACK_BUDGET = 1.5  # seconds
ACTION_PATTERN = re.compile("^(" + "|".join(a for a in ALL_ACTIONS if a not in MODAL_ACTIONS) + ")$")


def delivery_keys(payload: Mapping[str, Any]) -> list[str]:
    """The ids Slack gives one interaction or one event, the same on every delivery of it.

    A slash command, button click or modal submission carries a ``trigger_id`` minted once per user action;
    an Events API event carries an ``event_id`` that Slack's own retries (``X-Slack-Retry-Num``) repeat.
    A replay re-signed with a fresh timestamp still carries them.
    """
    keys = []
    for field in ("trigger_id", "event_id"):
        value = payload.get(field)
        if isinstance(value, str) and value:
            keys.append(f"{field}:{value}")
    return keys


class Deliveries:
    """The edge's replay check: claim each request's delivery keys in the store before it is dispatched.

    The window is wall-clock time, like Slack's signature check, not the engine's clock. A claim is one
    INSERT, written on the event loop when the database's write lock is free at that instant
    (``AsyncStore.claim_now``): a hand-off to the store thread and back costs several times the write (about
    80 µs of CPU against 20 µs here). When the lock is taken, requests are claimed through the store thread,
    those that arrive meanwhile together in the next round trip, in arrival order and one transaction, each
    still getting its own verdict.
    """

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._queued: list[tuple[list[str], float, asyncio.Future[bool]]] = []
        self._claiming: asyncio.Task[None] | None = None

    async def first(self, keys: list[str], what: str) -> bool:
        """Claim a request's keys; False (and a log line) when any was seen before: the request is a replay."""
        now = time.time()
        first = None if self._claiming is not None else self._store.claim_now(keys, now)
        if first is None:  # the write lock is taken, or claims are already queued: join the queue, in order
            loop = asyncio.get_running_loop()
            verdict: asyncio.Future[bool] = loop.create_future()
            self._queued.append((keys, now, verdict))
            if self._claiming is None:
                self._claiming = loop.create_task(self._claim_queued(), name="delivery-claims")
            first = await verdict
        if first:
            return True
        SLACK_REQUESTS.labels(kind="replay").inc()
        log.warning("ignored a replayed Slack request (%s; %s): acked, nothing done", what, ", ".join(keys))
        return False

    async def _claim_queued(self) -> None:
        batch: list[tuple[list[str], float, asyncio.Future[bool]]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                claims = [(keys, now) for keys, now, _ in batch]
                try:
                    firsts = await self._store.unit(partial(_claim_each, claims))
                except Exception as exc:  # each request fails as its own claim would have
                    for _, _, verdict in batch:
                        if not verdict.done():  # its request may have been cancelled meanwhile
                            verdict.set_exception(exc)
                else:
                    for (_, _, verdict), first in zip(batch, firsts, strict=True):
                        if not verdict.done():
                            verdict.set_result(first)
                batch = []
        finally:
            self._claiming = None
            # Only when this task is cancelled (shutdown): nobody is left to claim for the waiting requests.
            for _, _, verdict in batch + self._queued:
                verdict.cancel()
            self._queued = []


def _claim_each(claims: list[tuple[list[str], float]], store: Store) -> list[bool]:
    """On the store thread: each request's claim in turn, so a duplicate within a batch is still a replay."""
    return [store.claim_request(keys, now) for keys, now in claims]


def clicker(body: Mapping[str, Any], action: Mapping[str, Any]) -> Actor | None:
    """Who clicked a button, where, in which click; None for a click from nobody, which changes nothing
    (Slack always says who clicked)."""
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    channel = body.get("channel")  # absent for a Home-tab click
    return Actor(
        user=user_id,
        channel=str((channel.get("id") if isinstance(channel, dict) else None) or ""),
        request_id=str(action.get("action_ts") or body.get("trigger_id") or ""),
    )


def submitter(body: Mapping[str, Any]) -> str | None:
    """Who submitted a modal; None for a submission from nobody, which changes nothing (Slack always says)."""
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    return user_id if isinstance(user_id, str) and user_id else None


def typed_reason(view: Mapping[str, Any]) -> str:
    """The reason typed in a reason modal (its one input, block and action id ``reason``; Deny and Hold)."""
    values = view.get("state", {}).get("values", {})
    return str(values.get("reason", {}).get("reason", {}).get("value") or "")


def build_app(
    engine: Engine,
    *,
    client: AsyncWebClient,
    session: HttpSession,
    authorize: Callable[..., Awaitable[AuthorizeResult]],
) -> AsyncApp:
    """Build the Bolt app around an engine.

    Request signatures are checked at the edge, once: by the HTTP server on the raw bytes before Bolt
    parses anything (bot.server); Socket Mode requests arrive over Slack's own authenticated socket.
    Who the bot is comes from ``authorize``: the identity the bootstrap verified at start-up (auth.test).
    """
    sender = ResponseSender(session)  # the runtime opens and closes the shared session

    async def answer_to(url: object, reply: Reply) -> None:
        # Slack sends a response_url with every command and message button; a Home-tab click has none,
        # and the refreshed Home shows its outcome instead.
        if isinstance(url, str) and url:
            await sender.send(url, reply.message, public=reply.public)

    app = AsyncApp(
        # Bolt's client has the Web API address and retries of ``client`` but no token: each request's client
        # gets the token from ``authorize``'s result. Given a token, Bolt would call auth.test on the first
        # request (and fail that request when Slack does not answer then), and warn at every start that
        # ``authorize`` makes the token unused.
        client=AsyncWebClient(base_url=client.base_url, timeout=client.timeout, retry_handlers=client.retry_handlers),
        authorize=authorize,
        request_verification_enabled=False,
        # The response goes out when the listener returns. Bolt's default instead runs the listener as a
        # task and polls for its ack every 10 ms (slack_bolt/listener/asyncio_runner.py): a 10 ms floor
        # under every request. Listeners here return right after their ack, their work spawned.
        process_before_response=True,
        # Workflow functions are not used: nothing to attach, and one middleware less on every request.
        attaching_function_token_enabled=False,
    )

    @app.command(SLASH_COMMAND)
    async def release_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        SLACK_REQUESTS.labels(kind="command").inc()
        text = str(command.get("text") or "")
        if not command.get("user_id"):
            await ack(text="who is asking? (no user_id)", response_type="ephemeral")
            return
        actor = Actor(
            user=str(command["user_id"]),
            channel=str(command.get("channel_id") or ""),
            request_id=str(command.get("trigger_id") or ""),
        )
        try:  # Cheap, pure answers go straight into the ack.
            cmd = parse_command(engine, text, actor.channel)
        except ParseError as exc:
            message = render.refusal(escape(str(exc)))  # it quotes the user's words
            await ack(text=message.text, blocks=message.blocks, response_type="ephemeral")
            return
        if cmd.name == "help":
            message = render.help_message(SLASH_COMMAND)
            await ack(text=message.text, blocks=message.blocks, response_type="ephemeral")
            return
        if cmd.name in ANSWERED_IN_ACK:
            # A fast indexed read: answering inside the ack saves Slack a second round trip and the bot a
            # response_url POST. The guard keeps the ack well inside Slack's 3 s even on a slow disk; it
            # runs the read in this task (asyncio.wait_for would start another one for every status).
            try:
                async with asyncio.timeout(IN_ACK_BUDGET):
                    reply = await run_command(engine, actor, cmd, text)  # parsed above: once
            except TimeoutError:
                log.warning("%s took over %.1f s; answering after the ack instead", cmd.name, IN_ACK_BUDGET)
            else:
                await ack(
                    text=reply.message.text,
                    blocks=reply.message.blocks,
                    response_type="in_channel" if reply.public else "ephemeral",
                )
                return
        await ack()

        async def answer() -> None:
            await answer_to(command.get("response_url"), await run_command(engine, actor, cmd, text))

        # The engine tracks the work after the ack (drain() awaits it; shutdown cancels it cleanly).
        with log_context(request_id=actor.request_id):  # the work's log lines name the request
            engine.spawn(answer(), f"command-{actor.request_id}")

    @app.action(ACTION_PATTERN)
    async def button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        SLACK_REQUESTS.labels(kind="action").inc()
        await ack()
        actor = clicker(body, action)
        if actor is None:
            return

        async def answer() -> None:
            reply = await on_action(engine, actor, str(action.get("action_id")), str(action.get("value") or ""))
            await answer_to(body.get("response_url"), reply)

        with log_context(request_id=actor.request_id):  # the work's log lines name the request
            engine.spawn(answer(), f"action-{actor.request_id}")

    def reason_button(
        action_id: str,
        refusal: Callable[[Engine, Actor, str], Awaitable[Reply | None]],
        form: Callable[[str, Actor], dict[str, Any]],
        name: str,
    ) -> None:
        """A button that asks for a reason in a modal (Deny, Hold). Who may click it is asked before the modal
        opens (the permission table's row for ``action_id``), so the wrong person, or a late click on something
        decided or gone, is told at once instead of after typing a reason. Spawned the moment the listener
        returns, the modal opens well inside the trigger_id's 3 s."""

        async def button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
            SLACK_REQUESTS.labels(kind="action").inc()
            await ack()
            actor = clicker(body, action)
            if actor is None:
                return
            value = str(action.get("value") or "")

            async def open_reason_form() -> None:
                refused = await refusal(engine, actor, value)
                if refused is not None:
                    await answer_to(body.get("response_url"), refused)
                    return
                await client.views_open(trigger_id=str(body["trigger_id"]), view=form(value, actor))

            with log_context(request_id=actor.request_id):  # the work's log lines name the request
                engine.spawn(open_reason_form(), f"{name}-form-{actor.request_id}")

        button.__name__ = f"{name}_button"  # one listener per button, each named for it
        app.action(action_id)(button)

    # The refusals are looked up when a click comes (not bound here), as every other listener's command call is.
    reason_button(
        "approval_deny",
        lambda engine, actor, value: deny_refusal(engine, actor, value),
        lambda value, _: render.deny_modal(int(value)),
        "deny",
    )
    reason_button(  # the hold form carries the channel its button was clicked in, for the answer
        "train_hold",
        lambda engine, actor, value: hold_refusal(engine, actor, value),
        lambda value, actor: train_views.hold_modal(int(value), actor.channel or ""),
        "hold",
    )

    @app.view("approval_deny_reason")
    async def deny_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        SLACK_REQUESTS.labels(kind="view").inc()
        await ack()
        user_id = submitter(body)
        if user_id is None:
            return
        approval_id = str(view.get("private_metadata") or "")
        actor = Actor(user=user_id, request_id=str(view.get("id") or ""))

        async def answer() -> None:
            reply = await on_deny(engine, actor, approval_id, typed_reason(view))
            approval = (
                await engine.db.get_approval(int(approval_id))
                if approval_id.isascii() and approval_id.isdigit()
                else None
            )
            if approval is not None and approval.channel:
                await engine.deps.notifier.ephemeral(
                    approval.channel, user_id, reply.message.text, reply.message.blocks
                )

        with log_context(request_id=actor.request_id):  # the work's log lines name the request
            engine.spawn(answer(), f"deny-{approval_id}")

    @app.view(train_views.HOLD_MODAL)
    async def hold_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        SLACK_REQUESTS.labels(kind="view").inc()
        await ack()
        user_id = submitter(body)
        if user_id is None:
            return
        # The form carries the departure and the channel its button was clicked in (for the answer).
        departure_id, _, channel = str(view.get("private_metadata") or "").partition(":")
        actor = Actor(user=user_id, channel=channel, request_id=str(view.get("id") or ""))

        async def answer() -> None:
            reply = await on_hold(engine, actor, departure_id, typed_reason(view))
            if channel:
                await engine.deps.notifier.ephemeral(channel, user_id, reply.message.text, reply.message.blocks)

        with log_context(request_id=actor.request_id):
            engine.spawn(answer(), f"hold-{departure_id}")

    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        # Bolt acks an event itself, when this returns.
        SLACK_REQUESTS.labels(kind="event").inc()
        user = event.get("user")
        if event.get("tab", "home") == "home" and isinstance(user, str) and user:
            engine.spawn(publish_home(engine, user), "home")

    return app


def registered_commands() -> list[str]:
    """The slash commands this app listens to (checked against manifest.yml by a test)."""
    return [SLASH_COMMAND]

"""Every Slack listener is answered before its work finishes, through the real HTTP route.

The Bolt app runs with ``process_before_response``: Slack's HTTP response (or Socket Mode ack) goes out
when a listener returns, with no 10 ms polling for the ack. That is only safe while every listener returns
right after its ack and leaves the rest to ``engine.spawn``; a listener that awaited its work would keep
Slack waiting past its 3 s. Each case here holds the command-layer call one listener hands its work to
(and, where that work deploys, the deploy too: a provider waiting on an asyncio.Event), shows the response
arrives while the work is held, then lets the work go and sees it finish. The cases are checked against
the listeners the app registers, so a new listener cannot go untested. Last, the replay check every request
passes before it is dispatched: requests arriving together share one store round trip.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot import bootstrap
from bot.bootstrap import socket_app
from bot.config import parse_config
from bot.core.models import ApprovalState, ReleaseKind, ReleaseState
from bot.ports import RunRecord
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven
from bot.server import BOLT, RUNTIME
from bot.settings import Settings
from bot.slack import app as slack_app
from bot.slack.app import Deliveries
from bot.store import AsyncStore, Store
from commands import run_command
from commands.actions import ALL_ACTIONS
from tests.fakes import FakeSlackWebAPI, FakeSocketModeServer
from tests.fakes.slack_signing import (
    block_actions_body,
    event_body,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    view_submission_body,
)
from tests.harness import (
    CHANNEL,
    ONCALL1,
    RELEASER,
    SECRET,
    TUESDAY_10AM,
    BotHarness,
    MutableClock,
    config_dict,
    running_bot,
)

P = ParamSpec("P")
R = TypeVar("R")
SLACK_ACK_LIMIT = 3.0  # seconds Slack waits for an answer before it shows the user an error
WAIT = 5.0  # for work the test started to reach a point; a bound, never a sleep


class Hold:
    """A point the work waits at until the test lets it go; ``reached`` is set when the work gets there."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()

    async def wait(self) -> None:
        self.reached.set()
        await self.released.wait()

    def around(self, work: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """``work``, held at its start."""

        async def held(*args: P.args, **kwargs: P.kwargs) -> R:
            await self.wait()
            return await work(*args, **kwargs)

        return held


class HeldDeploys:
    """A deploy provider whose every step waits at ``hold``, then succeeds; ``done`` lists finished steps."""

    def __init__(self, hold: Hold) -> None:
        self.hold = hold
        self.done: list[str] = []

    async def _step(self, what: str, ctx: DeployContext, run: RunRecord) -> StepResult:
        await run.starting(RunIdentity())
        await self.hold.wait()
        self.done.append(f"{what} {ctx.service} {ctx.version} {ctx.environment}")
        return StepResult(ok=True, output_tail="done")

    async def deploy(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        return await self._step("deploy", ctx, run)

    async def shift(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        return await self._step("shift", ctx, run)

    async def rollback(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        return await self._step("rollback", ctx, run)

    async def inspect(self, left: LeftRun) -> StepResult | Unproven | None:
        raise AssertionError("these cases never restart the bot")

    async def follow(self, left: LeftRun) -> StepResult | Unproven:
        raise AssertionError("these cases never restart the bot")


@dataclass
class HeldBot:
    """The bot in HTTP mode whose deploys, and the call a case says a listener hands its work to, wait at
    one hold."""

    bot: BotHarness
    hold: Hold
    deploys: HeldDeploys
    monkeypatch: pytest.MonkeyPatch

    def hold_handoff(self, name: str) -> None:
        """Hold ``bot.slack.app.<name>``: the command-layer call a listener hands its work to."""
        self.monkeypatch.setattr(slack_app, name, self.hold.around(getattr(slack_app, name)))

    async def answered_while_held(self, body: bytes) -> ClientResponse:
        """POST a signed request: its response arrives within Slack's limit, before the test lets the work
        go; and the work did get as far as the hold."""
        response = await answered(self.bot, body)
        await asyncio.wait_for(self.hold.reached.wait(), WAIT)
        return response


@pytest.fixture
async def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldBot]:
    hold = Hold()
    deploys = HeldDeploys(hold)
    monkeypatch.setattr(bootstrap, "build_provider", lambda *args, **kwargs: deploys)
    async with running_bot(tmp_path) as harness:
        try:
            yield HeldBot(harness, hold, deploys, monkeypatch)
        finally:
            hold.released.set()  # so the harness's teardown can drain the work


async def answered(harness: BotHarness, body: bytes) -> ClientResponse:
    """POST a signed request; its whole response must arrive within Slack's limit."""
    async with asyncio.timeout(SLACK_ACK_LIMIT):
        response = await harness.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
        await response.read()
    assert response.status == 200, await response.text()
    return response


async def pending_rollback(harness: BotHarness) -> str:
    """A prod rollback waiting for on-call's approval; the approval's id."""
    harness.live("prod", "1.2.2")
    harness.live("prod", "1.2.3")
    await harness.command("rollback prod")
    await harness.settle()
    [approval] = harness.store.sql.query("SELECT id FROM approvals WHERE state = 'pending'")
    return str(approval["id"])


def approval_state(harness: BotHarness, approval_id: str) -> ApprovalState:
    approval = harness.store.get_approval(int(approval_id))
    assert approval is not None
    return approval.state


# --- one case per listener: hold its work, see the response, let the work go, see it done ----------------


async def slash_command_deploys(held: HeldBot) -> None:
    """`/release staging 1.2.3`: answered while the command, and then the deploy it starts, are blocked."""
    harness = held.bot
    harness.add_candidate("1.2.3")
    held.hold_handoff("run_command")
    url = harness.slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
    await held.answered_while_held(
        slash_command_body("/release", "staging 1.2.3", user_id=RELEASER, channel_id=CHANNEL, response_url=url)
    )
    assert held.deploys.done == [] and harness.slack.calls_to("response_url") == []
    held.hold.released.set()
    await harness.settle()
    assert held.deploys.done == ["deploy notify 1.2.3 staging"]
    [release] = harness.store.history("notify", "staging", 1)
    assert release.version == "1.2.3" and release.state is ReleaseState.SUCCEEDED
    assert len(harness.slack.calls_to("response_url")) == 1


async def approve_click_rolls_back(held: HeldBot) -> None:
    """Approve on a rollback request: answered while the vote, and then the rollback it starts, are blocked."""
    harness = held.bot
    approval_id = await pending_rollback(harness)
    held.hold_handoff("on_action")
    url = harness.slack.new_response_url(channel=CHANNEL, user_id=ONCALL1)
    await held.answered_while_held(
        block_actions_body(ONCALL1, "approval_approve", approval_id, channel_id=CHANNEL, response_url=url)
    )
    assert approval_state(harness, approval_id) is ApprovalState.PENDING and held.deploys.done == []
    held.hold.released.set()
    await harness.settle()
    assert approval_state(harness, approval_id) is ApprovalState.APPROVED
    assert held.deploys.done == ["rollback notify 1.2.2 prod"]
    [rollback] = [r for r in harness.store.history("notify", "prod", 5) if r.kind is ReleaseKind.ROLLBACK]
    assert rollback.state is ReleaseState.SUCCEEDED


async def deny_click_opens_the_form(held: HeldBot) -> None:
    """Deny: answered while its permission check, and so the reason modal, is blocked."""
    harness = held.bot
    approval_id = await pending_rollback(harness)
    held.hold_handoff("deny_refusal")
    await held.answered_while_held(block_actions_body(ONCALL1, "approval_deny", approval_id, channel_id=CHANNEL))
    assert harness.slack.calls_to("views.open") == []
    held.hold.released.set()
    [opened] = await harness.slack.wait_for("views.open")
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "approval_deny_reason" and view["private_metadata"] == approval_id


async def deny_reason_is_submitted(held: HeldBot) -> None:
    """The deny modal's submission: answered while the denial is blocked."""
    harness = held.bot
    approval_id = await pending_rollback(harness)
    held.hold_handoff("on_deny")
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "the alert was noise"}}}
    await held.answered_while_held(
        view_submission_body("approval_deny_reason", values, user_id=ONCALL1, private_metadata=approval_id)
    )
    assert approval_state(harness, approval_id) is ApprovalState.PENDING
    held.hold.released.set()
    await harness.slack.wait_for("chat.postEphemeral", predicate=lambda c: c.args.get("user") == ONCALL1)
    await harness.settle()
    assert approval_state(harness, approval_id) is ApprovalState.DENIED


async def home_tab_is_opened(held: HeldBot) -> None:
    """app_home_opened (Bolt acks events itself): answered while the Home view is blocked."""
    harness = held.bot
    held.hold_handoff("publish_home")
    event = {"type": "app_home_opened", "user": RELEASER, "tab": "home", "event_ts": f"{time.time():.6f}"}
    await held.answered_while_held(event_body(event))
    assert harness.slack.calls_to("views.publish") == []
    held.hold.released.set()
    await harness.slack.wait_for("views.publish", predicate=lambda c: c.args.get("user_id") == RELEASER)


async def hold_click_is_answered(held: HeldBot) -> None:
    """A train's Hold: answered while its permission check (and so its reason form) is blocked; this config
    has no trains, so once let go the click is refused through the response_url and no form opens."""
    harness = held.bot
    held.hold_handoff("hold_refusal")
    url = harness.slack.new_response_url(channel=CHANNEL, user_id=ONCALL1)
    await held.answered_while_held(block_actions_body(ONCALL1, "train_hold", "1", channel_id=CHANNEL, response_url=url))
    assert harness.slack.calls_to("response_url") == []
    held.hold.released.set()
    await harness.slack.wait_for("response_url")
    await harness.settle()
    assert "not one of ours" in harness.last_reply(ONCALL1) and harness.slack.calls_to("views.open") == []


async def hold_reason_is_submitted(held: HeldBot) -> None:
    """A train's hold form submitted: answered while the hold is blocked; then answered in the channel."""
    harness = held.bot
    held.hold_handoff("on_hold")
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "incident"}}}
    await held.answered_while_held(
        view_submission_body("train_hold_reason", values, user_id=ONCALL1, private_metadata=f"1:{CHANNEL}")
    )
    assert harness.slack.calls_to("chat.postEphemeral") == []
    held.hold.released.set()
    await harness.slack.wait_for("chat.postEphemeral", predicate=lambda c: c.args.get("user") == ONCALL1)
    await harness.settle()
    assert "not one of ours" in harness.last_reply(ONCALL1)


# The Bolt listener (its function's name in bot.slack.app) -> the case that holds its work.
CASES: dict[str, Callable[[HeldBot], Awaitable[None]]] = {
    "release_command": slash_command_deploys,
    "button": approve_click_rolls_back,
    "deny_button": deny_click_opens_the_form,
    "deny_submitted": deny_reason_is_submitted,
    "home_opened": home_tab_is_opened,
    "hold_button": hold_click_is_answered,
    "hold_submitted": hold_reason_is_submitted,
}


async def test_every_registered_listener_has_a_case(bot: BotHarness) -> None:
    bolt = bot.client.server.app[BOLT]
    assert bolt.process_before_response  # what makes the cases matter
    names = [listener.ack_function.__name__ for listener in bolt._async_listeners]
    assert len(names) == len(set(names)), names
    assert set(names) == set(CASES), "a listener without a case here could keep Slack waiting for its work"


def rendered_action_ids() -> dict[str, str]:
    """Every button the views can render: its action id (a literal, or a constant of the view's module) → where."""
    import ast  # noqa: PLC0415
    import importlib  # noqa: PLC0415

    found: dict[str, str] = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "bot" / "views").glob("*.py")):
        module = importlib.import_module(f"bot.views.{path.stem}")
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name != "button":
                continue
            arg = node.args[1]
            value = arg.value if isinstance(arg, ast.Constant) else getattr(module, getattr(arg, "id", ""), None)
            assert isinstance(value, str), f"{path.name}:{node.lineno}: an action id the test cannot read"
            found[value] = f"{path.name}:{node.lineno}"
    return found


async def test_every_button_the_views_render_reaches_a_listener(bot: BotHarness) -> None:
    from slack_bolt.request.async_request import AsyncBoltRequest  # noqa: PLC0415
    from slack_bolt.response import BoltResponse  # noqa: PLC0415

    rendered = rendered_action_ids()
    assert {"approval_approve", "check_rollback", "train_hold"} <= set(rendered), rendered  # the scan sees them
    listeners = bot.client.server.app[BOLT]._async_listeners
    for action_id, where in rendered.items():
        assert action_id in ALL_ACTIONS, f"{where}: {action_id!r} is not one of commands.actions' buttons"
        click = block_actions_body(ONCALL1, action_id, "1", channel_id=CHANNEL).decode()
        headers = {"content-type": "application/x-www-form-urlencoded"}
        request = AsyncBoltRequest(body=click, headers=headers)  # the click's form body, parsed as Bolt parses it
        matched = [
            listener.ack_function.__name__
            for listener in listeners
            if await listener.async_matches(req=request, resp=BoltResponse(status=200))
        ]
        assert len(matched) == 1, f"{where}: {action_id!r} reaches {matched or 'no listener'}"


@pytest.mark.parametrize("listener", list(CASES))
async def test_the_response_arrives_while_the_listeners_work_is_held(held: HeldBot, listener: str) -> None:
    await CASES[listener](held)


async def test_a_status_slower_than_its_in_ack_budget_is_answered_after_the_ack(
    held: HeldBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status` answers inside the ack while that is quick; held past its budget, the ack goes out empty
    (well inside Slack's 3 s) and the answer follows through the response_url."""
    harness = held.bot
    held.hold_handoff("run_command")
    monkeypatch.setattr(slack_app, "IN_ACK_BUDGET", 0.05)
    url = harness.slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
    body = slash_command_body("/release", "status", user_id=RELEASER, channel_id=CHANNEL, response_url=url)
    response = await held.answered_while_held(body)
    assert (await response.read()).strip() == b""
    assert harness.slack.calls_to("response_url") == []
    held.hold.released.set()
    [answer] = await harness.slack.wait_for("response_url")
    assert "notify" in json.dumps(answer.args)


async def test_a_socket_mode_ack_arrives_while_the_work_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same app behind Socket Mode: the envelope's ack arrives while the command, and then the deploy it
    starts, are blocked."""
    hold = Hold()
    deploys = HeldDeploys(hold)
    monkeypatch.setattr(bootstrap, "build_provider", lambda *args, **kwargs: deploys)
    monkeypatch.setattr(slack_app, "run_command", hold.around(run_command))
    async with FakeSlackWebAPI() as slack, FakeSocketModeServer(app_id=slack.app_id) as server:
        slack.attach_socket_mode(server)
        settings = Settings(slack_api_url=slack.base_url, db_path=tmp_path / "bot.db").model_copy(
            update={"slack_bot_token": SecretStr("xoxb-test"), "slack_app_token": SecretStr("xapp-test")}
        )
        config = parse_config(config_dict(tmp_path / "deploys.log"))
        app = socket_app(settings, config, tmp_path, clock=MutableClock(TUESDAY_10AM))
        async with TestClient(TestServer(app)):  # starts the runtime and the Socket Mode connection
            runtime = app[RUNTIME]
            try:
                await server.wait_connected(WAIT)
                runtime.store.sync.put_candidate(
                    service="notify",
                    version="2.0.0",
                    commit="ab" * 20,
                    committed_at=None,
                    components={"api": "ghcr.io/x/api:2.0.0", "worker": "ghcr.io/x/worker:2.0.0"},
                    tests={},
                    now=TUESDAY_10AM,
                )
                url = slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
                payload = slash_command_payload(
                    "/release", "staging 2.0.0", user_id=RELEASER, channel_id=CHANNEL, response_url=url
                )
                # The fake raises TimeoutError when no ack comes within Slack's limit.
                ack = await server.send_envelope("slash_commands", payload, timeout=SLACK_ACK_LIMIT)
                assert "envelope_id" in ack
                await asyncio.wait_for(hold.reached.wait(), WAIT)
                assert deploys.done == [] and slack.calls_to("response_url") == []
            finally:
                hold.released.set()
            await runtime.engine.drain()
            assert deploys.done == ["deploy notify 2.0.0 staging"]


# --- the replay check before every dispatch -------------------------------------------------------------


async def test_a_burst_of_requests_is_claimed_in_one_store_round_trip(db: AsyncStore) -> None:
    """Requests arriving together share one hand-off to the store thread; each gets its own verdict, and a
    request repeated inside the burst is still the replay."""
    deliveries = Deliveries(db)
    keys = [[f"signature:s{i}", f"trigger_id:t{i}"] for i in range(20)]
    keys.append(["signature:again", "trigger_id:t7"])  # a re-signed repeat of request 7
    before = db.round_trips
    firsts = await asyncio.gather(*(deliveries.first(k, "test") for k in keys))
    assert firsts == [True] * 20 + [False]
    assert db.round_trips - before == 1
    assert await deliveries.first(["signature:s3"], "test") is False  # and later deliveries see them all


async def test_a_failing_claim_fails_each_of_its_requests(tmp_path: Path) -> None:
    store = AsyncStore(Store(tmp_path / "db.sqlite"))
    deliveries = Deliveries(store)
    store.close()  # the store thread is gone: no claim can be made
    outcomes = await asyncio.gather(
        deliveries.first(["signature:a"], "test"), deliveries.first(["signature:b"], "test"), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]

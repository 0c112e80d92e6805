"""The console adapter: type slash commands, read messages as text, click buttons by number.

It drives the very same command and action handlers as Slack mode; only the edges differ: messages
are printed instead of posted, and the directory is the config's own groups.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import math
import re
import shlex
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

import click

from bot.api_models import ApiError, InvalidBody
from bot.candidates import Origin
from bot.candidates_cli import console_action, console_command, console_help, describe, refusal_lines, store_checked
from bot.config import Config
from bot.console_time import ConsoleScheduler
from bot.core.durations import format_duration, parse_duration
from bot.engine import Actor, Engine, Reply
from commands import dispatch
from commands.actions import on_action, on_deny
from commands.trains import on_hold


@dataclass
class Shown:
    channel: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None


@dataclass
class Button:
    number: int
    action_id: str
    value: str
    label: str


_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")


def _plain(text: str) -> str:
    """mrkdwn as a terminal shows it: mentions as @U…, links as label (url), entities unescaped."""
    text = _MENTION.sub(r"@\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    return html.unescape(text)


def render_blocks(blocks: list[dict[str, Any]], number: Callable[[str, str, str], int]) -> list[str]:
    """Blocks as readable lines; each button gets a number to click."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {_plain(block['text']['text'])} ==")
        elif kind == "section":
            lines.extend(_plain(block["text"]["text"]).splitlines())
        elif kind == "context":
            lines.append("  (" + " ".join(_plain(e.get("text", "")) for e in block.get("elements", [])) + ")")
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    label = element["text"]["text"]
                    n = number(element["action_id"], element.get("value", ""), label)
                    labels.append(f"[{n}] {label}")
            lines.append("  " + "   ".join(labels))
        elif kind == "divider":
            lines.append("  ---")
    return lines


_MAX_STOPS = 10_000  # pause ends and job times one `advance` stops at, at most


@dataclass
class ConsoleNotifier:
    """Prints what the bot would post; keeps buttons so they can be clicked by number."""

    out: TextIO = sys.stdout
    # The prompt while the console waits for input: what arrives meanwhile is printed above it.
    prompt: str | None = None
    messages: dict[str, Shown] = field(default_factory=dict)
    buttons: dict[int, Button] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _number(self, action_id: str, value: str, label: str) -> int:
        n = next(self._numbers)
        self.buttons[n] = Button(n, action_id, value, label)
        return n

    def _print(self, lines: list[str], indent: str) -> None:
        shown = self.prompt
        if shown is not None:
            if self.out.isatty():
                self.out.write("\r\x1b[K")  # over the prompt's line; the prompt is drawn again below the output
            else:
                self.out.write("\n")  # a file or a pipe cannot be redrawn: end the prompt's line, once
                self.prompt = None
        for line in lines:
            self.out.write(f"{indent}{line}\n")
        if shown is not None and self.prompt is not None:
            self.out.write(shown)
        self.out.flush()

    async def post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None) -> str:
        ts = f"{next(self._ts)}.000000"
        self.messages[ts] = Shown(channel, text, blocks, thread_ts)
        indent = "    ↳ " if thread_ts else ""
        head = [f"[#{channel}]"] if thread_ts is None else []
        self._print(head + render_blocks(blocks, self._number), indent)
        return ts

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        shown = self.messages.get(ts)
        if shown is None:
            return
        self.messages[ts] = Shown(channel, text, blocks, shown.thread_ts)
        self._print([f"(message {ts} updated)"] + render_blocks(blocks, self._number), "  ✎ ")

    async def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self._print(render_blocks(blocks, self._number), f"  (only {user} sees) ")

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self._print([f"App Home of {user}:"] + render_blocks(view.get("blocks", []), self._number), "  ⌂ ")

    async def upload(self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str) -> None:
        self._print([f"📎 {filename} ({len(content)} bytes): {title}"], "    ↳ ")

    async def permalink(self, channel: str, ts: str) -> None:
        """None: a message printed in a terminal has no link."""
        return None


class ConsoleDirectory:
    """User groups from a fixed table (the demo's), every user in the configured zone."""

    def __init__(self, config: Config, groups: dict[str, frozenset[str]] | None = None) -> None:
        self.config = config
        self.groups = groups or {}

    async def group_members(self, group_id: str) -> frozenset[str]:
        return self.groups.get(group_id, frozenset())

    async def user_timezone(self, user_id: str) -> str | None:
        return self.config.timezone


def welcome(config: Config, *, user: str, channel: str, version: str | None = None) -> str:
    """What the console says at start and on `help`, its examples drawn from the loaded config: the service of
    ``channel`` and its pipeline (``version``: its newest candidate, if any), another user of its groups (on-call
    first) to act as, and another service's channel to type in."""
    services = config.services
    name = next((n for n, svc in services.items() if svc.channel == channel), next(iter(services)))
    service = services[name]
    first, last = service.pipeline[0], service.pipeline[-1]
    examples = ["`/release status`", f"`/release {first} {version or '1.0.0'}`"]
    if last != first:
        examples.append(f"`/release {last}`")
    images = " ".join(f"--image {c}=IMAGE" for c in service.components[:2]) or "--image COMPONENT=IMAGE"
    if len(service.components) > 2:
        images += " …"
    groups = sorted(config.groups.items(), key=lambda group: group[0] != "oncall")  # on-call first
    other = next(((m, g) for g, members in groups for m in members if m.startswith("U") and m != user), None)
    if other is not None:
        as_user = f"{f'as {other[0]}':<20}act as another Slack user ({other[1]})"
    else:
        as_user = f"{'as USER_ID':<20}act as another Slack user"
    elsewhere = next(((n, svc.channel) for n, svc in services.items() if svc.channel != channel), None)
    if elsewhere is not None:
        in_channel = f"{f'in {elsewhere[1]}':<20}type in {elsewhere[0]}'s channel"
    else:
        in_channel = f"{'in CHANNEL_ID':<20}type in another channel (there, name the service: `/release {name} …`)"
    return "\n".join(
        [
            f"Type a slash command, e.g. {', '.join(examples)}.",
            "Commands answer at once; the work they start runs in the background and prints as it goes.",
            "Other inputs:",
            "  click N [reason]    click button N (a reason is needed to Deny or Hold); a bare N clicks too",
            f"  candidate add {name} VERSION --commit SHA {images} [--test SUITE=passed|failed …]",
            f"  candidate tests {name} VERSION SUITE passed|failed [--url URL]",
            f"  candidate scan {name} VERSION trivy.json    (`candidate add --help` and so on: the details)",
            "  wait                wait until the work in progress is done, or only waits for the clock",
            "  advance 5m          let 5 minutes pass at once (pauses end, steps and checks run in order), then wait",
            "  time                the console's clock",
            f"  {as_user}",
            f"  {in_channel}",
            "  home                show your App Home               help · quit",
        ]
    )


class Console:
    """The read-eval-print loop over the shared handlers.

    A command answers at once; the work it starts (a rollout, an approval carried out, the checks after a
    release) runs in the background, and what it posts is printed when posted. That work waits on ``clock``
    (pauses) and ``scheduler`` (timed work), which ``advance`` moves and ``wait`` waits for.
    """

    def __init__(
        self,
        engine: Engine,
        notifier: ConsoleNotifier,
        scheduler: ConsoleScheduler,
        *,
        user: str,
        channel: str,
    ) -> None:
        self.engine = engine
        self.notifier = notifier
        self.scheduler = scheduler
        self.clock = scheduler.clock
        self.user = user
        self.channel = channel

    def _say(self, *lines: str) -> None:
        self.notifier._print(list(lines), "")

    def _show(self, reply: Reply) -> None:
        prefix = "" if reply.public else f"  (only {self.user} sees) "
        self.notifier._print(render_blocks(reply.message.blocks, self.notifier._number), prefix)

    def _local(self, when: datetime) -> str:
        return when.astimezone(self.engine.config.zone).strftime("%a %d %b %H:%M:%S %Z")

    async def handle(self, line: str) -> bool:
        """Run one input line; False means quit. Returns when the command has answered, not when the work it
        started is done (see :meth:`wait`)."""
        with self.clock.working():  # what the command starts is the console's work, which `wait` waits for
            return await self._handle(line.strip())

    async def _handle(self, line: str) -> bool:
        if not line:
            return True
        word, _, rest = line.partition(" ")
        actor = Actor(user=self.user, channel=self.channel, request_id=f"console-{uuid.uuid4().hex[:12]}")
        if word in {"quit", "exit"}:
            return False
        if word == "help":
            await self._help()
        elif word == "/release":
            self._show(await dispatch(self.engine, actor, rest))
        elif word.startswith("/"):
            self._say(f"unknown command {word}: this bot answers /release")
        elif word == "as" and rest:
            self.user = rest.split()[0]
            self._say(f"you are now {self.user}")
        elif word == "in" and rest:
            self.channel = rest.split()[0]
            self._say(f"you now type in {self.channel}")
        elif word == "home":
            from commands.home import publish_home  # noqa: PLC0415

            await publish_home(self.engine, self.user, remember=False)
        elif word == "click" or word.isdigit():
            await self._click(rest if word == "click" else line)
        elif word == "candidate":
            await self._candidate(rest, actor)
        elif word == "wait":
            await self.wait()
        elif word == "advance":
            await self._advance(rest)
        elif word == "time":
            speed = f"{self.clock.speed:g}× real time" if self.clock.speed else "standing still until `advance`"
            self._say(f"(the console's clock: {self._local(self.clock.now())}, {speed})")
        else:
            self._say("type `help` for what you can do")
        return True

    async def _help(self) -> None:
        config = self.engine.config
        service = next((n for n, svc in config.services.items() if svc.channel == self.channel), None)
        newest = await self.engine.db.candidates(service, 1) if service is not None else []
        version = newest[0].version if newest else None
        self._say(welcome(config, user=self.user, channel=self.channel, version=version))

    async def wait(self) -> None:
        """Wait until the work in progress is done or waits only for the clock; then say when that is."""
        await self.clock.settle()
        next_at = min([*self.clock.sleeping(), *self.scheduler.upcoming()], default=None)
        if next_at is None:
            return
        left = timedelta(seconds=math.ceil(max((next_at - self.clock.now()).total_seconds(), 0.0)))
        self._say(
            f"(waiting for the clock until {self._local(next_at)}, in {format_duration(left)}: "
            f"`advance {format_duration(left)}` gets there)"
        )

    async def _advance(self, text: str) -> None:
        try:
            by = parse_duration(text)
        except ValueError as exc:
            self._say(f"advance: {exc}")
            return
        # Said first: what runs on the way is printed as it happens, and the clock ends there.
        self._say(f"(the clock is now {self._local(self.clock.now() + by)})")
        await self._play_out(by)
        await self.wait()

    async def _play_out(self, by: timedelta) -> None:
        """Move the clock ``by`` forward as time would pass: to each pause's end and each job's time on the way, in
        order, letting what each wakes run (and start its own next pause) before going on — so `advance 1h` plays a
        canary's steps and their checks through, not only the first pause. Bounded, for work that re-arms itself
        at once."""
        target = self.clock.now() + by
        for _ in range(_MAX_STOPS):
            await self.clock.settle()
            now = self.clock.now()
            due = [t for t in (*self.clock.sleeping(), *self.scheduler.upcoming()) if now < t <= target]
            if not due:
                break
            self.clock.advance(min(due) - now)
        self.clock.advance(max(target - self.clock.now(), timedelta(0)))

    async def _candidate(self, text: str, actor: Actor) -> None:
        """``candidate add | tests | scan …``: the command line's words, into the console's own database."""
        try:
            words = shlex.split(text)
        except ValueError as exc:  # an unclosed quote
            self._say(f"candidate: {exc}")
            return
        try:
            action = console_action(words[0] if words else None)
            if "--help" in words[1:]:
                self._say(console_help(action))
                return
            checked = console_command(action, words[1:]).check(self.engine.config)
            origin = Origin(actor=self.user, request_id=actor.request_id or "")
            db = self.engine.db
            answer = await db.run(store_checked, db.sync, checked, self.engine.now(), origin)
        except click.UsageError as exc:
            self._say(f"candidate: {exc.format_message()}")
        except (ApiError, InvalidBody) as exc:
            self._say(*refusal_lines(exc))
        else:
            self._say(*describe(action, answer))

    async def _click(self, args: str) -> None:
        number, _, reason = args.strip().partition(" ")
        button = self.notifier.buttons.get(int(number)) if number.isdigit() else None
        if button is None:
            self._say(f"no button {number}")
            return
        actor = Actor(user=self.user, channel=self.channel, request_id=f"console-click-{number}")
        if button.action_id == "approval_deny":
            if not reason.strip():
                self._say("Deny needs a reason: click N <reason>")
                return
            self._show(await on_deny(self.engine, actor, button.value, reason))
        elif button.action_id == "train_hold":
            if not reason.strip():
                self._say("Hold needs a reason: click N <reason>")
                return
            self._show(await on_hold(self.engine, actor, button.value, reason))
        else:
            self._show(await on_action(self.engine, actor, button.action_id, button.value))

    async def run(self, stdin: TextIO = sys.stdin) -> None:
        loop = asyncio.get_running_loop()
        await self._help()
        while True:
            prompt = f"{self.user}@{self.channel}> "
            self.notifier.out.write(prompt)
            self.notifier.out.flush()
            self.notifier.prompt = prompt
            line = await loop.run_in_executor(None, stdin.readline)
            self.notifier.prompt = None
            if not line or not await self.handle(line):
                break
        # What the last commands started shows before the console goes (a script's output is whole).
        await self.wait()
        if self.clock.sleeping() or self.scheduler.upcoming():
            self._say("(quitting: the work waiting for the clock stops here)")

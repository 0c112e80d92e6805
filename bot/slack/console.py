"""The console adapter: type slash commands, read messages as text, click buttons by number.

It drives the very same command and action handlers as Slack mode; only the edges differ: messages
are printed instead of posted, and the directory is the config's own groups.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from bot.config import Config
from bot.engine import Actor, Engine, Reply
from commands import dispatch
from commands.actions import on_action, on_deny


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


@dataclass
class ConsoleNotifier:
    """Prints what the bot would post; keeps buttons so they can be clicked by number."""

    out: TextIO = sys.stdout
    messages: dict[str, Shown] = field(default_factory=dict)
    buttons: dict[int, Button] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _number(self, action_id: str, value: str, label: str) -> int:
        n = next(self._numbers)
        self.buttons[n] = Button(n, action_id, value, label)
        return n

    def _print(self, lines: list[str], indent: str) -> None:
        for line in lines:
            self.out.write(f"{indent}{line}\n")
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


CONSOLE_HELP = """Type a slash command, e.g. `/release status`, `/release staging 1.4.2`, `/release prod`.
Other inputs:  click N [reason]  — click button N (a reason is needed to Deny)
               as U01ONCALL1    — act as another Slack user   · in C01RELEASES — type in another channel
               home             — show your App Home          · quit"""


class Console:
    """The read-eval-print loop over the shared handlers."""

    def __init__(self, engine: Engine, notifier: ConsoleNotifier, *, user: str, channel: str) -> None:
        self.engine = engine
        self.notifier = notifier
        self.user = user
        self.channel = channel

    def _show(self, reply: Reply) -> None:
        prefix = "" if reply.public else f"  (only {self.user} sees) "
        self.notifier._print(render_blocks(reply.message.blocks, self.notifier._number), prefix)

    async def handle(self, line: str) -> bool:
        """Run one input line; False means quit."""
        line = line.strip()
        if not line:
            return True
        word, _, rest = line.partition(" ")
        actor = Actor(user=self.user, channel=self.channel, request_id=f"console-{id(line)}")
        if word in {"quit", "exit"}:
            return False
        if word == "help":
            self.notifier.out.write(CONSOLE_HELP + "\n")
        elif word == "/release":
            self._show(await dispatch(self.engine, actor, rest))
        elif word.startswith("/"):
            self.notifier.out.write(f"unknown command {word}: this bot answers /release\n")
        elif word == "as" and rest:
            self.user = rest.split()[0]
            self.notifier.out.write(f"you are now {self.user}\n")
        elif word == "in" and rest:
            self.channel = rest.split()[0]
            self.notifier.out.write(f"you now type in {self.channel}\n")
        elif word == "home":
            from commands.home import publish_home  # noqa: PLC0415

            await publish_home(self.engine, self.user, remember=False)
        elif word == "click" or word.isdigit():
            await self._click(rest if word == "click" else line)
        else:
            self.notifier.out.write("type `help` for what you can do\n")
        await self.engine.drain()  # show what the work after the ack produced before the next prompt
        return True

    async def _click(self, args: str) -> None:
        number, _, reason = args.strip().partition(" ")
        button = self.notifier.buttons.get(int(number)) if number.isdigit() else None
        if button is None:
            self.notifier.out.write(f"no button {number}\n")
            return
        actor = Actor(user=self.user, channel=self.channel, request_id=f"console-click-{number}")
        if button.action_id == "approval_deny":
            if not reason.strip():
                self.notifier.out.write("Deny needs a reason: click N <reason>\n")
                return
            self._show(await on_deny(self.engine, actor, button.value, reason))
        else:
            self._show(await on_action(self.engine, actor, button.action_id, button.value))

    async def run(self, stdin: TextIO = sys.stdin) -> None:
        loop = asyncio.get_running_loop()
        self.notifier.out.write(CONSOLE_HELP + "\n")
        while True:
            self.notifier.out.write(f"{self.user}@{self.channel}> ")
            self.notifier.out.flush()
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                break
            if not await self.handle(line):
                break

"""The command table: each grammar entry → its handler. `help` is rendered from the same table.

A handler reads parse → permission → service → view: it gets the parsed command, calls the engine (which asks
the permission table and returns a result), and answers with a Reply of that result rendered by bot.views.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from bot.core.grammar import SPECS, Command, ParseError, Vocabulary, parse
from bot.engine import Actor, Engine, Reply, UserError
from bot.views import render
from bot.views.mrkdwn import escape
from commands import admin, release, summary, window

log = logging.getLogger("release_bot.commands")
Handler = Callable[[Engine, Actor, Command], Awaitable[Reply]]

HANDLERS: dict[str, Handler] = {
    "help": admin.help_command,
    "status": admin.status,
    "release": release.release,
    "deploy": release.release,
    "promote": release.release,
    "rollback": release.rollback,
    "window": window.window,
    "notes": release.notes,
    "history": admin.history,
    "manifest": admin.manifest,
    "lock": admin.lock,
    "unlock": admin.unlock,
    "freeze": admin.freeze,
    "unfreeze": admin.unfreeze,
    "summary": summary.summary,
    "queue": release.queue,
    "cancel": release.cancel,
    "trains": release.trains,
}
assert set(HANDLERS) == set(SPECS), "every grammar entry needs a handler, and only those"


def vocabulary(engine: Engine) -> Vocabulary:
    config = engine.config
    return Vocabulary(frozenset(config.services), frozenset(config.environments))


def parse_command(engine: Engine, text: str, channel: str | None) -> Command:
    """Parse `/release` text in a channel (the channel may imply the service)."""
    channel_service = engine.config.service_for_channel(channel) if channel else None
    return parse(text, vocabulary(engine), channel_service=channel_service)


async def dispatch(engine: Engine, actor: Actor, text: str) -> Reply:
    """Parse and run a `/release` command; every failure becomes a message, never a traceback."""
    try:
        cmd = parse_command(engine, text, actor.channel)
    except ParseError as exc:  # quotes what the user typed: escape it (UserError text is escaped already)
        return Reply(render.refusal(escape(str(exc))))
    return await run_command(engine, actor, cmd, text)


async def run_command(engine: Engine, actor: Actor, cmd: Command, text: str) -> Reply:
    """Run a parsed command (``text``: as typed, for the log), with :func:`dispatch`'s error policy."""
    try:
        return await HANDLERS[cmd.name](engine, actor, cmd)
    except UserError as exc:
        return Reply(render.refusal(str(exc)))
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("command failed (error id %s): %r", error_id, text[:200])
        return Reply(render.crash(error_id))


async def guarded(call: Callable[[], Awaitable[Reply]]) -> Reply:
    """Run a button/modal handler with the same error policy as commands."""
    try:
        return await call()
    except UserError as exc:
        return Reply(render.refusal(str(exc)))
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("action failed (error id %s)", error_id)
        return Reply(render.crash(error_id))

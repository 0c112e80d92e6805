"""Handlers that change what runs: release / deploy / promote, rollback; and release notes."""

from __future__ import annotations

from bot.core.grammar import Command
from bot.engine import Actor, Engine, Reply


async def release(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    return await engine.releases.request_release(actor, cmd)


async def rollback(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None
    return await engine.rollbacks.request_rollback(actor, cmd.service, cmd.env, cmd.version)


async def notes(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return await engine.admin.notes_reply(cmd.service, cmd.version, cmd.range_from)

"""Read-only views and environment administration handlers."""

from __future__ import annotations

from bot.core.grammar import Command
from bot.engine import Actor, Engine, Reply
from bot.views import render


async def help_command(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    return Reply(render.help_message())


async def status(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return await engine.admin.status(cmd.service)


async def history(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return await engine.admin.history_reply(cmd.service, cmd.env, cmd.count)


async def manifest(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return await engine.admin.manifest_reply(cmd.service, cmd.env, cmd.version)


async def lock(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None and cmd.reason is not None
    return await engine.admin.lock(actor, cmd.service, cmd.env, cmd.reason)


async def unlock(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None
    return await engine.admin.unlock(actor, cmd.service, cmd.env)


async def freeze(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None and cmd.until is not None and cmd.reason is not None
    return await engine.admin.freeze(actor, cmd.service, cmd.env, cmd.until, cmd.reason)


async def unfreeze(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None
    return await engine.admin.unfreeze(actor, cmd.service, cmd.env)

"""Read-only views and environment administration handlers: the service answers, bot.views.admin words it."""

from __future__ import annotations

from bot.core.grammar import Command
from bot.engine import Actor, Engine, Reply
from bot.views import admin as view
from bot.views import render


async def help_command(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    return Reply(render.help_message())


async def status(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return Reply(view.status_message(await engine.admin.status(cmd.service), engine.config.zone))


async def history(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return Reply(view.history_message(await engine.admin.history(cmd.service, cmd.env, cmd.count), engine.config.zone))


async def manifest(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    answer = await engine.admin.manifest(cmd.service, cmd.env, cmd.version)
    return Reply(view.manifest_message(answer, engine.config.zone))


async def lock(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None and cmd.reason is not None
    return Reply(view.locked_message(await engine.admin.lock(actor, cmd.service, cmd.env, cmd.reason)), public=True)


async def unlock(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None
    return Reply(view.unlocked_message(await engine.admin.unlock(actor, cmd.service, cmd.env)), public=True)


async def freeze(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None and cmd.until is not None and cmd.reason is not None
    frozen = await engine.admin.freeze(actor, cmd.service, cmd.env, cmd.until, cmd.reason)
    return Reply(view.frozen_message(frozen), public=True)


async def unfreeze(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None
    return Reply(view.unfrozen_message(await engine.admin.unfreeze(actor, cmd.service, cmd.env)), public=True)

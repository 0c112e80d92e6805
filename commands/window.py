"""`/release window [env]`: open or closed, why, and the next opening in your zone too."""

from __future__ import annotations

from bot.core.grammar import Command
from bot.engine import Actor, Engine, Reply
from bot.views.admin import windows_message


async def window(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return Reply(windows_message(await engine.admin.window(actor, cmd.service, cmd.env), engine.config.zone))

"""`/release summary [day|week]`: the release summary with DORA figures, shown to you now."""

from __future__ import annotations

from bot.core.grammar import Command
from bot.engine import Actor, Engine, Reply


async def summary(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    return await engine.summaries.summary_reply(cmd.period or "day")

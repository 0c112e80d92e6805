"""`/release summary [day|week]`: the release summary with DORA figures, shown to you now."""

from __future__ import annotations

from bot.core.grammar import Command
from bot.engine import Actor, Engine, Reply
from bot.views.summary import Period, summary_message


async def summary(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    period: Period = "week" if cmd.period == "week" else "day"
    return Reply(summary_message(await engine.summaries.summary(period), engine.config.zone))

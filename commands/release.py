"""Handlers that change what runs: release / deploy / promote, rollback; and release notes."""

from __future__ import annotations

from bot.core.grammar import Command
from bot.engine import Actor, Engine, Reply
from bot.engine.requests import AwaitingApproval, Started
from bot.views import requests as request_views
from bot.views import scheduled as scheduled_views
from bot.views import trains as train_views
from bot.views.admin import notes_message


async def release(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    if cmd.at is not None:
        row = await engine.schedules.schedule(actor, cmd)
        return Reply(scheduled_views.scheduled(row, engine.config.zone))
    match await engine.releases.request_release(actor, cmd):
        case Started(running):
            return Reply(request_views.started(running))
        case AwaitingApproval(waiting):
            return Reply(request_views.awaiting_approval(waiting))


async def queue(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    rows = await engine.schedules.queue(cmd.service)
    scheduled = scheduled_views.queue(cmd.service, rows, engine.config.zone)
    return Reply(train_views.queue(scheduled, await engine.trains.outlook(cmd.service), engine.config.zone))


async def trains(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    """`/release trains`: every train, or in a service's channel the trains carrying that service."""
    return Reply(train_views.trains_message(await engine.trains.outlook(cmd.service), engine.config.zone))


async def cancel(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.number is not None
    row = await engine.schedules.cancel(actor, cmd.service, cmd.number)
    return Reply(scheduled_views.cancelled(row, engine.config.zone))


async def rollback(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None and cmd.env is not None
    return await engine.rollbacks.request_rollback(actor, cmd.service, cmd.env, cmd.version)


async def notes(engine: Engine, actor: Actor, cmd: Command) -> Reply:
    assert cmd.service is not None
    return Reply(notes_message(await engine.admin.notes(cmd.service, cmd.version, cmd.range_from)))

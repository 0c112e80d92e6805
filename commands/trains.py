"""The Hold button of a train's boarding call and its reason form (Leave off is routed with the other buttons in
commands/actions.py; `/release trains` is in commands/release.py beside the queue)."""

from __future__ import annotations

from bot.engine import Actor, Engine, Reply, UserError
from bot.views import trains as view
from commands import guarded

OPEN_MODAL = Reply(view.info_opening_form())


def _id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise UserError("that button is not one of ours.")
    return int(value)


async def hold_refusal(engine: Engine, actor: Actor, departure_id: str) -> Reply | None:
    """The Hold button: a refusal to show instead of the reason form, or None to open the form."""

    async def run() -> Reply:
        await engine.trains.may_hold(actor, _id(departure_id))
        return OPEN_MODAL

    reply = await guarded(run)
    return None if reply is OPEN_MODAL else reply


async def on_hold(engine: Engine, actor: Actor, departure_id: str, reason: str) -> Reply:
    """The hold form was submitted with a reason."""

    async def run() -> Reply:
        dep = await engine.trains.hold(actor, _id(departure_id), reason)
        return Reply(view.you_held(dep, engine.config.zone))

    return await guarded(run)

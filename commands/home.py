"""App Home: per service what runs where, locks, windows, approvals you can act on, freezes ahead."""

from __future__ import annotations

from typing import Any

from bot.core.window_text import format_local
from bot.engine import Engine
from bot.slack.render_home import EnvRow, ServiceRow, home_view


async def home_for(engine: Engine, user: str) -> dict[str, Any]:
    """Build the Home view for ``user``."""
    db, zone = engine.db, engine.config.zone
    services = []
    for name, svc in engine.config.services.items():
        states = {s.env: s for s in await db.run(db.sync.env_states, name)}
        rows = []
        for env in svc.pipeline:
            state = states.get(env)
            lock = await db.run(db.sync.lock_of, name, env) or await db.run(db.sync.manual_lock, name, env)
            decision = await engine.window(name, env)
            if decision.open:
                text = "open" + (f" until {format_local(decision.next_close, zone)}" if decision.next_close else "")
            else:
                opening = format_local(decision.next_open, zone) if decision.next_open else "not within a year"
                text = f"closed ({decision.reasons[0].text if decision.reasons else 'closed'}); opens {opening}"
            rows.append(
                EnvRow(
                    env=env,
                    version=state.version if state else None,
                    since=state.since if state else None,
                    by=state.by if state else None,
                    locked=f"{lock.holder}: {lock.reason}" if lock else None,
                    window_open=decision.open,
                    window_text=text,
                )
            )
        services.append(ServiceRow(service=name, envs=rows))
    approvals = []
    for approval in await db.run(db.sync.pending_approvals, None):
        if approval.requester != user and (
            not approval.eligible_groups or await engine.in_groups(user, approval.eligible_groups)
        ):
            approvals.append(approval)
    freezes = [line.removeprefix("• ") for line in await engine.closed_ahead(engine.now())]
    return home_view(services, approvals, freezes, zone)


async def publish_home(engine: Engine, user: str) -> None:
    await engine.deps.notifier.publish_home(user, await home_for(engine, user))

"""Read-only views and environment administration: status, window, history, manifest, notes, locks, freezes."""

from __future__ import annotations

import asyncio
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Config
from bot.core.notes import ReleaseNotes, build_release_notes
from bot.core.windows import adhoc_until
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.gates import Gates
from bot.engine.story import Story
from bot.policy.permissions import Action
from bot.ports import Directory, SourceLookup
from bot.sources.base import SourceError
from bot.views import render
from bot.views.mrkdwn import escape
from bot.views.notes import notes_blocks
from bot.views.windows import closed_reason, window_mrkdwn


class Admin:
    """What each environment runs and may run, and its administration: locks and freezes."""

    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        gate: Gatekeeper,
        gates: Gates,
        sources: SourceLookup,
        directory: Directory,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.gate = gate
        self.gates = gates
        self.windows = gates.windows
        self.sources = sources
        self.directory = directory

    async def status(self, service: str) -> Reply:
        """Each environment: what runs, since when, by whom, locks, and the window — one store trip."""
        zone = self.config.zone
        state_rows, locks, freezes = await self.db.read(lambda store: store.status_snapshot(service))
        states = {s.env: s for s in state_rows}
        now = self.story.now()
        lines = []
        for env in self.config.services[service].pipeline:
            state = states.get(env)
            running = (
                f"*{escape(state.version)}* since {render.when(state.since, zone)} by {render.user(state.by)}"
                if state
                else "_nothing released yet_"
            )
            decision = self.windows.decide(env, now, freezes)
            window = (
                "🟢 open" if decision.open else "🔴 closed: " + "; ".join(closed_reason(r) for r in decision.reasons)
            )
            extras = []
            for lock in (lock for lock in locks if lock.env == env):
                if lock.kind == "release":
                    extras.append(f"🔒 {escape(lock.reason)} ({render.user(lock.holder)})")
                else:
                    extras.append(f"🔒 locked by {render.user(lock.holder)}: {escape(lock.reason)}")
            lines.append(f"*{env}* — {running}\n    window {window}" + "".join(f"\n    {e}" for e in extras))
        message = render.Message(
            text=f"Status of {service}",
            blocks=[render.header(f"{service} status"), render.section("\n".join(lines))],
        )
        return Reply(message)

    async def window_reply(self, actor: Actor, service: str, env: str | None) -> Reply:
        envs = [env] if env else self.config.services[service].pipeline
        user_zone = await self._user_zone(actor.user)
        freezes, now = await self.gates.adhoc_freezes(service), self.story.now()
        texts = [window_mrkdwn(self.windows.decide(e, now, freezes), self.config.zone, user_zone) for e in envs]
        return Reply(render.Message(text=texts[0], blocks=[render.section(t) for t in texts]))

    async def _user_zone(self, user: str) -> ZoneInfo | None:
        try:
            name = await self.directory.user_timezone(user)
            zone = ZoneInfo(name) if name else None
        except (ZoneInfoNotFoundError, ValueError):
            return None
        except Exception:
            return None
        return None if zone is None or zone.key == self.config.zone.key else zone

    async def history_reply(self, service: str, env: str | None, count: int | None) -> Reply:
        releases = await self.db.history(service, env, count or 10)
        return Reply(render.history_message(service, env, releases, self.config.zone))

    async def manifest_reply(self, service: str, env: str | None, version: str | None) -> Reply:
        lines = []
        if version is not None:
            candidate = await self.db.get_candidate(service, version)
            if candidate is None:
                raise UserError(f"{escape(version)} is not a known {service} candidate.")
            lines.append(f"*{service} {escape(version)}* · commit `{escape(candidate.commit[:12])}`")
            lines += [f"• {escape(n)}: `{escape(ref)}`" for n, ref in sorted(candidate.components.items())]
        else:
            for e in [env] if env else self.config.services[service].pipeline:
                state = await self.db.env_state(service, e)
                if state is None:
                    lines.append(f"*{e}*: nothing released yet")
                    continue
                candidate = await self.db.get_candidate(service, state.version)
                commit = candidate.commit[:12] if candidate else "?"
                lines.append(
                    f"*{e}*: {escape(state.version)} · commit `{escape(commit)}` · released "
                    f"{render.when(state.since, self.config.zone)} by {render.user(state.by)}"
                )
                for name, ref in sorted((candidate.components if candidate else {}).items()):
                    lines.append(f"    • {escape(name)}: `{escape(ref)}`")
        return Reply(
            render.Message(
                text=f"Manifest of {service}",
                blocks=[render.header(f"{service} manifest"), render.section("\n".join(lines))],
            )
        )

    async def notes_reply(self, service: str, version: str | None, range_from: str | None) -> Reply:
        if version is None:
            latest = await self.db.history(service, None, 1)
            if not latest:
                raise UserError(f"no releases of {service} yet.")
            version = latest[0].version
        if range_from is not None:
            source = self.sources(service)
            start = await self.db.get_candidate(service, range_from)
            end = await self.db.get_candidate(service, version)
            if source is None or start is None or end is None:
                raise UserError("both ends of the range must be known candidates of a service with a repository.")
            try:
                commits = await source.commits_between(start.commit, end.commit)
            except SourceError as exc:
                raise UserError(f"release notes unavailable: {escape(exc.reason)}") from None
            # Grouping thousands of commits takes ~100 ms: keep it off the event loop.
            notes = await asyncio.to_thread(build_release_notes, commits, pr_url_base=source.pr_url_base)
        else:
            found = await self.db.release_with_notes(service, version)
            if found is None or found.notes is None:
                raise UserError(f"no release notes stored for {escape(version)}.")
            notes = ReleaseNotes.from_dict(found.notes)
        blocks = [
            render.header(f"{service} {version} release notes"),
            *notes_blocks(notes, full_notes_url=None),
        ]
        return Reply(render.Message(text=f"Release notes for {service} {version}", blocks=blocks))

    async def lock(self, actor: Actor, service: str, env: str, reason: str) -> Reply:
        await self.gate.require(Action.LOCK, actor.user, env)
        existing = await self.db.set_manual_lock(service, env, actor.user, reason, self.story.now())
        if existing is not None:
            raise UserError(f"{env} is already locked by {render.user(existing.holder)}: {escape(existing.reason)}")
        await self.story.audit(actor, "env.locked", f"{service}/{env}", reason=reason)
        await self.story.changed(service)
        return Reply(
            render.info(f"🔒 {service} {env} is locked by {render.user(actor.user)}: {escape(reason)}"),
            public=True,
        )

    async def unlock(self, actor: Actor, service: str, env: str) -> Reply:
        existing = await self.db.manual_lock(service, env)
        if existing is None:
            raise UserError(f"{env} is not locked.")
        await self.gate.require(Action.UNLOCK, actor.user, env, Context(lock_holder=existing.holder))
        await self.db.clear_manual_lock(service, env)
        await self.story.audit(actor, "env.unlocked", f"{service}/{env}", was=existing.reason)
        await self.story.changed(service)
        return Reply(render.info(f"🔓 {service} {env} is unlocked."), public=True)

    async def freeze(self, actor: Actor, service: str, env: str, until: date, reason: str) -> Reply:
        await self.gate.require(Action.FREEZE, actor.user, env)
        if until < self.story.now().astimezone(self.config.zone).date():
            raise UserError("that date has passed; a freeze must end today or later.")
        end = adhoc_until(until, self.config.zone)
        await self.db.set_freeze(service, env, end, reason, actor.user, self.story.now())
        await self.story.audit(actor, "env.frozen", f"{service}/{env}", until=until.isoformat(), reason=reason)
        await self.story.changed(service)
        return Reply(
            render.info(f"🧊 {service} {env} is frozen through {until:%a %d %b %Y}: {escape(reason)}"),
            public=True,
        )

    async def unfreeze(self, actor: Actor, service: str, env: str) -> Reply:
        freeze = next((f for f in await self.gates.adhoc_freezes(service) if f.environment == env), None)
        if freeze is None:
            raise UserError(f"{env} has no ad-hoc freeze.")
        await self.gate.require(Action.UNFREEZE, actor.user, env, Context(freezer=freeze.by))
        if not await self.db.clear_freeze(service, env):
            raise UserError(f"{env} has no ad-hoc freeze.")
        await self.story.audit(actor, "env.unfrozen", f"{service}/{env}")
        await self.story.changed(service)
        return Reply(render.info(f"{service} {env} is no longer frozen."), public=True)

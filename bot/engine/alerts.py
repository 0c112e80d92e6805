"""Alertmanager's alerts: record them, tell the release thread (or the service's channel), and act per ``on_alert``.

``POST /api/v1/alerts`` hands :meth:`Alerts.receive` the checked alerts of one webhook call. The store decides
in one transaction what is news (bot/store/alerts.py: repeats and grouped copies are not) and which release an
incident belongs to (one rolling out when it started, or in whose watch window it started); this service then
posts or edits each changed incident's one message and, under ``on_alert: auto_rollback``, presses **Roll back
now** as the bot: the very button path a person's click takes (CheckActions.check_action, ``check_rollback``
with its claim and permission) — a live release is rolled back through bot/engine/rollbacks.py with its
admission, a release still rolling out has its rollout stopped as a failed verify step stops it
(Rollouts.request_stop) — so the button and the bot never act twice.

Webhook calls are handled one at a time (Alertmanager may post several groups at once): a resolve that
arrives right after its firing then always finds the firing's message to edit.

The store commits a call's alerts before anything is told, so telling must survive its own failures: each
incident is told on its own (one failure neither aborts the others nor loses them), and every call — and every
start (:meth:`Alerts.recover`) — also finishes what an earlier one left undone for the incidents of the last day:
a message never posted, an ``auto_rollback`` never asked (``incidents.rollback_asked_at``, set only once the
rollback path took the ask; its ``check_rollback`` claim makes asking twice harmless). A call that could not tell
everything answers 500, so Alertmanager retries it soon, and the retry (a repeat: no news) finishes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.alerts_models import CheckedAlert, CheckedAlerts, Incident
from bot.config import Config
from bot.core.models import Release, ReleaseState
from bot.engine.base import Actor, Reply, system_actor
from bot.engine.check_actions import CheckActions
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.runner import ACTIVE
from bot.engine.story import Story
from bot.policy.permissions import Action
from bot.store.alerts import IncidentNews
from bot.views import alerts as alert_views
from bot.views import rollbacks as rollback_views

__all__ = ["Alerts"]

log = logging.getLogger("release_bot.alerts")
RECOVER_WITHIN = timedelta(days=1)  # an incident older than this without a message is history, not news


class Alerts:
    def __init__(self, *, config: Config, story: Story, gate: Gatekeeper, check_actions: CheckActions) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.notifier = story.notifier
        self.gate = gate
        # The buttons' own service, so the bot's auto_rollback takes the path a click takes (no second one).
        self.buttons = check_actions
        self._serial = asyncio.Lock()  # one webhook call (or message edit) at a time: see the module docstring

    async def receive(self, alerts: Sequence[CheckedAlert], request_id: str | None = None) -> dict[str, Any]:
        """Record one webhook call's alerts and tell what changed; the answer's body (what each incident did, and
        the alerts skipped for naming no configured service or environment).

        Raises (the call answers 500, Alertmanager retries) when an incident could not be told; every other
        incident of the call was told, and the retry finishes the one left."""
        skipped = alerts.skipped if isinstance(alerts, CheckedAlerts) else ()
        for item in skipped:
            log.warning("alert %s skipped (nothing stored): %s", item.fingerprint, item.reason)
        watch = {name: env.watch for name, env in self.config.environments.items()}
        async with self._serial:
            news = await self.db.ingest_alerts(list(alerts), watch, self.story.now())
            failed = [n.incident.id for n in news if not await self._tell_one(n, request_id)]
            failed += await self._finish_undone(request_id, skip={n.incident.id for n in news})
        if failed:
            raise RuntimeError(f"incidents {failed} were not fully told; Alertmanager's retry finishes them")
        return {
            "alerts": len(alerts) + len(skipped),
            "incidents": [
                {"id": n.incident.id, "release_id": n.incident.release_id, "changes": sorted(n.what)} for n in news
            ],
            "skipped": [{"fingerprint": item.fingerprint, "reason": item.reason} for item in skipped],
        }

    async def _tell_one(self, news: IncidentNews, request_id: str | None) -> bool:
        """Tell one incident's news; False (logged) if it failed, so the others are still told."""
        try:
            await self._tell(news, request_id)
        except Exception:
            log.exception("could not tell incident %s (%s)", news.incident.id, ", ".join(sorted(news.what)))
            return False
        return True

    async def _tell(self, news: IncidentNews, request_id: str | None) -> None:
        incident = news.incident
        actor = system_actor(request_id)
        if "opened" in news.what:
            await self.story.audit(
                actor, "incident.opened", f"incident:{incident.id}", release_id=incident.release_id, source="alert"
            )
        if "resolved" in news.what:
            await self.story.audit(actor, "incident.resolved", f"incident:{incident.id}")
        release = await self.db.get_release(incident.release_id) if incident.release_id is not None else None
        await self._show(incident, release)
        if "opened" in news.what and release is not None and self._on_alert(incident) == "auto_rollback":
            await self._auto_rollback(release, incident, request_id, retry=False)

    async def recover(self) -> None:
        """On start: finish what the webhook calls of the last day left undone (the bot stopped between recording
        a call's alerts and telling them, or Slack refused the post): post the messages never posted, and ask the
        ``auto_rollback`` never asked of a release still live or rolling out."""
        async with self._serial:
            failed = await self._finish_undone(None, skip=set())
        if failed:
            log.error("incidents %s are still not fully told; the next webhook call tries again", failed)

    async def _finish_undone(self, request_id: str | None, skip: set[int]) -> list[int]:
        """What earlier calls left undone for the incidents of the last day (not those in ``skip``, just told):
        a message never posted, an ``auto_rollback`` never asked. The incidents that failed again (logged)."""
        since = self.story.now() - RECOVER_WITHIN
        failed: list[int] = []
        for incident in await self.db.unshown_incidents(since):
            if incident.id in skip:
                continue
            try:
                release = await self.db.get_release(incident.release_id) if incident.release_id is not None else None
                await self._show(incident, release)
            except Exception:
                log.exception("could not post the message of incident %s", incident.id)
                failed.append(incident.id)
        auto = [name for name, env in self.config.environments.items() if env.on_alert == "auto_rollback"]
        for incident in await self.db.rollbacks_unasked(auto, since):
            if incident.id in skip or incident.release_id is None:
                continue
            try:
                release = await self.db.get_release(incident.release_id)
                if release is not None:
                    await self._auto_rollback(release, incident, request_id, retry=True)
            except Exception:
                log.exception("could not ask the auto_rollback of incident %s", incident.id)
                failed.append(incident.id)
        return failed

    def _on_alert(self, incident: Incident) -> alert_views.OnAlert:
        return self.config.environments[incident.env].on_alert

    async def _show(self, incident: Incident, release: Release | None) -> None:
        """Post the incident's message (the first time) or edit it to show the incident as it is now."""
        alerts = await self.db.incident_alerts(incident.id)
        last = None
        if release is None:
            state = await self.db.env_state(incident.service, incident.env)
            last = alert_views.LastRelease(state.version, state.since) if state is not None else None
        ctx = alert_views.AlertContext(
            on_alert=self._on_alert(incident),
            release_version=release.version if release else None,
            release_finished_at=release.finished_at if release else None,
            last_release=last,
            groups=self.config.groups,
            approvers=self.gate.who(incident.env).rollback_approvers,
            rolling_out=release is not None and release.state in ACTIVE,
        )
        message = alert_views.incident_message(incident, alerts, ctx, zone=self.config.zone, now=self.story.now())
        try:
            if incident.channel is not None and incident.ts is not None:
                await self.notifier.update(incident.channel, incident.ts, message.text, message.blocks)
                return
            # In a watch window: the release's thread. Outside every window, or when the release has no thread
            # (its parent message could not be posted): the service's channel.
            channel = release.channel if release is not None and release.channel else None
            thread_ts = release.thread_ts if channel is not None and release is not None else None
            channel = channel or self.config.services[incident.service].channel
            ts = await self.notifier.post(channel, message.text, message.blocks, thread_ts=thread_ts)
        except Exception:
            log.exception("could not show incident %s", incident.id)
            return
        await self.db.set_incident_message(incident.id, channel, ts, thread_ts)

    async def _auto_rollback(
        self, release: Release, incident: Incident, request_id: str | None, *, retry: bool
    ) -> None:
        """``on_alert: auto_rollback``: the bot presses Roll back now, once per release: a live release is rolled
        back, one still rolling out has its rollout stopped (as a failed verify step stops it).

        ``retry``: an earlier call opened the incident and did not get this far (or was refused). A refusal
        then is logged, not posted: the thread already says so, or the ask was made and only its mark was lost."""
        if release.state is not ReleaseState.SUCCEEDED and release.state not in ACTIVE:
            return  # failed, rolled back or replaced already: nothing of it to undo
        why = f"rollout stopped: alert fired during it (incident {incident.id}, on_alert: auto_rollback)"
        try:
            await self.buttons.check_action(system_actor(request_id), release.id, "check_rollback", why=why)
        except UserError as refused:
            if str(refused) == rollback_views.already_requested():
                # The check_rollback claim is held: this release's rollback was asked (by the bot before its
                # mark was lost, or by a person's click): the ask is done.
                await self.db.set_rollback_asked(incident.id, self.story.now())
            if retry:
                log.warning("auto_rollback of incident %s (release %s) refused: %s", incident.id, release.id, refused)
                return
            await self.story.reply(release, alert_views.auto_rollback_refused(str(refused)))
            return
        await self.db.set_rollback_asked(incident.id, self.story.now())

    async def acknowledge(self, actor: Actor, incident_id: int) -> Reply:
        """The Acknowledge button: on-call says they are on it; once, while the incident is open."""
        incident = await self.db.incident(incident_id)
        if incident is None:
            raise UserError(alert_views.incident_gone())
        await self.gate.require(Action.ALERT_ACK, actor.user, incident.env, Context(system=actor.system))
        if incident.resolved_at is not None:
            raise UserError(alert_views.incident_resolved_already())
        if not await self.db.acknowledge_incident(incident_id, actor.user, self.story.now()):
            now = await self.db.incident(incident_id)
            if now is not None and now.resolved_at is not None and now.acknowledged_by is None:
                raise UserError(alert_views.incident_resolved_already())
            raise UserError(alert_views.already_acknowledged(now.acknowledged_by if now else None))
        await self.story.audit(actor, "incident.acknowledged", f"incident:{incident_id}")
        async with self._serial:
            fresh = await self.db.incident(incident_id)
            if fresh is not None:
                release = await self.db.get_release(fresh.release_id) if fresh.release_id is not None else None
                await self._show(fresh, release)
        return Reply(alert_views.acknowledged_reply())

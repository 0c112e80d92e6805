"""What an Alertmanager incident looks like in Slack, and what its Acknowledge button answers. Pure.

One message per incident, edited as it changes (another alert joins, it is acknowledged, it resolves), so a
group of alerts never floods a thread. During a release's rollout or in its watch window it replies in the
release's thread, pings the rollback approvers (on-call) and, per ``on_alert``, offers **Roll back now** — the
very button a failed check offers (``check_rollback``, with its permission and at-most-once claim; while the
release still rolls out it stops the rollout, as a failed verify step does) — and **Acknowledge**. Outside
every watch window it goes to the service's channel with the last release and how long ago it was.

Alert names and summaries come from Alertmanager (outside text): escaped here, like every name and version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.alerts_models import Incident, StoredAlert
from bot.core.dora import format_duration
from bot.views.mrkdwn import escape
from bot.views.render import (
    Message,
    actions,
    button,
    context,
    group_mentions,
    info,
    section,
    thread_reply,
    user,
    when,
)

__all__ = [
    "ACK_ACTION",
    "AlertContext",
    "LastRelease",
    "acknowledged_reply",
    "already_acknowledged",
    "ago",
    "auto_rollback_refused",
    "incident_gone",
    "incident_message",
    "incident_resolved_already",
    "last_release_text",
    "rollout_not_stoppable",
    "rollout_stopping",
    "rollout_stopping_reply",
]

ACK_ACTION = "alert_ack"
OnAlert = Literal["offer_rollback", "auto_rollback", "notify"]
_MAX_LISTED = 10  # alerts listed in one message; the rest are counted


@dataclass(frozen=True)
class LastRelease:
    """What last finished in the environment (for an alert outside every watch window)."""

    version: str
    at: datetime


@dataclass(frozen=True)
class AlertContext:
    """Everything an incident's message says besides the incident and its alerts."""

    on_alert: OnAlert
    release_version: str | None  # the release whose watch window it started in
    release_finished_at: datetime | None
    last_release: LastRelease | None  # outside every watch window: what ran there last
    groups: Mapping[str, Sequence[str]]  # the config's groups, for the on-call ping
    approvers: Sequence[str]  # the groups pinged in a watch window (rollback approvers)
    rolling_out: bool = False  # the release is still rolling out (queued, deploying, verifying) as this is shown


def ago(elapsed: timedelta) -> str:
    """How long ago, for people: ``just now``, ``37 min``, ``2 h 5 min``, ``3 days``."""
    minutes = int(elapsed.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {rest} min" if rest else "")
    return f"{hours // 24} days"


def last_release_text(last: LastRelease | None, now: datetime) -> str:
    """``last release: 1.4.2, 37 min ago`` (or that there was none)."""
    if last is None:
        return "no release here yet"
    return f"last release: {escape(last.version)}, {ago(now - last.at)} ago"


def _alert_line(alert: StoredAlert, zone: ZoneInfo) -> str:
    state = "🔥 firing" if alert.firing else "✅ resolved"
    line = f"• *{escape(alert.name)}* — {state} since {when(alert.starts_at, zone)}"
    if not alert.firing and alert.ends_at is not None:
        line = (
            f"• *{escape(alert.name)}* — {state} (fired {when(alert.starts_at, zone)} to {when(alert.ends_at, zone)})"
        )
    if alert.summary:
        line += f": {escape(alert.summary)}"
    return line


def incident_message(
    incident: Incident, alerts: Sequence[StoredAlert], ctx: AlertContext, *, zone: ZoneInfo, now: datetime
) -> Message:
    """The incident as it is now: firing (with its buttons) or resolved (without), acknowledged or not."""
    where = f"{escape(incident.service)} {escape(incident.env)}"
    names = sorted({a.name for a in alerts}) or ["alert"]
    title = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    lines = [_alert_line(a, zone) for a in alerts[:_MAX_LISTED]]
    if len(alerts) > _MAX_LISTED:
        lines.append(f"…and {len(alerts) - _MAX_LISTED} more alerts")
    in_window = incident.release_id is not None
    during = ctx.release_finished_at is None or incident.started_at < ctx.release_finished_at
    if in_window and during:
        about = f"during the rollout of {escape(ctx.release_version or '?')}"
    elif in_window:
        after = ""
        if ctx.release_finished_at is not None:
            after = f", {ago(incident.started_at - ctx.release_finished_at)} after it finished"
        about = f"in the watch window of {escape(ctx.release_version or '?')}{after}"
    else:
        about = last_release_text(ctx.last_release, now)
    blocks = []
    if incident.resolved_at is not None:
        lasted = format_duration(incident.resolved_at - incident.started_at)
        text = f"✅ Resolved: {title} for {where} (lasted {lasted})"
        blocks.append(section(f"✅ *Resolved* — {escape(title)} for {where}, after {lasted} ({about})."))
    else:
        text = f"🚨 Alert firing: {title} for {where}"
        ping = group_mentions(ctx.groups, ctx.approvers) if in_window else ""
        head = f"{ping} " if ping else ""
        blocks.append(section(f"{head}🚨 *Alert firing* — {escape(title)} for {where} ({about})."))
    blocks.append(section("\n".join(lines)))
    if incident.acknowledged_by is not None:
        blocks.append(context(f"👀 Acknowledged by {user(incident.acknowledged_by)}."))
    if incident.resolved_at is None:
        if in_window and ctx.on_alert == "auto_rollback":
            asked = "to stop its rollout" if during else "to roll this release back"
            blocks.append(context(f"`on_alert: auto_rollback`: the bot asked {asked}."))
        elif in_window and ctx.on_alert == "notify":
            blocks.append(context("`on_alert: notify`: no rollback is offered here; `/release rollback` still works."))
        elif in_window and ctx.rolling_out:
            stops = "*Roll back now* stops the rollout after its current step and returns traffic"
            blocks.append(context(f"{stops}, as a failed check between steps does (no approvals to wait for)."))
        buttons = []
        if in_window and ctx.on_alert == "offer_rollback" and incident.release_id is not None:
            buttons.append(button("Roll back now", "check_rollback", str(incident.release_id), "danger"))
        if incident.acknowledged_by is None:
            buttons.append(button("Acknowledge", ACK_ACTION, str(incident.id)))
        if buttons:
            blocks.append(actions(f"alert:{incident.id}", *buttons))
    return Message(text=text, blocks=blocks)


def incident_gone() -> str:
    """Acknowledge under an incident the store does not know (a tampered value)."""
    return "that alert is not one the bot knows about; nothing was done."


def incident_resolved_already() -> str:
    """Acknowledge pressed after the incident resolved (a stale button)."""
    return "that alert has resolved already; nothing to acknowledge."


def already_acknowledged(by: str | None) -> str:
    """Acknowledge pressed again (by anyone)."""
    return f"already acknowledged by {user(by)}; nothing more was done."


def acknowledged_reply() -> Message:
    return info("Acknowledged: the alert's message now says you are on it.")


def auto_rollback_refused(reason: str) -> Message:
    """``on_alert: auto_rollback`` asked, and the rollback path refused (its words, plain text: escaped)."""
    return info(f"⚠️ The automatic rollback after this alert was refused: {escape(reason)}")


def rollout_stopping(by: str, previous: str | None) -> Message:
    """In the thread: someone (or the bot, under ``on_alert: auto_rollback``) stopped a rollout under way."""
    back = f"to {escape(previous)}" if previous else "to what ran before"
    return thread_reply(
        f"⛔ {user(by)} stopped the rollout: it stops after its current step and traffic returns {back}, "
        "as when a check fails."
    )


def rollout_stopping_reply(version: str) -> Message:
    return info(f"Stopping the rollout of {escape(version)}: traffic returns after its current step.")


def rollout_not_stoppable(version: str) -> str:
    """Roll back now under a release whose rollout is on hold or finishing this instant (nothing to stop yet)."""
    return (
        f"the rollout of {escape(version)} is between steps (finishing, or on hold); nothing was done — "
        "click again in a moment to roll it back."
    )

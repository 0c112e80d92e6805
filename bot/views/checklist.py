"""A release checklist as the lines a person reads in Slack. Pure."""

from __future__ import annotations

from bot.core.checklist import ChecklistResult
from bot.views.mrkdwn import escape
from bot.views.render import user

__all__ = ["checklist_lines"]


def checklist_lines(result: ChecklistResult) -> list[str]:
    """One mrkdwn line per item: ``✅ reason``, ``❌ reason``, ``⚠️ overridden by <@U…> (why): reason``.

    Reasons are mrkdwn already (the checklist escapes what came from outside); the override's reason was
    typed by a person and is escaped here.
    """
    lines: list[str] = []
    for item in result.items:
        if item.ok:
            lines.append(f"✅ {item.reason}")
        elif item.overridden_by is not None:
            why = f" ({escape(item.override_reason)})" if item.override_reason else ""
            lines.append(f"⚠️ overridden by {user(item.overridden_by)}{why}: {item.reason}")
        else:
            lines.append(f"❌ {item.reason}")
    return lines

"""The App Home dashboard as a pure function of plain data (≤ 100 blocks, as Slack requires)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.models import Approval
from bot.core.mrkdwn import escape
from bot.slack import render

MAX_BLOCKS = 100


@dataclass(frozen=True)
class EnvRow:
    env: str
    version: str | None
    since: datetime | None
    by: str | None
    locked: str | None  # who holds it and why, or None
    window_open: bool
    window_text: str


@dataclass(frozen=True)
class ServiceRow:
    service: str
    envs: Sequence[EnvRow]


def home_view(
    services: Sequence[ServiceRow],
    approvals: Sequence[Approval],
    freezes: Sequence[str],
    zone: ZoneInfo,
) -> dict[str, Any]:
    """The Home tab: what runs where, locks and windows, approvals the user can act on, freezes ahead."""
    blocks: list[dict[str, Any]] = [render.header("Releases")]
    if approvals:
        blocks.append(render.section(f"*Waiting for your decision ({len(approvals)})*"))
        for approval in approvals[:10]:
            title = escape(str(approval.subject.get("title", "Approval")))
            blocks.append(render.section(f"{title}\nRequested by {render.user(approval.requester)}"))
            blocks.append(
                render.actions(
                    f"home-approval:{approval.id}",
                    render.button("Approve", "approval_approve", str(approval.id), "primary"),
                    render.button("Deny", "approval_deny", str(approval.id), "danger"),
                )
            )
    budget = MAX_BLOCKS - len(blocks) - 3  # keep room for freezes and the footer
    shown = 0
    for row in services:
        if budget < 2:
            break
        lines = []
        for env in row.envs:
            running = (
                f"{escape(env.version)} since {render.when(env.since, zone)} by {render.user(env.by)}"
                if env.version
                else "nothing yet"
            )
            window = "🟢" if env.window_open else "🔴"
            lock = f" · 🔒 {escape(env.locked)}" if env.locked else ""
            lines.append(f"*{escape(env.env)}*: {running} · {window} {escape(env.window_text)}{lock}")
        blocks.append({"type": "divider"})
        blocks.append(render.section(f"*{escape(row.service)}*\n" + "\n".join(lines)))
        budget -= 2
        shown += 1
    if shown < len(services):
        blocks.append(render.context(f"…and {len(services) - shown} more services: use `/release <service> status`."))
    blocks.append(
        render.section("*Freezes and holidays ahead*\n" + ("\n".join(freezes[:20]) or "none in the next 7 days"))
    )
    blocks.append(render.context(f"Times in {zone.key}."))
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}

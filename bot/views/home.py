"""The App Home dashboard as a pure function of plain data (≤ 100 blocks, as Slack requires)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.models import Approval
from bot.views import render
from bot.views.mrkdwn import escape

MAX_BLOCKS = 100
MAX_APPROVALS = 10  # each takes two blocks; more are counted, not shown
MAX_FREEZE_LINES = 20


@dataclass(frozen=True)
class EnvRow:
    env: str
    version: str | None
    since: datetime | None
    by: str | None
    lock_holder: str | None  # who holds the release or manual lock, or None
    lock_reason: str | None
    window_open: bool
    window_text: str  # mrkdwn, already escaped: "open until …" or "closed (why); opens …"


@dataclass(frozen=True)
class ServiceRow:
    service: str
    envs: Sequence[EnvRow]


def _approval_blocks(approval: Approval, zone: ZoneInfo) -> list[dict[str, Any]]:
    title = escape(str(approval.subject.get("title", "Approval")))
    votes = f" · {len(approval.approvers)} of {approval.required} approvals" if approval.required > 1 else ""
    text = (
        f"*{title}*\n{escape(approval.service)} → {escape(approval.env)} · requested by "
        f"{render.user(approval.requester)}{votes} · expires {render.when(approval.expires_at, zone)}"
    )
    return [
        render.section(text),
        render.actions(
            f"home-approval:{approval.id}",
            render.button("Approve", "approval_approve", str(approval.id), "primary"),
            render.button("Deny", "approval_deny", str(approval.id), "danger"),
        ),
    ]


def _env_line(env: EnvRow, zone: ZoneInfo) -> str:
    running = (
        f"*{escape(env.version)}* since {render.when(env.since, zone)} by {render.user(env.by)}"
        if env.version
        else "_nothing released yet_"
    )
    window = ("🟢 " if env.window_open else "🔴 ") + env.window_text
    lock = ""
    if env.lock_holder is not None:
        lock = f"\n    🔒 {render.user(env.lock_holder)}: {escape(env.lock_reason or 'locked')}"
    return f"*{escape(env.env)}* — {running}\n    {window}{lock}"


def home_view(
    services: Sequence[ServiceRow],
    approvals: Sequence[Approval],
    freezes: Sequence[str],
    zone: ZoneInfo,
    trains: Sequence[str] = (),
) -> dict[str, Any]:
    """The Home tab: approvals the user can act on, what runs where with locks and windows, freezes ahead.

    ``freezes`` are mrkdwn lines, already escaped. Services that do not fit in Slack's 100 blocks
    are named in a closing line instead of being cut off silently.
    """
    blocks: list[dict[str, Any]] = [render.header("Releases")]
    if approvals:
        blocks.append(render.section(f"*Waiting for your decision ({len(approvals)})*"))
        for approval in approvals[:MAX_APPROVALS]:
            blocks += _approval_blocks(approval, zone)
        if len(approvals) > MAX_APPROVALS:
            blocks.append(render.context(f"…and {len(approvals) - MAX_APPROVALS} more in the release channels."))
    # Room for the "not shown" line, the divider, the freezes and the footer.
    budget = MAX_BLOCKS - len(blocks) - 4 - (2 if trains else 0)  # and the trains' divider and section
    shown = 0
    for row in services:
        if budget < 2:
            break
        lines = [_env_line(env, zone) for env in row.envs]
        blocks.append({"type": "divider"})
        blocks.append(render.section(f"*{escape(row.service)}*\n" + "\n".join(lines)))
        budget -= 2
        shown += 1
    if shown < len(services):
        rest = ", ".join(escape(r.service) for r in services[shown:])
        blocks.append(render.context(f"Not shown for space: {rest}. Use `/release <service> status`."))
    if trains:  # mrkdwn lines, already escaped (bot/views/trains.py home_lines)
        blocks.append({"type": "divider"})
        blocks.append(render.section("*Release trains*\n" + "\n".join(trains)))
    blocks.append({"type": "divider"})
    ahead = "\n".join(f"• {line}" for line in freezes[:MAX_FREEZE_LINES]) or "none in the next 7 days"
    blocks.append(render.section("*Holidays and freezes ahead*\n" + ahead))
    blocks.append(render.context(f"Times in {zone.key}. This tab updates itself when releases change."))
    return {"type": "home", "blocks": blocks}

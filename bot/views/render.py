"""Block Kit rendering: pure functions from results to messages. Handlers never build blocks inline.

Every piece of text that came from a person or from CI is escaped, so nothing a user typed can ping
a channel or smuggle a link into the release channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.grammar import help_lines
from bot.core.models import Approval, ApprovalState, Release, ReleaseState
from bot.core.verdicts import Measurement, Verdict
from bot.policy.admission import WINDOW_ITEM
from bot.views.mrkdwn import escape

Block = dict[str, Any]
SECTION_LIMIT = 3000
# The checklist pseudo-item a break-glass request made outside its deployment window carries, so the
# on-call approval overrides the window explicitly and the parent message can say so.
OUTSIDE_WINDOW = WINDOW_ITEM

STATE_ICON = {
    ReleaseState.AWAITING_APPROVAL: "⏳",
    ReleaseState.QUEUED: "⏳",
    ReleaseState.DEPLOYING: "🚀",
    ReleaseState.VERIFYING: "🔎",
    ReleaseState.SUCCEEDED: "✅",
    ReleaseState.FAILED: "❌",
    ReleaseState.ROLLED_BACK: "↩️",
    ReleaseState.INTERRUPTED: "⚠️",
    ReleaseState.CANCELLED: "🚫",
}


@dataclass(frozen=True)
class Message:
    """A message: fallback text (notifications, screen readers) and its blocks."""

    text: str
    blocks: list[Block]


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, 150), "emoji": True}}


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    out: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(text, 75), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        out["style"] = style
    return out


def actions(block_id: str, *buttons: Block) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(buttons)}


def when(value: datetime | None, zone: ZoneInfo) -> str:
    """A timestamp people read: ``Thu 26 Nov 14:05 EST``."""
    if value is None:
        return "—"
    return value.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def user(user_id: str | None) -> str:
    """A mention of a Slack user ID we stored ourselves (never of free text)."""
    if not user_id:
        return "someone"
    if user_id.startswith(("U", "W")) and user_id.isalnum():
        return f"<@{user_id}>"
    return escape(user_id)


_SLACK_ID = re.compile(r"^[A-Z0-9]{2,30}\Z")


def member_mention(member: str) -> str | None:
    """A ping for one configured group member: a user ``U…``/``W…`` as ``<@U…>``, a user group ``S…`` as
    ``<!subteam^S…>``; None for anything else, which is never echoed into a mention."""
    if not _SLACK_ID.match(member):
        return None
    if member.startswith(("U", "W")):
        return f"<@{member}>"
    if member.startswith("S"):
        return f"<!subteam^{member}>"
    return None


def group_mentions(groups: Mapping[str, Sequence[str]], names: Sequence[str]) -> str:
    """Pings for every member of the groups ``names`` (users and user groups), each once, in config order."""
    seen: dict[str, None] = {}
    for name in names:
        for member in groups.get(name, ()):
            ping = member_mention(member)
            if ping is not None:
                seen.setdefault(ping)
    return " ".join(seen)


def refusal(reason: str) -> Message:
    """A refusal: the reason and the way forward, shown only to the requester."""
    return Message(text=reason, blocks=[section(f"⛔ {reason}")])


def info(text: str) -> Message:
    return Message(text=text, blocks=[section(text)])


def crash(error_id: str) -> Message:
    text = f"Something went wrong on our side (error id `{error_id}`). The details are in the bot's logs."
    return Message(text=text, blocks=[section(f"💥 {text}")])


def help_message(command: str = "/release") -> Message:
    # Usages hold `<env>`-style placeholders: escaped, or Slack would read them as links.
    lines = [f"`{escape(usage)}` — {escape(summary)}" for usage, summary in help_lines(command)]
    blocks = [header("release-bot"), section("\n".join(lines))]
    blocks.append(context("In a service's release channel the service is implied; elsewhere name it first."))
    return Message(text="release-bot help", blocks=blocks)


def release_title(release: Release) -> str:
    verb = {"rollback": "Rollback of", "retry": "Retry of"}.get(release.kind.value, "Release of")
    return f"{verb} {release.service} {release.version} to {release.env}"


def release_parent(
    release: Release,
    zone: ZoneInfo,
    *,
    checklist_lines: Sequence[str] = (),
    notes_line: str | None = None,
    extra_lines: Sequence[str] = (),
) -> Message:
    """The release's parent message: who, what, where, the checklist, the rollback plan, the state now."""
    icon = STATE_ICON[release.state]
    title = release_title(release)
    facts = [
        f"*State:* {icon} {release.state.value.replace('_', ' ')}",
        f"*Requested by:* {user(release.requested_by)} at {when(release.requested_at, zone)}",
    ]
    if release.previous_version:
        facts.append(f"*Replaces:* {escape(release.previous_version)}")
    if release.source_env:
        facts.append(f"*Promoted from:* {escape(release.source_env)}")
    if release.rollback_target:
        method = escape(release.rollback_method or f"redeploying {release.rollback_target}")
        facts.append(f"*Rollback plan:* back to {escape(release.rollback_target)} by {method}")
    elif release.rollback_method:  # planned with nothing before it (whatever words an older version stored)
        facts.append("*Rollback plan:* none: the first release here, so nothing to roll back to")
    if release.force_reason:
        facts.append(_break_glass_mark(release))
    if release.weight is not None and release.state in {ReleaseState.DEPLOYING, ReleaseState.VERIFYING}:
        facts.append(f"*Traffic:* {release.weight}%")
    elif release.weight is not None and release.state is ReleaseState.INTERRUPTED:
        facts.append(f"*Traffic when it stopped:* {release.weight}%")
    if release.verdict:
        facts.append(f"*Checks:* {escape(release.verdict)}")
    if release.error:
        facts.append(f"*Error:* {escape(release.error)}")
    blocks: list[Block] = [header(f"{icon} {title}"), section("\n".join(facts))]
    if checklist_lines:
        blocks.append(section("*Checklist*\n" + "\n".join(checklist_lines)))
    if notes_line:
        blocks.append(section(notes_line))
    blocks.extend(section(line) for line in extra_lines)
    blocks.append(context(f"release #{release.id}"))
    return Message(text=f"{icon} {title}: {release.state.value}", blocks=blocks)


def _break_glass_mark(release: Release) -> str:
    """The visible mark of a ``--force`` release: what it bypasses, who approved it (or that nobody has yet)."""
    outside = any(item.get("item") == OUTSIDE_WINDOW for item in release.checklist)
    what = "Break-glass: outside window" if outside else "Break-glass"
    reason = escape(release.force_reason or "")
    if release.forced_by:
        return f"*⚠️ {what} — approved by {user(release.forced_by)}:* {reason}"
    return f"*⚠️ {what} — waiting for an on-call approver:* {reason}"


def thread_reply(text: str) -> Message:
    return Message(text=text, blocks=[section(text)])


def output_tail_block(tail: str) -> Block:
    # Inside a code block mrkdwn is not interpreted, but escape anyway: `<!channel>` in script
    # output must stay inert whatever the client does.
    lines = tail.strip().splitlines()[-15:]
    return section("```" + _clip(escape("\n".join(lines)), SECTION_LIMIT - 6) + "```")


def failure_reply(summary: str, tail: str | None) -> Message:
    """A failed release's reply. ``summary`` is plain text carrying a provider's or a check's own words
    (outside text), so it is escaped here, in the fallback text too: Slack reads mrkdwn in both."""
    shown = escape(summary)
    blocks = [section(f"❌ {shown}")]
    if tail and tail.strip():
        blocks.append(output_tail_block(tail))
    return Message(text=shown, blocks=blocks)


def interrupted_reply(release: Release, why: str | None = None) -> Message:
    """Retry / Roll back under an interrupted release. ``why`` (mrkdwn, escaped by the view that made it) says
    what stopped it, when it was more than the restart itself."""
    head = why or (
        f"The bot restarted while {escape(release.service)} {escape(release.version)} was being released to "
        f"{escape(release.env)}."
    )
    text = f"⚠️ {head} The release is marked *interrupted* and its lock is free. What now?"
    return Message(
        text="Release interrupted by a restart" if why is None else "Release interrupted",
        blocks=[
            section(text),
            actions(
                f"interrupted:{release.id}",
                button("Retry", "release_retry", str(release.id), "primary"),
                button("Roll back", "release_rollback", str(release.id), "danger"),
            ),
        ],
    )


def approval_message(approval: Approval, zone: ZoneInfo, *, title: str, detail_lines: Sequence[str]) -> Message:
    """An approval request; once decided its buttons go and it says who decided and when."""
    groups = ", ".join(escape(g) for g in approval.eligible_groups) or "anyone but the requester"
    lines = [
        f"*{escape(title)}*",
        f"Requested by {user(approval.requester)} · needs {approval.required} approval(s) from {groups}",
        *detail_lines,
    ]
    if approval.approvers:
        lines.append("Approved by " + ", ".join(user(u) for u in approval.approvers))
    blocks: list[Block] = [section("\n".join(lines))]
    if approval.state is ApprovalState.PENDING:
        blocks.append(
            actions(
                f"approval:{approval.id}",
                button("Approve", "approval_approve", str(approval.id), "primary"),
                button("Deny", "approval_deny", str(approval.id), "danger"),
            )
        )
        blocks.append(context(f"Expires {when(approval.expires_at, zone)}"))
    else:
        outcome = {
            ApprovalState.APPROVED: f"✅ Approved by {user(approval.decided_by)}",
            ApprovalState.DENIED: f"🚫 Denied by {user(approval.decided_by)}",
            ApprovalState.EXPIRED: "⌛ Expired — nobody decided in time",
            ApprovalState.CANCELLED: "Cancelled",
        }[approval.state]
        if approval.reason and approval.state is ApprovalState.DENIED:
            outcome += f": {escape(approval.reason)}"
        blocks.append(context(f"{outcome} · {when(approval.decided_at, zone)}"))
    return Message(text=f"Approval needed: {title}", blocks=blocks)


def reason_modal(callback_id: str, metadata: str, title: str, submit: str) -> dict[str, Any]:
    """A modal with one "Why?" input (block and action id ``reason``) that a button opens before it acts: Deny, Hold.
    ``metadata`` comes back with the submission (what it is about)."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "reason", "max_length": 300},
            }
        ],
    }


def deny_modal(approval_id: int) -> dict[str, Any]:
    """The modal that asks a denier for a reason."""
    return reason_modal("approval_deny_reason", str(approval_id), "Deny request", "Deny")


CHECK_ICON = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.INCONCLUSIVE: "❔", Verdict.ERROR: "⚠️"}


def check_reply(measurement: Measurement, offset: str, *, of: int, unavailable_at: Sequence[str] = ()) -> Message:
    """A check's one reply in the release thread, edited in place as its attempts go on.

    While the backend cannot be read it says so once, with the attempt count (``of`` attempts in all) and
    the error; ``unavailable_at`` are the check's earlier offsets that ended "metrics unavailable" in the
    same outage, whose reply this one continues.
    """
    name, icon = escape(measurement.check), CHECK_ICON.get(measurement.verdict, "•")
    if measurement.error is not None:
        where = ", ".join([*unavailable_at, offset])
        attempt = f"attempt {measurement.attempts} of {of}"
        final = measurement.verdict is not Verdict.ERROR
        if final and measurement.attempts < of:
            attempt += ", not retried"  # the backend's answer cannot change by asking again
        blocks = [
            section(f"{icon} *{name}* ({escape(where)}): metrics unavailable — {attempt}: {escape(measurement.error)}")
        ]
        if final:
            blocks.append(context("Inconclusive: a backend that cannot be read never fails a check or rolls back."))
            text = f"{measurement.check}: inconclusive (metrics unavailable, {attempt})"
        else:
            blocks.append(context("Retrying."))
            text = f"{measurement.check}: metrics unavailable ({attempt})"
    else:
        line = f"{icon} *{name}* ({escape(offset)}): {escape(measurement.summary)}"
        if measurement.detail:
            line += f" — {escape(measurement.detail)}"
        blocks = [section(line)]
        notes = []
        if unavailable_at:
            notes.append(f"Metrics were unavailable at {escape(', '.join(unavailable_at))}.")
        if measurement.attempts > 1:
            notes.append(f"Read on attempt {measurement.attempts} of {of}.")
        if notes:
            blocks.append(context(" ".join(notes)))
        text = f"{measurement.check}: {measurement.verdict.value}"
    if measurement.query:
        blocks.append(context(f"query: `{escape(measurement.query)[:2800]}`"))
    return Message(text=text, blocks=blocks)


def check_buttons(release_id: int, verdict: str) -> Block:
    """FAIL offers Roll back now / Dismiss; INCONCLUSIVE offers Looks good / Roll back."""
    if verdict == "fail":
        return actions(
            f"check:{release_id}",
            button("Roll back now", "check_rollback", str(release_id), "danger"),
            button("Dismiss", "check_dismiss", str(release_id)),
        )
    return actions(
        f"check:{release_id}",
        button("Looks good", "check_looks_good", str(release_id), "primary"),
        button("Roll back", "check_rollback", str(release_id), "danger"),
    )


def history_message(service: str, env: str | None, releases: Sequence[Release], zone: ZoneInfo) -> Message:
    where = f"{escape(service)} in {escape(env)}" if env else escape(service)
    if not releases:
        return info(f"No releases of {where} yet.")
    lines = []
    for r in releases:
        icon = STATE_ICON[r.state]
        failure = " · change failure" if r.change_failure else ""
        lines.append(
            f"{icon} #{r.id} {escape(r.version)} → {escape(r.env)} · {r.kind.value} · {r.state.value}{failure}"
            f" · {user(r.requested_by)} · {when(r.finished_at or r.requested_at, zone)}"
        )
    return Message(text=f"History of {where}", blocks=[section(f"*History of {where}*"), section("\n".join(lines))])

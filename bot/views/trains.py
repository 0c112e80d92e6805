"""Release trains in words and blocks: the boarding call with Hold and Leave off, what a channel is told when a
departure is closed, held, missed or refuses a service, `/release trains`, the queue's lines and App Home's. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.checklist import ChecklistResult
from bot.core.trains import Boarding, BoardingState, Departure, DepartureState, TrainDeparture, TrainOutlook
from bot.core.windows import Reason
from bot.views.mrkdwn import escape
from bot.views.render import Message, actions, button, info, reason_modal, section, user, when
from bot.views.windows import closed_reason

HOLD, LEAVE_OFF, HOLD_MODAL = "train_hold", "train_leave_off", "train_hold_reason"
SHOWN_DEPARTURES = 3
STOPPED_WHILE_DEPARTING = "the bot stopped while starting its release, before one was recorded; nothing was released."
MISSED_ROW = "the bot was down at departure and the window had closed when it came back; nothing was released."


def train_name(env: str, at: datetime, zone: ZoneInfo) -> str:
    """``the prod train of Tue 24 Nov 14:00 EST``."""
    return f"the {escape(env)} train of {when(at, zone)}"


def _cap(text: str) -> str:
    """``the prod train…`` at the start of a sentence (str.capitalize would lower the rest)."""
    return text[:1].upper() + text[1:]


def _reasons(reasons: Sequence[Reason]) -> str:
    return "; ".join(closed_reason(r) for r in reasons) or "its window is closed"


def _next(next_at: datetime | None, zone: ZoneInfo) -> str:
    if next_at is None:
        return "No departure runs within a year."
    return f"The next departure that will run: {when(next_at, zone)}."


def checklist_failures(checklist: ChecklistResult) -> str:
    """The failing items of a checklist, as the boarding call shows them (the reasons are mrkdwn already)."""
    return "; ".join(item.reason for item in checklist.failed)


# --- the boarding call -----------------------------------------------------------------------------------
def boarding_call(dep: TrainDeparture, b: Boarding, source: str, zone: ZoneInfo) -> Message:
    """One service's boarding call (``notice`` before departure) as things stand: while it boards, what boards
    with Hold and Leave off; once that is over (held, left off, departed, refused, missed, cancelled), what
    became of it, without buttons. Posted once and edited in place; a row that cannot board shows why."""
    if b.state == BoardingState.SKIPPED or b.version is None:
        return wont_board(dep, b, zone)
    outcome = _outcome(dep, b)
    if outcome is None:
        return _open_call(dep, b, source, zone)
    head = (
        f"🚆 {_cap(train_name(dep.env, dep.at, zone))}: *{escape(b.service)} {escape(b.version)}* "
        f"(what {escape(source)} runs)."
    )
    return Message(text=f"{head} {outcome}", blocks=[section(head), section(outcome)])


def _open_call(dep: TrainDeparture, b: Boarding, source: str, zone: ZoneInfo) -> Message:
    assert b.version is not None
    checklist = "✅ passes" if b.checklist_ok else f"⚠️ fails now: {b.reason or 'see the checklist'}"
    notes = escape(b.notes) if b.notes else "none"
    text = (
        f"🚆 Boarding: {train_name(dep.env, dep.at, zone)} departs at {when(dep.at, zone)}. "
        f"*{escape(b.service)} {escape(b.version)}* (what {escape(source)} runs) boards."
    )
    detail = (
        f"*Release notes:* {notes}\n*Checklist:* {checklist}\n"
        "At departure it goes through the normal path (window, checklist, locks, rollout, checks) in its own "
        "thread. *Hold* stops this departure for every service (with a reason); *Leave off* takes "
        f"{escape(b.service)} off this one."
    )
    return Message(
        text=text,
        blocks=[
            section(text),
            section(detail),
            actions(
                f"train:{dep.id}:{b.id}",
                button("Hold", HOLD, str(dep.id), "danger"),
                button("Leave off", LEAVE_OFF, str(b.id)),
            ),
        ],
    )


def _outcome(dep: TrainDeparture, b: Boarding) -> str | None:
    """What became of one service on a departure, in a line (None: it is still boarding, buttons stay)."""
    off = f" (left off earlier by {user(b.by)})" if b.state == BoardingState.LEFT_OFF else ""
    if dep.state == DepartureState.HELD:
        return (
            f"✋ This departure is held by {user(dep.held_by)}: {escape(dep.reason or '')}. Nothing departs with "
            f"it; the next departure boards as usual.{off}"
        )
    if dep.state == DepartureState.CANCELLED:
        return f"🚫 Cancelled: {escape(dep.reason or 'the train changed')}. Nothing departs with it.{off}"
    if b.state == BoardingState.LEFT_OFF:
        return f"↩️ Left off by {user(b.by)}; the other services depart as planned."
    if b.state == BoardingState.REFUSED:
        return f"⛔ Refused at departure: {b.reason or 'it could not be released'}"  # mrkdwn already
    if b.state == BoardingState.BOARDED:
        if b.release_id is None:
            return "🚆 Departed: its release is starting."
        return f"✅ Departed with release #{b.release_id}: its story is in its own thread."
    if b.state == BoardingState.SUPERSEDED:
        return (
            f"↩️ Departed with release #{b.release_id}, which did not ship; a later departure carried "
            f"{escape(b.version or 'it')} again."
        )
    if dep.state == DepartureState.MISSED:
        return f"⏰ Missed: {MISSED_ROW}"
    if dep.state == DepartureState.DEPARTED:
        return "🚆 Departed: its release is starting."
    return None


def wont_board(dep: TrainDeparture, b: Boarding, zone: ZoneInfo) -> Message:
    """Posted instead of a boarding call when a service has something new that cannot board (``reason``)."""
    text = (
        f"🚆 {escape(b.service)} {escape(b.version or '')} will not board {train_name(dep.env, dep.at, zone)}: "
        f"{b.reason or 'it cannot be released'}"
    )
    return Message(text=text, blocks=[section(text)])


def closed(dep: TrainDeparture, reasons: Sequence[Reason], next_at: datetime | None, zone: ZoneInfo) -> Message:
    """The boarding call of a departure whose window is closed at its time: it does not run."""
    text = f"🚫 {_cap(train_name(dep.env, dep.at, zone))} does not run: {_reasons(reasons)}. {_next(next_at, zone)}"
    return Message(text=text, blocks=[section(text)])


def refused(dep: TrainDeparture, b: Boarding, reason: str, zone: ZoneInfo) -> Message:
    """Posted in the service's channel: at departure the release path refused it (``reason`` is mrkdwn)."""
    text = f"{escape(b.service)} {escape(b.version or '')} stays off {train_name(dep.env, dep.at, zone)}: {reason}"
    return Message(text=text, blocks=[section(f"⛔ {text}")])


def missed_many(env: str, missed: Sequence[datetime], more: int, next_at: datetime | None, zone: ZoneInfo) -> Message:
    """One message for the departures a long outage slept through: the latest ``missed`` by time, and how many
    earlier ones are not listed (``more``), so a week down does not flood the channel."""
    listed = ", ".join(when(at, zone) for at in missed)
    earlier = f", and {more} earlier" if more else ""
    count = len(missed) + more
    noun = "departure" if count == 1 else "departures"
    text = (
        f"⏰ The {escape(env)} train missed {count} {noun} while the bot was not running: {listed}{earlier}. "
        f"Nothing departed with them. {_next(next_at, zone)}"
    )
    return Message(text=text, blocks=[section(text)])


def missed(dep: TrainDeparture, next_at: datetime | None, zone: ZoneInfo) -> Message:
    text = (
        f"⏰ {_cap(train_name(dep.env, dep.at, zone))} was missed: the bot was not running then, and by "
        f"the time it was back the window had closed. Nothing departed. {_next(next_at, zone)}"
    )
    return Message(text=text, blocks=[section(text)])


def hold_modal(departure_id: int, channel: str) -> dict[str, Any]:
    """The modal that asks who holds a departure for a reason; it remembers the channel it was opened from,
    where the answer goes."""
    return reason_modal(HOLD_MODAL, f"{departure_id}:{channel}", "Hold departure", "Hold")


# --- answers to the person who clicked ------------------------------------------------------------------
def info_opening_form() -> Message:
    return info("opening the reason form")


def you_held(dep: TrainDeparture, zone: ZoneInfo) -> Message:
    return info(f"You held {train_name(dep.env, dep.at, zone)}. Its boarding calls show it.")


def you_left_off(dep: TrainDeparture, b: Boarding, zone: ZoneInfo) -> Message:
    return info(f"{escape(b.service)} is off {train_name(dep.env, dep.at, zone)}.")


def unknown_departure() -> str:
    return "that departure is not one of ours."


def not_boarding(dep: TrainDeparture, zone: ZoneInfo) -> str:
    """A click on a departure that is no longer boarding (it left, was held, closed or missed)."""
    words = {
        DepartureState.DEPARTED: "has already departed",
        DepartureState.HELD: "is already held",
        DepartureState.MISSED: "was missed",
        DepartureState.CLOSED: "does not run",
        DepartureState.CANCELLED: "was cancelled",
        DepartureState.PENDING: "is not boarding yet",
    }
    return f"{train_name(dep.env, dep.at, zone)} {words.get(dep.state, dep.state)}, so nothing was changed."


def not_aboard(b: Boarding) -> str:
    words = {
        BoardingState.LEFT_OFF: f"was already left off by {user(b.by)}",
        BoardingState.BOARDED: "has already departed",
        BoardingState.SUPERSEDED: "has already departed",
        BoardingState.REFUSED: "was refused at departure",
        BoardingState.SKIPPED: "is not boarding",
    }
    return f"{escape(b.service)} {words.get(b.state, b.state)}, so nothing was changed."


def hold_needs_reason() -> str:
    return "a hold needs a reason."


def may_not_hold(env: str, groups: Sequence[str]) -> str:
    return (
        f"you may not hold the {escape(env)} train: that needs membership of {', '.join(map(escape, groups))} "
        "or on-call."
    )


def may_not_leave_off(env: str, groups: Sequence[str]) -> str:
    return (
        f"you may not leave a service off the {escape(env)} train: that needs membership of "
        f"{', '.join(map(escape, groups))}, on-call, or the releasers of {escape(env)}."
    )


# --- where people look ---------------------------------------------------------------------------------
def _departure_line(d: Departure, zone: ZoneInfo) -> str:
    if d.runs:
        return f"{when(d.at, zone)}"
    return f"~{when(d.at, zone)}~ does not run: {_reasons(d.reasons)}"


def _aboard_line(o: TrainOutlook) -> str:
    boarding = [a for a in o.aboard if a.boards and a.version is not None]
    if not boarding:
        return "nothing new to carry right now"
    return ", ".join(
        f"{escape(a.service)} {escape(a.version or '')} (from {escape(a.source or '?')})" for a in boarding
    )


def _state_line(o: TrainOutlook, zone: ZoneInfo) -> str | None:
    if o.current is None or o.current.state != DepartureState.BOARDING:
        return None
    aboard = [b for b in o.boardings if b.state == BoardingState.BOARDING]
    off = [b for b in o.boardings if b.state == BoardingState.LEFT_OFF]
    line = f"boarding now for {when(o.current.at, zone)}: " + (
        ", ".join(f"{escape(b.service)} {escape(b.version or '')}" for b in aboard) or "nobody"
    )
    if off:
        line += " · left off: " + ", ".join(escape(b.service) for b in off)
    return line


def outlook_lines(o: TrainOutlook, zone: ZoneInfo) -> list[str]:
    """A train in a few lines: next departures (closed ones struck out, with why), what would board."""
    lines = [f"*{escape(o.env)} train*"]
    state = _state_line(o, zone)
    if state is not None:
        lines.append(f"• {state}")
    shown = "; ".join(_departure_line(d, zone) for d in o.upcoming[:SHOWN_DEPARTURES])
    lines.append(f"• next: {shown or 'no departures'}")
    if o.upcoming and not any(d.runs for d in o.upcoming[:SHOWN_DEPARTURES]):
        lines.append(f"• {_next(o.next_running, zone)}")
    lines.append(f"• would board: {_aboard_line(o)}")
    return lines


def trains_message(outlooks: Sequence[TrainOutlook], zone: ZoneInfo) -> Message:
    """`/release trains`."""
    if not outlooks:
        return info("No release trains are configured (`trains:` in the config).")
    body = "\n\n".join("\n".join(outlook_lines(o, zone)) for o in outlooks)
    return Message(text="Release trains\n" + body, blocks=[section(f"🚆 *Release trains*\n\n{body}")])


def queue(scheduled: Message, outlooks: Sequence[TrainOutlook], zone: ZoneInfo) -> Message:
    """`/release queue`: the scheduled releases, then the service's next train departures."""
    if not outlooks:
        return scheduled
    lines = []
    for o in outlooks:
        running = next((d for d in o.upcoming if d.runs), None)
        at = running.at if running is not None else o.next_running
        lines.append(f"{escape(o.env)} train · next departure {when(at, zone)} · would board: {_aboard_line(o)}")
    text = "*Next train departures*\n" + "\n".join(lines)
    return Message(text=scheduled.text + "\n" + text, blocks=[*scheduled.blocks, section(text)])


def home_lines(outlooks: Sequence[TrainOutlook], zone: ZoneInfo) -> list[str]:
    """App Home's trains section: one line per train (mrkdwn, escaped)."""
    found = []
    for o in outlooks:
        running = next((d for d in o.upcoming if d.runs), None)
        at = running.at if running is not None else o.next_running
        state = _state_line(o, zone)
        found.append(
            f"*{escape(o.env)}* — next {when(at, zone)} · would board: {_aboard_line(o)}"
            + (f"\n    {state}" if state else "")
        )
    return found

"""The read-only and admin answers as Slack messages: status, windows, history, manifest, release notes,
the lock and freeze acknowledgements, and the refusals that quote what someone typed. Pure.

The answers are plain data the Admin service returns. They are defined here rather than beside the
service because bot.views may not import the engine; the engine imports them instead. Everything a
person typed, CI reported or a source answered is escaped here, and only user IDs the bot stored
become mentions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from bot.core.models import Candidate, EnvState, Lock, Release
from bot.core.notes import ReleaseNotes
from bot.core.windows import WindowDecision
from bot.views import render
from bot.views.home import EnvRow, ServiceRow
from bot.views.mrkdwn import escape
from bot.views.notes import notes_blocks
from bot.views.windows import closed_reason, window_mrkdwn, window_summary

__all__ = [
    "CandidateManifest",
    "EnvManifest",
    "EnvStatus",
    "Frozen",
    "History",
    "Locked",
    "NotesAnswer",
    "RunningManifest",
    "Status",
    "Unfrozen",
    "Unlocked",
    "Windows",
    "already_locked",
    "frozen_message",
    "history_message",
    "home_rows",
    "locked_message",
    "manifest_message",
    "no_stored_notes",
    "notes_message",
    "notes_unavailable",
    "status_message",
    "unfrozen_message",
    "unknown_candidate",
    "unlocked_message",
    "windows_message",
]


# --- the answers ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvStatus:
    """One environment of a service now: what runs there (None: nothing yet), its window, its locks."""

    env: str
    running: EnvState | None
    window: WindowDecision
    locks: tuple[Lock, ...]  # a running release's lock and a manual one can both be held


@dataclass(frozen=True)
class Status:
    """What each environment of ``service`` runs and may run, in pipeline order."""

    service: str
    envs: tuple[EnvStatus, ...]


@dataclass(frozen=True)
class Windows:
    """The windows asked about, and the asker's own zone when it is not the configured one."""

    decisions: tuple[WindowDecision, ...]
    user_zone: ZoneInfo | None


@dataclass(frozen=True)
class History:
    """The latest releases of ``service`` (in ``env``, or in every environment), newest first."""

    service: str
    env: str | None
    releases: tuple[Release, ...]


@dataclass(frozen=True)
class CandidateManifest:
    """What one candidate of ``service`` is made of."""

    service: str
    candidate: Candidate


@dataclass(frozen=True)
class EnvManifest:
    """What runs in ``env`` and, when the bot knows its candidate, what that is made of."""

    env: str
    running: EnvState | None
    candidate: Candidate | None


@dataclass(frozen=True)
class RunningManifest:
    """What runs in each environment asked about, in pipeline order."""

    service: str
    envs: tuple[EnvManifest, ...]


@dataclass(frozen=True)
class NotesAnswer:
    """The release notes of ``version`` (stored with its release, or built for a range ending there)."""

    service: str
    version: str
    notes: ReleaseNotes


@dataclass(frozen=True)
class Locked:
    service: str
    env: str
    by: str
    reason: str


@dataclass(frozen=True)
class Unlocked:
    service: str
    env: str


@dataclass(frozen=True)
class Frozen:
    service: str
    env: str
    until: date  # the last local day of the freeze
    reason: str


@dataclass(frozen=True)
class Unfrozen:
    service: str
    env: str


# --- the messages -----------------------------------------------------------------------------------------
def _status_line(env: EnvStatus, zone: ZoneInfo) -> str:
    state, decision = env.running, env.window
    running = (
        f"*{escape(state.version)}* since {render.when(state.since, zone)} by {render.user(state.by)}"
        if state
        else "_nothing released yet_"
    )
    window = "🟢 open" if decision.open else "🔴 closed: " + "; ".join(closed_reason(r) for r in decision.reasons)
    extras = []
    for lock in env.locks:
        if lock.kind == "release":
            extras.append(f"🔒 {escape(lock.reason)} ({render.user(lock.holder)})")
        else:
            extras.append(f"🔒 locked by {render.user(lock.holder)}: {escape(lock.reason)}")
    return f"*{env.env}* — {running}\n    window {window}" + "".join(f"\n    {e}" for e in extras)


def status_message(status: Status, zone: ZoneInfo) -> render.Message:
    """Each environment: what runs, since when, by whom, its window, its locks."""
    lines = [_status_line(env, zone) for env in status.envs]
    return render.Message(
        text=f"Status of {status.service}",
        blocks=[render.header(f"{status.service} status"), render.section("\n".join(lines))],
    )


def home_rows(statuses: Sequence[Status], zone: ZoneInfo) -> list[ServiceRow]:
    """Every service's status as the App Home rows: one lock per environment, a running release's first."""
    return [
        ServiceRow(
            service=status.service,
            envs=[
                EnvRow(
                    env=env.env,
                    version=env.running.version if env.running else None,
                    since=env.running.since if env.running else None,
                    by=env.running.by if env.running else None,
                    lock_holder=env.locks[0].holder if env.locks else None,
                    lock_reason=env.locks[0].reason if env.locks else None,
                    window_open=env.window.open,
                    window_text=window_summary(env.window, zone),
                )
                for env in status.envs
            ],
        )
        for status in statuses
    ]


def windows_message(windows: Windows, zone: ZoneInfo) -> render.Message:
    """One sentence per window: open or closed, why, and the next change (in the asker's zone too)."""
    texts = [window_mrkdwn(decision, zone, windows.user_zone) for decision in windows.decisions]
    return render.Message(text=texts[0], blocks=[render.section(t) for t in texts])


def history_message(history: History, zone: ZoneInfo) -> render.Message:
    return render.history_message(history.service, history.env, history.releases, zone)


def _candidate_lines(manifest: CandidateManifest) -> list[str]:
    candidate = manifest.candidate
    lines = [f"*{manifest.service} {escape(candidate.version)}* · commit `{escape(candidate.commit[:12])}`"]
    lines += [f"• {escape(n)}: `{escape(ref)}`" for n, ref in sorted(candidate.components.items())]
    return lines


def _running_lines(manifest: RunningManifest, zone: ZoneInfo) -> list[str]:
    lines = []
    for env in manifest.envs:
        state, candidate = env.running, env.candidate
        if state is None:
            lines.append(f"*{env.env}*: nothing released yet")
            continue
        commit = candidate.commit[:12] if candidate else "?"
        lines.append(
            f"*{env.env}*: {escape(state.version)} · commit `{escape(commit)}` · released "
            f"{render.when(state.since, zone)} by {render.user(state.by)}"
        )
        for name, ref in sorted((candidate.components if candidate else {}).items()):
            lines.append(f"    • {escape(name)}: `{escape(ref)}`")
    return lines


def manifest_message(manifest: CandidateManifest | RunningManifest, zone: ZoneInfo) -> render.Message:
    """A candidate's commit and images, or per environment what runs, since when, by whom, made of what."""
    lines = _candidate_lines(manifest) if isinstance(manifest, CandidateManifest) else _running_lines(manifest, zone)
    return render.Message(
        text=f"Manifest of {manifest.service}",
        blocks=[render.header(f"{manifest.service} manifest"), render.section("\n".join(lines))],
    )


def notes_message(answer: NotesAnswer) -> render.Message:
    title = f"{answer.service} {answer.version}"
    blocks = [render.header(f"{title} release notes"), *notes_blocks(answer.notes, full_notes_url=None)]
    return render.Message(text=f"Release notes for {title}", blocks=blocks)


def locked_message(locked: Locked) -> render.Message:
    return render.info(
        f"🔒 {locked.service} {locked.env} is locked by {render.user(locked.by)}: {escape(locked.reason)}"
    )


def unlocked_message(unlocked: Unlocked) -> render.Message:
    return render.info(f"🔓 {unlocked.service} {unlocked.env} is unlocked.")


def frozen_message(frozen: Frozen) -> render.Message:
    return render.info(
        f"🧊 {frozen.service} {frozen.env} is frozen through {frozen.until:%a %d %b %Y}: {escape(frozen.reason)}"
    )


def unfrozen_message(unfrozen: Unfrozen) -> render.Message:
    return render.info(f"{unfrozen.service} {unfrozen.env} is no longer frozen.")


# --- refusals that quote outside text (a UserError's text is mrkdwn, escaped already) ---------------------
def already_locked(lock: Lock) -> str:
    return f"{lock.env} is already locked by {render.user(lock.holder)}: {escape(lock.reason)}"


def unknown_candidate(service: str, version: str) -> str:
    return f"{escape(version)} is not a known {service} candidate."


def no_stored_notes(version: str) -> str:
    return f"no release notes stored for {escape(version)}."


def notes_unavailable(reason: str) -> str:
    return f"release notes unavailable: {escape(reason)}"

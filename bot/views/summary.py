"""The day's and week's release summary as a Slack message. Pure.

The Summaries service gathers the period's figures as a :class:`Summary` (defined here rather than beside
the service because bot.views may not import the engine); this module words them: releases per service
and environment, production failures with links to their threads, the four DORA figures against the
previous period, and the windows closed in the days ahead. Service, environment and version names are
escaped here; the thread links arrive resolved and are shown as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.core import dora
from bot.core.windows import ClosedAhead
from bot.views import render
from bot.views.mrkdwn import escape
from bot.views.windows import closed_ahead_lines

__all__ = ["Failure", "Period", "ReleaseCount", "Summary", "summary_message"]

Period = Literal["day", "week"]
ARROW = {"better": "▲ better", "worse": "▼ worse", "same": "= same"}
STATE_WORDS = {"rolled_back": "rolled back"}
STATE_ORDER = ("succeeded", "failed", "rolled_back", "interrupted", "cancelled", "rollback run")


@dataclass(frozen=True)
class ReleaseCount:
    """How many releases of ``kind`` to ``service``/``env`` ended in ``state`` during the period."""

    service: str
    env: str
    kind: str
    state: str
    n: int


@dataclass(frozen=True)
class Failure:
    """A production change failure: the release as DORA reads it, its version and stored state, and a link
    to its thread (None when it has no thread)."""

    release: dora.ProdRelease
    version: str
    state: str
    thread_link: str | None


@dataclass(frozen=True)
class Summary:
    """The figures of one day or week, ``start`` to ``end`` (local midnights, end excluded)."""

    period: Period
    start: datetime
    end: datetime
    counts: tuple[ReleaseCount, ...]
    pipelines: Mapping[str, Sequence[str]]  # service -> its environments in order, to order the counts
    failures: tuple[Failure, ...]  # the first ones by when they finished; ``failure_count`` counts them all
    failure_count: int
    report: dora.DoraReport
    previous: dora.DoraReport  # the period before, for the comparison
    closed_ahead: tuple[ClosedAhead, ...]
    ahead_days: int  # how far ahead ``closed_ahead`` looked
    trains: Mapping[str, int] | None = None  # train departures settled in the period by state; None: no trains


def _sections(title: str, lines: Sequence[str]) -> list[render.Block]:
    """``lines`` under a bold title, split over as many sections as Block Kit's 3,000 characters need."""
    blocks: list[render.Block] = []
    chunk = f"*{title}*"
    for line in lines:
        if len(chunk) + 1 + len(line) > render.SECTION_LIMIT:
            blocks.append(render.section(chunk))
            chunk = line
        else:
            chunk += "\n" + line
    blocks.append(render.section(chunk))
    return blocks


def _release_lines(counts: Sequence[ReleaseCount], pipelines: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per service: per environment (pipeline order) how many releases ended in each state."""
    ended: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for count in counts:
        # Rollbacks are counted apart from the releases they undid; deploys and promotions together.
        state = "rollback run" if count.kind == "rollback" else count.state
        ended[count.service][count.env][state] += count.n
    lines = []
    for service in sorted(ended):
        order = pipelines.get(service, [])
        envs = sorted(ended[service], key=lambda e: (order.index(e) if e in order else len(order), e))
        parts = []
        for env in envs:
            states = ended[service][env]
            words = [_count_words(s, n) for s, n in sorted(states.items(), key=lambda i: _rank(i[0]))]
            parts.append(f"{escape(env)}: {', '.join(words)}")
        lines.append(f"• *{escape(service)}* — " + " · ".join(parts))
    return lines


def _count_words(state: str, n: int) -> str:
    if state == "rollback run":
        return f"{n} rollback{'' if n == 1 else 's'} run"
    return f"{n} {STATE_WORDS.get(state, state)}"


def _rank(state: str) -> tuple[int, str]:
    return (STATE_ORDER.index(state) if state in STATE_ORDER else len(STATE_ORDER), state)


def _failure_lines(failures: Sequence[Failure], total: int, zone: ZoneInfo) -> list[str]:
    lines = []
    for failure in failures:
        release = failure.release
        what = STATE_WORDS.get(failure.state, failure.state)
        if release.verdict == "fail":
            what += ", checks failed"
        if release.incident_at is not None:
            what += ", alert fired in its watch window"
        if release.recovered_at is not None and release.failure_detected_at is not None:
            what += f", recovered in {dora.format_duration(release.recovered_at - release.failure_detected_at)}"
        elif release.failure_detected_at is not None:
            what += ", not recovered yet"
        link = f" · <{failure.thread_link}|thread>" if failure.thread_link else ""
        lines.append(
            f"• #{release.release_id} *{escape(release.service)}* {escape(failure.version)} "
            f"({render.when(release.finished_at, zone)}): {what}{link}"
        )
    if total > len(failures):
        lines.append(f"…and {total - len(failures)} more: see `/release <service> history`.")
    return lines


def _freq(value: float | None) -> str:
    return f"{value:.2f}/day" if value is not None else "no deploys"


def _dur(value: timedelta | None) -> str:
    return dora.format_duration(value) if value is not None else "n/a"


def _rate(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "n/a"


def _from_alerts(count: int) -> str:
    """How many change failures only an alert showed (nothing when none)."""
    return f"; {count} from alerts" if count else ""


def _dora_lines(report: dora.DoraReport, previous: dora.DoraReport, period: Period) -> list[str]:
    """The four figures with their band, and each against the previous period."""
    comparison = report.compare(previous)
    df, lt, cfr, rt = (
        report.deployment_frequency,
        report.lead_time,
        report.change_failure_rate,
        report.recovery_time,
    )

    def line(name: str, value: str, band: str | None, delta: dora.Delta[Any], before: str) -> str:
        text = f"• *{name}*: {value}" + (f" — _{band}_" if band else "")
        if delta.direction in ARROW:
            text += f" · {ARROW[delta.direction]} than the previous {period} ({before})"
        elif delta.previous is None:
            text += f" · previous {period}: n/a"
        return text

    pdf, plt, pcfr, prt = (
        previous.deployment_frequency,
        previous.lead_time,
        previous.change_failure_rate,
        previous.recovery_time,
    )
    lead = f"median {_dur(lt.value)}, p90 {_dur(lt.p90)} over {lt.sample_size}" if lt.value is not None else "n/a"
    recovery = _dur(rt.value) + (f" ({rt.unrecovered} not recovered yet)" if rt.unrecovered else "")
    return [
        line(
            "Deployment frequency",
            f"{_freq(df.value)} ({df.sample_size} to production)",
            df.band,
            comparison.deployment_frequency,
            _freq(pdf.value),
        ),
        line("Lead time for changes", lead, lt.band, comparison.lead_time, _dur(plt.value)),
        line(
            "Change failure rate",
            f"{_rate(cfr.value)} ({cfr.failures} of {cfr.sample_size}{_from_alerts(cfr.from_alerts)})"
            if cfr.value is not None
            else "n/a",
            cfr.band,
            comparison.change_failure_rate,
            _rate(pcfr.value),
        ),
        line("Failed-deployment recovery time", recovery, rt.band, comparison.recovery_time, _dur(prt.value)),
    ]


def _train_line(counts: Mapping[str, int]) -> str:
    """Train departures of the period by outcome (bot.core.trains.DepartureState's final states)."""
    return (
        f"{counts.get('departed', 0)} departed · {counts.get('held', 0)} held · {counts.get('missed', 0)} missed · "
        f"{counts.get('closed', 0)} did not run (window closed)"
    )


def summary_message(summary: Summary, zone: ZoneInfo) -> render.Message:
    """The summary as posted to the summary channel and as shown on demand."""
    last_day = summary.end.date() - timedelta(days=1)
    span = f"{last_day:%a %d %b}" if summary.period == "day" else f"{summary.start:%a %d %b} – {last_day:%a %d %b}"
    title = f"Release summary — {'the day' if summary.period == 'day' else 'the week'} ({span})"
    release_lines = _release_lines(summary.counts, summary.pipelines) or ["No releases in this period."]
    failure_lines = _failure_lines(summary.failures, summary.failure_count, zone)
    ahead = [f"• {line}" for line in closed_ahead_lines(summary.closed_ahead)]
    blocks = [render.header(title), *_sections("Releases", release_lines)]
    if failure_lines:
        blocks += _sections("Production failures and rollbacks", failure_lines)
    blocks += _sections("DORA (production)", _dora_lines(summary.report, summary.previous, summary.period))
    if summary.trains is not None:
        blocks += _sections("Release trains", [_train_line(summary.trains)])
    blocks += _sections(f"Closed windows in the next {summary.ahead_days} days", ahead or ["none"])
    blocks.append(render.context(f"Bands per {dora.REPORT}. Times in {zone.key}."))
    return render.Message(text=title, blocks=blocks)

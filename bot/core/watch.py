"""Watch windows of post-release checks (``every`` + ``for``) and the release verdict their ticks add up to.

A watch window is expanded into one measurement row per tick (``every``, ``2×every`` … up to ``for``), so the
store keeps being the source of truth: each tick is claimed once, a restart neither loses nor repeats one.
The window is judged from its rows, Argo Rollouts' way: it FAILs when its failed ticks exceed
``failure_limit`` (0: the first FAIL fails it); a FAIL within the limit is tolerated and does not make the
release FAIL. INCONCLUSIVE ticks count as today's measurements do (the release reads INCONCLUSIVE, on-call
is asked once); an unreadable backend is INCONCLUSIVE, never a FAIL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot.core.verdicts import Verdict, worst

__all__ = ["Planned", "Tally", "release_verdict", "tally", "tick_offsets"]


class Planned(NamedTuple):
    """One measurement row to store: a check at an offset after the release (a watch tick: with its window)."""

    check: str
    offset_s: int
    due: datetime
    every_s: int | None = None  # set on a watch window's ticks
    failure_limit: int | None = None


def tick_offsets(every: timedelta, for_: timedelta) -> list[int]:
    """The offsets in seconds of a window's ticks: ``every``, ``2×every`` … while within ``for``."""
    step = int(every.total_seconds())
    return list(range(step, int(for_.total_seconds()) + 1, step))


@dataclass(frozen=True)
class Tally:
    """A watch window so far, counted from its rows."""

    check: str
    planned: int  # ticks in the window (cancelled ones included)
    passed: int
    failed: int
    inconclusive: int
    failure_limit: int
    last: float | None  # the latest measured value
    last_offset_s: int | None
    cancelled: int

    @property
    def measured(self) -> int:
        return self.passed + self.failed + self.inconclusive

    @property
    def verdict(self) -> Verdict | None:
        """FAIL once failures exceed the limit; else INCONCLUSIVE if a tick was; else PASS (None: nothing yet)."""
        if self.failed > self.failure_limit:
            return Verdict.FAIL
        if self.inconclusive:
            return Verdict.INCONCLUSIVE
        return Verdict.PASS if self.measured else None

    @property
    def ended(self) -> bool:
        """Every tick is measured or cancelled, or the window failed (its remaining ticks are cancelled)."""
        return self.verdict is Verdict.FAIL or self.measured + self.cancelled >= self.planned


def tally(rows: Iterable[Mapping[str, Any]], check: str) -> Tally:
    """The watch window of ``check`` from its measurement rows (store dicts with every_s set)."""
    ticks = sorted(
        (r for r in rows if r["check_name"] == check and r.get("every_s") is not None), key=lambda r: r["offset_s"]
    )
    done = [r for r in ticks if r["state"] == "done" and r["verdict"]]
    verdicts = [Verdict.INCONCLUSIVE if r["verdict"] == Verdict.ERROR else Verdict(r["verdict"]) for r in done]
    return Tally(
        check=check,
        planned=len(ticks),
        passed=verdicts.count(Verdict.PASS),
        failed=verdicts.count(Verdict.FAIL),
        inconclusive=verdicts.count(Verdict.INCONCLUSIVE),
        failure_limit=max((r.get("failure_limit") or 0 for r in ticks), default=0),
        last=done[-1]["value"] if done else None,
        last_offset_s=done[-1]["offset_s"] if done else None,
        cancelled=sum(r["state"] == "cancelled" for r in ticks),
    )


def release_verdict(rows: Iterable[Mapping[str, Any]]) -> Verdict | None:
    """The release's worst verdict: each offset row as measured, each watch window as its tally."""
    rows = list(rows)
    verdicts = [Verdict(r["verdict"]) for r in rows if r["verdict"] and r.get("every_s") is None]
    windows = {r["check_name"] for r in rows if r.get("every_s") is not None}
    verdicts += [v for v in (tally(rows, name).verdict for name in windows) if v is not None]
    return worst(verdicts)

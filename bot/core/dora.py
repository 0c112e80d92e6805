"""DORA's four key metrics over a period of production releases (pure: no I/O).

Bands follow the cluster thresholds of *DORA, Accelerate State of DevOps Report 2023* (Google Cloud).
The report states each band in words; the numeric cut-offs used here are:

=========================  ================  =============  ==============  =============
metric                     elite             high           medium          low
=========================  ================  =============  ==============  =============
deployment frequency       >= 1 per day      >= 1 per week  >= 1 per 30 d   below that
lead time (median)         < 1 day           <= 7 days      <= 30 days      above that
change failure rate        <= 5 %            <= 10 %        <= 15 %         above that
recovery time (median)     < 1 hour          < 1 day        <= 7 days       above that
=========================  ================  =============  ==============  =============

A "month" is 30 days. Where the report says "less than", the bound is exclusive; where it says
"between X and Y", the upper bound Y belongs to the better band. Full definitions: ``docs/dora.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from statistics import median
from typing import Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

REPORT = "DORA, Accelerate State of DevOps Report 2023"

Band = Literal["elite", "high", "medium", "low"]
Direction = Literal["better", "worse", "same", "n/a"]
Outcome = Literal["succeeded", "failed", "rolled_back"]
Verdict = Literal["pass", "fail", "inconclusive", "error"]

_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_MONTH = timedelta(days=30)


@dataclass(frozen=True)
class ProdRelease:
    """One production release as the store sees it (all datetimes aware)."""

    release_id: int
    service: str
    finished_at: datetime  # when the deploy completed (or failed)
    outcome: Outcome  # rolled_back = this release was later rolled back
    verdict: Verdict | None  # post-release check verdict
    committed_at: datetime | None  # commit time of the released version (lead time start)
    failure_detected_at: datetime | None  # failed deploy finish, FAIL check time, or rollback request
    recovered_at: datetime | None  # next healthy prod release of the same service or completed rollback
    incident_at: datetime | None = None  # an alert-started incident began in its watch window (see with_incident)

    @property
    def reached_production(self) -> bool:
        """True when the deploy completed: it succeeded, even if it was rolled back later."""
        return self.outcome != "failed"

    @property
    def is_change_failure(self) -> bool:
        """True for a failed deploy, a rolled-back release, a FAIL verdict, or an alert-started incident in its
        watch window (counted once)."""
        return self.outcome in ("failed", "rolled_back") or self.verdict == "fail" or self.incident_at is not None

    @property
    def alerted(self) -> bool:
        """An alert-started incident began in its watch window: a change failure that came from an alert (maybe
        besides a failed check, and maybe rolled back because of it)."""
        return self.incident_at is not None


def with_incident(release: ProdRelease, started_at: datetime, resolved_at: datetime | None) -> ProdRelease:
    """``release`` with an alert-started incident (first firing ``started_at``, ``resolved_at`` or still open)
    that began in its watch window: a change failure, detected no later than the incident started, restored at
    whichever comes first — the incident resolving, or the rollback (or next healthy release) it already had.

    Several incidents in one window: fold them in one at a time, the earliest first.
    """
    detected = min(t for t in (release.failure_detected_at, started_at) if t is not None)
    ends = [t for t in (release.recovered_at, resolved_at) if t is not None]
    first = release.incident_at if release.incident_at is not None else started_at
    return replace(
        release,
        failure_detected_at=detected,
        recovered_at=min(ends) if ends else None,
        incident_at=min(first, started_at),
    )


@dataclass(frozen=True)
class DeploymentFrequency:
    """Releases that reached production in the period, as a daily and weekly average."""

    value: float | None  # deployments per day; None when none reached production
    per_week: float | None
    band: Band | None
    sample_size: int  # deployments that reached production


@dataclass(frozen=True)
class LeadTime:
    """Commit-to-production time over the releases that reached production with a commit time."""

    value: timedelta | None  # median
    p90: timedelta | None  # nearest-rank 90th percentile
    band: Band | None  # from the median
    sample_size: int


@dataclass(frozen=True)
class ChangeFailureRate:
    """Change failures over all deploy attempts (reached production or failed)."""

    value: float | None  # 0.0 .. 1.0; None when there were no deploy attempts
    band: Band | None
    failures: int
    sample_size: int  # deploy attempts: the denominator
    from_alerts: int = 0  # failures that came from an alert in their watch window (ProdRelease.alerted)


@dataclass(frozen=True)
class RecoveryTime:
    """Failure detection to restored service, over the change failures that have both times."""

    value: timedelta | None  # median
    band: Band | None
    sample_size: int
    unrecovered: int  # change failures with no recovery time yet
    unrecovered_release_ids: tuple[int, ...]


T = TypeVar("T", float, timedelta)


@dataclass(frozen=True)
class Delta(Generic[T]):
    """One figure against the previous period; ``change`` is current minus previous."""

    current: T | None
    previous: T | None
    change: T | None
    direction: Direction


@dataclass(frozen=True)
class DoraComparison:
    """Each figure of a report against the same figure of the previous period."""

    deployment_frequency: Delta[float]
    lead_time: Delta[timedelta]
    change_failure_rate: Delta[float]
    recovery_time: Delta[timedelta]


@dataclass(frozen=True)
class DoraReport:
    """The four DORA figures for the releases that finished in [start, end)."""

    start: datetime
    end: datetime
    deployment_frequency: DeploymentFrequency
    lead_time: LeadTime
    change_failure_rate: ChangeFailureRate
    recovery_time: RecoveryTime

    def compare(self, previous: DoraReport) -> DoraComparison:
        """Deltas against ``previous``: frequency is better higher, the other three better lower."""
        return DoraComparison(
            deployment_frequency=_delta(
                self.deployment_frequency.value, previous.deployment_frequency.value, higher_is_better=True
            ),
            lead_time=_delta(self.lead_time.value, previous.lead_time.value, higher_is_better=False),
            change_failure_rate=_delta(
                self.change_failure_rate.value, previous.change_failure_rate.value, higher_is_better=False
            ),
            recovery_time=_delta(self.recovery_time.value, previous.recovery_time.value, higher_is_better=False),
        )


def _delta(current: T | None, previous: T | None, *, higher_is_better: bool) -> Delta[T]:
    if current is None or previous is None:
        return Delta(current, previous, None, "n/a")
    change: T = current - previous
    # Rates come out of divisions: two equal rates computed differently may differ in the last bit.
    size = change.total_seconds() if isinstance(change, timedelta) else change
    if math.isclose(size, 0.0, abs_tol=1e-9):
        return Delta(current, previous, change, "same")
    improved = (size > 0) == higher_is_better
    return Delta(current, previous, change, "better" if improved else "worse")


def percentile_nearest_rank(values: Sequence[T], p: float) -> T:
    """The nearest-rank percentile: the smallest value with at least p% of values at or below it.

    Rank = ceil(p * n / 100), 1-based, clamped to at least 1. Raises ValueError on an empty sequence
    or p outside (0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    ordered = sorted(values)
    # p * n / 100, not p / 100 * n: 7 / 100 * 100 is 7.000000000000001 in binary floating point.
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]


def _median_duration(values: Sequence[timedelta]) -> timedelta:
    # The conventional median (mean of the two middle values for an even count), in whole microseconds.
    return timedelta(microseconds=round(median(v / timedelta(microseconds=1) for v in values)))


def _band_by_upper_bounds(value: T, bounds: Sequence[tuple[T, bool]]) -> Band:
    """First band whose upper bound admits ``value``; each bound is (limit, inclusive)."""
    names: tuple[Band, Band, Band] = ("elite", "high", "medium")
    for name, (limit, inclusive) in zip(names, bounds, strict=True):
        if value < limit or (inclusive and value == limit):
            return name
    return "low"


def deployment_frequency_band(per_day: float) -> Band:
    """Elite >= 1/day (on demand); high >= 1/week; medium >= 1 per 30 days; low below that."""
    if per_day >= 1:
        return "elite"
    if per_day >= 1 / 7:
        return "high"
    if per_day >= 1 / 30:
        return "medium"
    return "low"


def lead_time_band(lead_time: timedelta) -> Band:
    """Elite < 1 day; high <= 1 week; medium <= 30 days; low above that."""
    return _band_by_upper_bounds(lead_time, ((_DAY, False), (_WEEK, True), (_MONTH, True)))


def change_failure_rate_band(rate: float) -> Band:
    """Elite <= 5%; high <= 10%; medium <= 15%; low above that (2023 cluster values 5/10/15/64%)."""
    return _band_by_upper_bounds(rate, ((0.05, True), (0.10, True), (0.15, True)))


def recovery_time_band(recovery: timedelta) -> Band:
    """Elite < 1 hour; high < 1 day; medium <= 1 week; low above that."""
    return _band_by_upper_bounds(recovery, ((timedelta(hours=1), False), (_DAY, False), (_WEEK, True)))


def _check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"empty period: end {end.isoformat()} is not after start {start.isoformat()}")


def _in_period(releases: Iterable[ProdRelease], start: datetime, end: datetime) -> list[ProdRelease]:
    return [r for r in releases if start <= r.finished_at < end]


def _non_negative(value: timedelta) -> timedelta:
    # A commit stamped after its deploy (clock skew, rebased history) means "no wait", not negative time.
    return max(value, timedelta(0))


def compute_dora(releases: Sequence[ProdRelease], *, start: datetime, end: datetime) -> DoraReport:
    """The four DORA figures for the releases whose ``finished_at`` is in [start, end).

    Deployment frequency counts releases that reached production (succeeded or later rolled back);
    change failure rate divides change failures by every deploy attempt, failed deploys included.
    Raises ValueError for naive datetimes or an empty period.
    """
    _check_period(start, end)
    period = _in_period(releases, start, end)
    deployed = [r for r in period if r.reached_production]

    days = (end - start) / _DAY
    if deployed:
        per_day = len(deployed) / days
        frequency = DeploymentFrequency(
            value=per_day,
            per_week=len(deployed) * 7 / days,
            band=deployment_frequency_band(per_day),
            sample_size=len(deployed),
        )
    else:
        frequency = DeploymentFrequency(value=None, per_week=None, band=None, sample_size=0)

    leads = [_non_negative(r.finished_at - r.committed_at) for r in deployed if r.committed_at is not None]
    lead_median = _median_duration(leads) if leads else None
    lead_time = LeadTime(
        value=lead_median,
        p90=percentile_nearest_rank(leads, 90) if leads else None,
        band=lead_time_band(lead_median) if lead_median is not None else None,
        sample_size=len(leads),
    )

    failures = [r for r in period if r.is_change_failure]
    rate = len(failures) / len(period) if period else None
    cfr = ChangeFailureRate(
        value=rate,
        band=change_failure_rate_band(rate) if rate is not None else None,
        failures=len(failures),
        sample_size=len(period),
        from_alerts=sum(1 for r in failures if r.alerted),
    )

    recoveries = [
        _non_negative(r.recovered_at - r.failure_detected_at)
        for r in failures
        if r.recovered_at is not None and r.failure_detected_at is not None
    ]
    unrecovered = tuple(r.release_id for r in failures if r.recovered_at is None)
    recovery_median = _median_duration(recoveries) if recoveries else None
    recovery = RecoveryTime(
        value=recovery_median,
        band=recovery_time_band(recovery_median) if recovery_median is not None else None,
        sample_size=len(recoveries),
        unrecovered=len(unrecovered),
        unrecovered_release_ids=unrecovered,
    )
    return DoraReport(start, end, frequency, lead_time, cfr, recovery)


def _days(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    """Every calendar day in ``tz`` that overlaps [start, end), in order."""
    first = start.astimezone(tz).date()
    # end is exclusive: the last instant inside the period is just before it.
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def releases_per_day(
    releases: Sequence[ProdRelease], start: datetime, end: datetime, tz: ZoneInfo
) -> list[tuple[date, int]]:
    """Releases that reached production per calendar day in ``tz``, zero days included, in order.

    Only releases with ``finished_at`` in [start, end) count, so a partial first or last day shows
    just its part of the period.
    """
    return [(day, len(group)) for day, group in _group_by_day(releases, start, end, tz)]


def median_lead_time_hours_per_day(
    releases: Sequence[ProdRelease], start: datetime, end: datetime, tz: ZoneInfo
) -> list[tuple[date, float | None]]:
    """Median lead time in hours per calendar day in ``tz``; None on days with no measurable release."""
    result: list[tuple[date, float | None]] = []
    for day, group in _group_by_day(releases, start, end, tz):
        leads = [_non_negative(r.finished_at - r.committed_at) for r in group if r.committed_at is not None]
        result.append((day, _median_duration(leads) / timedelta(hours=1) if leads else None))
    return result


def _group_by_day(
    releases: Sequence[ProdRelease], start: datetime, end: datetime, tz: ZoneInfo
) -> list[tuple[date, list[ProdRelease]]]:
    """Releases that reached production in [start, end), grouped by their finishing day in ``tz``."""
    _check_period(start, end)
    buckets: dict[date, list[ProdRelease]] = {day: [] for day in _days(start, end, tz)}
    for release in _in_period(releases, start, end):
        if release.reached_production:
            buckets[release.finished_at.astimezone(tz).date()].append(release)
    return list(buckets.items())


def format_duration(value: timedelta) -> str:
    """A duration for people: its two largest units from its largest non-zero one (``3d 4h``, ``2h 5m``).

    Seconds below the second unit are dropped (truncated, not rounded); a zero second unit is omitted
    (``2h``); zero is ``0s``; a negative duration gets a leading ``-``.
    """
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == 0:
        return "0s"
    amounts: list[tuple[int, str]] = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        amount, seconds = divmod(seconds, size)
        amounts.append((amount, unit))
    first = next(i for i, (amount, _) in enumerate(amounts) if amount)
    parts = [f"{amount}{unit}" for amount, unit in amounts[first : first + 2] if amount]
    return sign + " ".join(parts)

"""DORA figures on constructed histories; every expected value is worked out by hand in a comment."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import dora
from bot.core.dora import (
    Band,
    ProdRelease,
    change_failure_rate_band,
    compute_dora,
    deployment_frequency_band,
    format_duration,
    lead_time_band,
    median_lead_time_hours_per_day,
    percentile_nearest_rank,
    recovery_time_band,
    releases_per_day,
)

TORONTO = ZoneInfo("America/Toronto")


def utc(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def rel(
    release_id: int,
    finished_at: datetime,
    outcome: dora.Outcome = "succeeded",
    verdict: dora.Verdict | None = "pass",
    committed_at: datetime | None = None,
    detected: datetime | None = None,
    recovered: datetime | None = None,
    service: str = "api",
) -> ProdRelease:
    return ProdRelease(release_id, service, finished_at, outcome, verdict, committed_at, detected, recovered)


# The week of Mon 2024-03-04 .. Sun 2024-03-10, as [Mon 00:00Z, next Mon 00:00Z).
WEEK_START, WEEK_END = utc(4), utc(11)

WEEK = [
    # lead 10:00 - 08:00 = 2h
    rel(1, utc(4, 10), committed_at=utc(4, 8)),
    # rolled back: lead Tue 12:00 - Mon 12:00 = 24h; recovery 12:50 - 12:30 = 20m (rollback completed)
    rel(2, utc(5, 12), "rolled_back", None, utc(4, 12), detected=utc(5, 12, 30), recovered=utc(5, 12, 50)),
    # lead 09:00 - 06:00 = 3h
    rel(3, utc(6, 9), committed_at=utc(6, 6)),
    # FAIL verdict, no rollback: lead 15:00 - 14:00 = 1h; recovery 16:40 - 15:10 = 1h30m (release 5)
    rel(4, utc(7, 15), "succeeded", "fail", utc(7, 14), detected=utc(7, 15, 10), recovered=utc(7, 16, 40)),
    # the healthy release that restored service: lead 16:40 - 16:00 = 40m
    rel(5, utc(7, 16, 40), committed_at=utc(7, 16)),
    # failed deploy, never recovered: no lead time (never reached production)
    rel(6, utc(8, 11), "failed", None, utc(8, 10), detected=utc(8, 11)),
    # outside the period: one minute before it, and exactly at its (exclusive) end
    rel(7, utc(3, 23, 59), "failed", None, utc(3, 20), detected=utc(3, 23, 59)),
    rel(8, utc(11, 0), committed_at=utc(10, 0)),
]


def test_empty_period_gives_no_figures() -> None:
    report = compute_dora([], start=WEEK_START, end=WEEK_END)
    assert report.deployment_frequency == dora.DeploymentFrequency(None, None, None, 0)
    assert report.lead_time == dora.LeadTime(None, None, None, 0)
    assert report.change_failure_rate == dora.ChangeFailureRate(None, None, 0, 0)
    assert report.recovery_time == dora.RecoveryTime(None, None, 0, 0, ())


def test_releases_only_outside_the_period_are_ignored() -> None:
    report = compute_dora([WEEK[6], WEEK[7]], start=WEEK_START, end=WEEK_END)
    assert report.deployment_frequency.sample_size == 0
    assert report.change_failure_rate.value is None


def test_week_with_rollback_fail_verdict_and_failed_deploy() -> None:
    report = compute_dora(WEEK, start=WEEK_START, end=WEEK_END)

    # reached production: 1, 2 (rolled back later), 3, 4, 5 = 5 over 7 days
    freq = report.deployment_frequency
    assert freq.sample_size == 5
    assert freq.value == pytest.approx(0.7142857)  # 5 / 7
    assert freq.per_week == pytest.approx(5.0)  # 5 * 7 / 7
    assert freq.band == "high"  # 1/7 <= 0.714 < 1

    # sorted leads 40m, 1h, 2h, 3h, 24h: median = 3rd = 2h; p90 rank ceil(0.9 * 5) = 5 -> 24h
    lead = report.lead_time
    assert (lead.value, lead.p90, lead.sample_size) == (timedelta(hours=2), timedelta(hours=24), 5)
    assert lead.band == "elite"  # 2h < 1 day

    # failures 2 (rolled back), 4 (FAIL), 6 (failed deploy) over attempts 1..6: 3 / 6 = 0.5
    cfr = report.change_failure_rate
    assert (cfr.failures, cfr.sample_size, cfr.value, cfr.band) == (3, 6, 0.5, "low")

    # recoveries 20m and 1h30m: median (20 + 90) / 2 = 55m; release 6 still unrecovered
    rec = report.recovery_time
    assert (rec.value, rec.sample_size, rec.band) == (timedelta(minutes=55), 2, "elite")
    assert (rec.unrecovered, rec.unrecovered_release_ids) == (1, (6,))


def test_rolled_back_release_with_fail_verdict_counts_once() -> None:
    releases = [
        rel(1, utc(4, 10), "rolled_back", "fail", detected=utc(4, 10, 5), recovered=utc(4, 10, 15)),
        rel(2, utc(4, 12)),
    ]
    report = compute_dora(releases, start=utc(4), end=utc(5))
    # one failure (not two) over two attempts = 0.5
    assert (report.change_failure_rate.failures, report.change_failure_rate.value) == (1, 0.5)
    # recovery 10:15 - 10:05 = 10m
    assert report.recovery_time.value == timedelta(minutes=10)


def test_fail_verdict_without_rollback_is_a_change_failure() -> None:
    releases = [
        rel(1, utc(4, 9), verdict="fail", detected=utc(4, 9, 20), recovered=utc(4, 11, 20)),
        rel(2, utc(4, 11, 20), verdict="pass"),
        rel(3, utc(4, 14), verdict="inconclusive"),
        rel(4, utc(4, 15), verdict=None),
    ]
    report = compute_dora(releases, start=utc(4), end=utc(5))
    # all 4 reached production in 1 day; only the FAIL counts as a failure: 1 / 4 = 0.25
    assert report.deployment_frequency.value == 4.0
    assert report.deployment_frequency.band == "elite"
    assert (report.change_failure_rate.value, report.change_failure_rate.band) == (0.25, "low")
    # recovery 11:20 - 09:20 = 2h -> high (1h <= 2h < 1 day)
    assert (report.recovery_time.value, report.recovery_time.band) == (timedelta(hours=2), "high")


def test_failed_deploy_counts_for_failure_rate_not_frequency_or_lead_time() -> None:
    releases = [
        rel(1, utc(4, 10), "failed", None, utc(4, 8), detected=utc(4, 10), recovered=utc(4, 10, 30)),
        rel(2, utc(4, 10, 30), committed_at=utc(4, 9)),
    ]
    report = compute_dora(releases, start=utc(4), end=utc(5))
    # only release 2 reached production: 1 per day
    assert (report.deployment_frequency.sample_size, report.deployment_frequency.value) == (1, 1.0)
    # lead only from release 2: 10:30 - 09:00 = 1h30m (release 1's 2h is not a delivered change)
    assert (report.lead_time.value, report.lead_time.sample_size) == (timedelta(minutes=90), 1)
    # failure 1 over attempts 1, 2 = 0.5
    assert (report.change_failure_rate.failures, report.change_failure_rate.sample_size) == (1, 2)
    # recovery 10:30 - 10:00 = 30m
    assert report.recovery_time.value == timedelta(minutes=30)


def test_recovery_spanning_midnight() -> None:
    releases = [
        rel(1, utc(5, 23, 30), verdict="fail", detected=utc(5, 23, 40), recovered=utc(6, 0, 25)),
        rel(2, utc(6, 0, 25)),
    ]
    report = compute_dora(releases, start=utc(5), end=utc(7))
    # 23:40 -> 24:00 is 20m, 00:00 -> 00:25 is 25m: 45m
    assert report.recovery_time.value == timedelta(minutes=45)
    assert report.recovery_time.band == "elite"
    # each release lands on its own day
    assert releases_per_day(releases, utc(5), utc(7), ZoneInfo("UTC")) == [
        (date(2024, 3, 5), 1),
        (date(2024, 3, 6), 1),
    ]


def test_negative_lead_time_from_clock_skew_is_zero() -> None:
    report = compute_dora([rel(1, utc(4, 10), committed_at=utc(4, 10, 5))], start=utc(4), end=utc(5))
    assert report.lead_time.value == timedelta(0)


def test_period_must_be_aware_and_non_empty() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_dora([], start=datetime(2024, 3, 4), end=datetime(2024, 3, 5))
    with pytest.raises(ValueError, match="empty period"):
        compute_dora([], start=utc(5), end=utc(5))


def test_releases_per_day_across_spring_forward_in_toronto() -> None:
    # 2024-03-10 02:00 EST jumps to 03:00 EDT. Period: Sat 00:00 EST (05:00Z) .. Tue 00:00 EDT (04:00Z).
    start = datetime(2024, 3, 9, tzinfo=TORONTO)
    end = datetime(2024, 3, 12, tzinfo=TORONTO)
    assert (start, end) == (utc(9, 5), utc(12, 4))
    releases = [
        rel(1, utc(9, 4, 59)),  # 23:59 EST Fri 8th: before the period
        rel(2, utc(9, 12), "failed"),  # Sat, but never reached production
        rel(3, utc(10, 6, 59)),  # 01:59 EST Sun 10th
        rel(4, utc(10, 7, 0)),  # 03:00 EDT Sun 10th (one minute later in UTC)
        rel(5, utc(11, 3, 59)),  # 23:59 EDT Sun 10th (a fixed EST offset would also say Sun)
        rel(6, utc(11, 4, 30)),  # 00:30 EDT Mon 11th (a fixed EST offset would wrongly say Sun 23:30)
    ]
    # a 71-hour period, still three calendar days: Sat 0, Sun 3, Mon 1
    assert releases_per_day(releases, start, end, TORONTO) == [
        (date(2024, 3, 9), 0),
        (date(2024, 3, 10), 3),
        (date(2024, 3, 11), 1),
    ]


def test_releases_per_day_across_fall_back_in_toronto() -> None:
    # 2024-11-03 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice. A 49-hour period.
    start = datetime(2024, 11, 2, tzinfo=TORONTO)
    end = datetime(2024, 11, 4, tzinfo=TORONTO)
    releases = [
        rel(1, utc(2, 4, 0, month=11)),  # 00:00 EDT Sat 2nd: the period's first instant
        rel(2, utc(3, 5, 30, month=11)),  # 01:30 EDT Sun 3rd
        rel(3, utc(3, 6, 30, month=11)),  # 01:30 EST Sun 3rd
        rel(4, utc(4, 4, 30, month=11)),  # 23:30 EST Sun 3rd
        rel(5, utc(4, 5, 0, month=11)),  # 00:00 EST Mon 4th: the period's exclusive end
    ]
    assert releases_per_day(releases, start, end, TORONTO) == [(date(2024, 11, 2), 1), (date(2024, 11, 3), 3)]


def test_median_lead_time_per_day() -> None:
    # Mon leads: 2h only; Tue: 24h (rolled back, but it reached production); Wed: 3h;
    # Thu: 1h and 40m -> median 50m = 0.8333h; Fri: failed deploy only; weekend: nothing.
    assert median_lead_time_hours_per_day(WEEK, WEEK_START, WEEK_END, ZoneInfo("UTC")) == [
        (date(2024, 3, 4), 2.0),
        (date(2024, 3, 5), 24.0),
        (date(2024, 3, 6), 3.0),
        (date(2024, 3, 7), pytest.approx(50 / 60)),
        (date(2024, 3, 8), None),
        (date(2024, 3, 9), None),
        (date(2024, 3, 10), None),
    ]


@pytest.mark.parametrize(
    ("per_day", "band"),
    [
        (5.0, "elite"),
        (1.0, "elite"),  # once a day
        (0.999, "high"),
        (1 / 7, "high"),  # once a week
        (1 / 7 - 1e-9, "medium"),
        (1 / 30, "medium"),  # once a month
        (1 / 30 - 1e-9, "low"),
        (0.0, "low"),
    ],
)
def test_deployment_frequency_bands(per_day: float, band: Band) -> None:
    assert deployment_frequency_band(per_day) == band


@pytest.mark.parametrize(
    ("deploys", "days", "band"),
    [(7, 7, "elite"), (1, 7, "high"), (4, 28, "high"), (1, 30, "medium"), (1, 31, "low")],
)
def test_deployment_frequency_band_from_a_history(deploys: int, days: int, band: Band) -> None:
    releases = [rel(i, utc(1) + timedelta(hours=i)) for i in range(deploys)]
    report = compute_dora(releases, start=utc(1), end=utc(1) + timedelta(days=days))
    assert report.deployment_frequency.band == band


@pytest.mark.parametrize(
    ("lead", "band"),
    [
        (timedelta(hours=23, minutes=59, seconds=59), "elite"),
        (timedelta(days=1), "high"),
        (timedelta(days=7), "high"),
        (timedelta(days=7, seconds=1), "medium"),
        (timedelta(days=30), "medium"),
        (timedelta(days=30, seconds=1), "low"),
        (timedelta(days=200), "low"),
    ],
)
def test_lead_time_bands(lead: timedelta, band: Band) -> None:
    assert lead_time_band(lead) == band


@pytest.mark.parametrize(
    ("rate", "band"),
    [
        (0.0, "elite"),
        (0.05, "elite"),
        (0.0500001, "high"),
        (0.10, "high"),
        (0.1000001, "medium"),
        (0.15, "medium"),
        (0.1500001, "low"),
        (0.64, "low"),
        (1.0, "low"),
    ],
)
def test_change_failure_rate_bands(rate: float, band: Band) -> None:
    assert change_failure_rate_band(rate) == band


@pytest.mark.parametrize(("failures", "band"), [(1, "elite"), (2, "high"), (3, "medium"), (4, "low")])
def test_change_failure_rate_band_from_a_history(failures: int, band: Band) -> None:
    # 20 releases: 1/20 = 5%, 2/20 = 10%, 3/20 = 15%, 4/20 = 20%
    releases = [rel(i, utc(4) + timedelta(minutes=i), verdict="fail" if i < failures else "pass") for i in range(20)]
    report = compute_dora(releases, start=utc(4), end=utc(5))
    assert report.change_failure_rate.value == failures / 20
    assert report.change_failure_rate.band == band


@pytest.mark.parametrize(
    ("recovery", "band"),
    [
        (timedelta(minutes=59, seconds=59), "elite"),
        (timedelta(hours=1), "high"),
        (timedelta(hours=23, minutes=59, seconds=59), "high"),
        (timedelta(days=1), "medium"),
        (timedelta(days=7), "medium"),
        (timedelta(days=7, seconds=1), "low"),
    ],
)
def test_recovery_time_bands(recovery: timedelta, band: Band) -> None:
    assert recovery_time_band(recovery) == band


def test_compare_directions() -> None:
    previous_week = [
        # 2 deploys, leads 2h each, no failures
        rel(1, utc(4, 10), committed_at=utc(4, 8)),
        rel(2, utc(5, 10), committed_at=utc(5, 8)),
    ]
    this_week = [
        # 4 deploys, leads 1h each; one rolled back and recovered in 10m
        rel(3, utc(11, 10), committed_at=utc(11, 9)),
        rel(4, utc(12, 10), "rolled_back", None, utc(12, 9), utc(12, 10, 5), utc(12, 10, 15)),
        rel(5, utc(13, 10), committed_at=utc(13, 9)),
        rel(6, utc(14, 10), committed_at=utc(14, 9)),
    ]
    previous = compute_dora(previous_week, start=utc(4), end=utc(11))
    current = compute_dora(this_week, start=utc(11), end=utc(18))
    diff = current.compare(previous)

    # frequency 4/7 vs 2/7: up 2/7 per day, and more is better
    assert diff.deployment_frequency.change == pytest.approx(2 / 7)
    assert diff.deployment_frequency.direction == "better"
    # lead 1h vs 2h: down 1h, and less is better
    assert (diff.lead_time.change, diff.lead_time.direction) == (timedelta(hours=-1), "better")
    # CFR 1/4 vs 0/2: up 0.25, and more is worse
    assert (diff.change_failure_rate.change, diff.change_failure_rate.direction) == (0.25, "worse")
    # no recovery time last week: nothing to compare
    assert (diff.recovery_time.change, diff.recovery_time.direction) == (None, "n/a")
    assert (diff.recovery_time.current, diff.recovery_time.previous) == (timedelta(minutes=10), None)

    # and the other way round, frequency and lead time got worse, CFR better
    back = previous.compare(current)
    assert back.deployment_frequency.direction == "worse"
    assert back.lead_time.direction == "worse"
    assert back.change_failure_rate.direction == "better"

    # against itself: everything the same, except what is missing
    same = current.compare(current)
    assert same.deployment_frequency.direction == "same"
    assert (same.lead_time.direction, same.lead_time.change) == ("same", timedelta(0))
    assert same.change_failure_rate.direction == "same"
    assert same.recovery_time.direction == "same"
    empty = compute_dora([], start=utc(11), end=utc(18))
    assert empty.compare(current).lead_time.direction == "n/a"


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        # the classic nearest-rank example: n = 5
        ([15, 20, 35, 40, 50], 5, 15),  # rank ceil(0.25) = 1
        ([15, 20, 35, 40, 50], 30, 20),  # rank ceil(1.5) = 2
        ([15, 20, 35, 40, 50], 40, 20),  # rank ceil(2.0) = 2
        ([50, 40, 35, 20, 15], 50, 35),  # rank ceil(2.5) = 3, order of input irrelevant
        ([15, 20, 35, 40, 50], 100, 50),  # rank 5
        (list(range(1, 11)), 90, 9),  # rank ceil(9.0) = 9
        (list(range(1, 12)), 90, 10),  # rank ceil(9.9) = 10
        (list(range(1, 101)), 7, 7),  # rank ceil(7.0) = 7, exact despite floating point
        ([42], 90, 42),
    ],
)
def test_percentile_nearest_rank(values: list[int], p: float, expected: int) -> None:
    assert percentile_nearest_rank([float(v) for v in values], p) == expected


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile_nearest_rank([], 90)
    with pytest.raises(ValueError, match="percentile"):
        percentile_nearest_rank([1.0], 0)
    with pytest.raises(ValueError, match="percentile"):
        percentile_nearest_rank([1.0], 101)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=2, minutes=5), "2h 5m"),
        (timedelta(hours=2, minutes=5, seconds=59), "2h 5m"),  # truncated, not rounded
        (timedelta(days=3, hours=4, minutes=59), "3d 4h"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=59.9), "59s"),
        (timedelta(minutes=1, seconds=30), "1m 30s"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=3, minutes=5), "3d"),  # the second unit is hours, and it is zero
        (timedelta(weeks=1), "7d"),
        (timedelta(0), "0s"),
        (timedelta(seconds=-90), "-1m 30s"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


def test_dora_module_imports_nothing_that_does_io() -> None:
    source = Path(dora.__file__).read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    allowed = {
        "__future__",
        "math",
        "collections",
        "dataclasses",
        "datetime",
        "statistics",
        "typing",
        "zoneinfo",
    }
    assert imported <= allowed


# --- properties -------------------------------------------------------------------------------------------

PERIOD_START, PERIOD_END = utc(4), utc(11)
OUTCOMES: list[dora.Outcome] = ["succeeded", "failed", "rolled_back"]
VERDICTS: list[dora.Verdict | None] = [None, "pass", "fail", "inconclusive", "error"]


@st.composite
def releases_strategy(draw: st.DrawFn) -> list[ProdRelease]:
    count = draw(st.integers(0, 25))
    result = []
    for i in range(count):
        finished = PERIOD_START + timedelta(minutes=draw(st.integers(-600, 11 * 24 * 60)))
        commit_lag = draw(st.none() | st.integers(0, 60 * 24 * 40))
        committed = None if commit_lag is None else finished - timedelta(minutes=commit_lag)
        detected = draw(st.none() | st.just(finished))
        recovery_lag = draw(st.none() | st.integers(0, 60 * 24 * 10))
        recovered = None if recovery_lag is None else finished + timedelta(minutes=recovery_lag)
        outcome = draw(st.sampled_from(OUTCOMES))
        verdict = draw(st.sampled_from(VERDICTS))
        result.append(rel(i, finished, outcome, verdict, committed, detected, recovered))
    return result


@given(releases_strategy())
def test_figures_stay_in_range(releases: list[ProdRelease]) -> None:
    report = compute_dora(releases, start=PERIOD_START, end=PERIOD_END)
    cfr = report.change_failure_rate
    assert (cfr.value is None) == (cfr.sample_size == 0)
    if cfr.value is not None:
        assert 0.0 <= cfr.value <= 1.0
        assert cfr.value == cfr.failures / cfr.sample_size
    rec = report.recovery_time
    assert rec.sample_size + rec.unrecovered <= cfr.failures
    assert report.deployment_frequency.sample_size <= cfr.sample_size
    # the daily counts add up to the period's deployments
    per_day = releases_per_day(releases, PERIOD_START, PERIOD_END, TORONTO)
    assert sum(n for _, n in per_day) == report.deployment_frequency.sample_size


@given(releases_strategy())
def test_median_lead_time_lies_between_min_and_max(releases: list[ProdRelease]) -> None:
    report = compute_dora(releases, start=PERIOD_START, end=PERIOD_END)
    leads = [
        r.finished_at - r.committed_at
        for r in releases
        if PERIOD_START <= r.finished_at < PERIOD_END and r.outcome != "failed" and r.committed_at is not None
    ]
    assert report.lead_time.sample_size == len(leads)
    if not leads:
        assert report.lead_time.value is None
        return
    median, p90 = report.lead_time.value, report.lead_time.p90
    assert median is not None and p90 is not None
    assert min(leads) <= median <= max(leads)
    assert median <= p90 <= max(leads)
    assert p90 in leads  # nearest-rank never interpolates

"""Window-decision benchmark: `python bench/windows.py` (from the repository root).

Builds the policy from examples/releasebot.yml and measures:
- decisions at 100,000 random instants over 2026-2027 (prod, business hours): decisions/s, mean and p99 µs;
- the same for staging (`always`);
- decisions whose answer needs `next_open`, from one instant every 7 minutes between 2026-12-17 and
  2027-01-05 (the cut-off, the end-of-year freeze and the Christmas holidays), warm and from a fresh policy;
- the worst case: a 546-day freeze, where the search runs its whole 366-day bound;
- random instants again with a team calendar (categories public+optional, an extra day, a skipped holiday),
  cold and warm, to show the per-year holiday tables stay cached.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.config import Calendar, Config, Freeze, load_config  # noqa: E402
from bot.core.windows import WindowDecision, WindowPolicy  # noqa: E402

N_RANDOM = 100_000


def _time_each(
    decide: Callable[[str, datetime], WindowDecision], env: str, instants: Sequence[datetime]
) -> list[float]:
    """Per-call wall time in µs."""
    out = []
    clock = time.perf_counter_ns
    for at in instants:
        start = clock()
        decide(env, at)
        out.append((clock() - start) / 1000)
    return out


def _throughput(decide: Callable[[str, datetime], WindowDecision], env: str, instants: Sequence[datetime]) -> float:
    start = time.perf_counter()
    for at in instants:
        decide(env, at)
    return len(instants) / (time.perf_counter() - start)


def _p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99) - 1]


def _row(name: str, samples: list[float], rate: float | None = None) -> str:
    rate_text = f"{rate:>12,.0f}" if rate is not None else f"{'':>12}"
    mean, p99 = statistics.fmean(samples), _p99(samples)
    return f"{name:<52} {len(samples):>8,} {rate_text} {mean:>9.2f} {p99:>9.2f} {max(samples):>9.1f}"


def main() -> None:
    config = load_config(ROOT / "examples" / "releasebot.yml")
    rng = random.Random(2026)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    span = (datetime(2028, 1, 1, tzinfo=UTC) - start).total_seconds()
    instants = [start + timedelta(seconds=rng.uniform(0, span)) for _ in range(N_RANDOM)]

    rows = []
    cold = WindowPolicy(config)
    rows.append(_row("random 2026-27, prod, cold policy (first pass)", _time_each(cold.decide, "prod", instants)))

    policy = WindowPolicy(config)
    policy_decide = policy.decide
    _throughput(policy_decide, "prod", instants)  # warm the per-day cache
    rate = _throughput(policy_decide, "prod", instants)
    rows.append(_row("random 2026-27, prod, warm", _time_each(policy_decide, "prod", instants), rate))
    rate = _throughput(policy_decide, "staging", instants)
    rows.append(_row("random 2026-27, staging (always)", _time_each(policy_decide, "staging", instants), rate))

    zone = config.zone
    local_start = datetime(2026, 12, 17, tzinfo=zone)
    year_end = [local_start + timedelta(minutes=7 * i) for i in range(int(19 * 24 * 60 / 7))]
    closed = [at for at in year_end if not policy.decide("prod", at).open]
    rows.append(_row("year end 17 Dec-5 Jan, closed -> next_open, warm", _time_each(policy_decide, "prod", closed)))
    fresh = []
    for at in closed[:: max(1, len(closed) // 200)]:
        once = WindowPolicy(config)
        fresh.extend(_time_each(once.decide, "prod", [at]))
    rows.append(_row("year end, closed -> next_open, fresh policy each", fresh))

    frozen = WindowPolicy(_with_long_freeze(config))
    bounded = [datetime(2026, 3, 2, 10, tzinfo=zone) + timedelta(hours=h) for h in range(0, 24 * 30, 7)]
    first = frozen.decide("prod", bounded[0])
    assert first.next_open is None, "the 546-day freeze should exhaust the search"
    rows.append(_row("546-day freeze: no_opening (366-day search), warm", _time_each(frozen.decide, "prod", bounded)))

    team = _with_team_calendar(config)
    team_cold = WindowPolicy(team)
    rows.append(
        _row("random 2026-27, prod, team calendar, cold policy", _time_each(team_cold.decide, "prod", instants))
    )
    team_warm = WindowPolicy(team)
    _throughput(team_warm.decide, "prod", instants)
    rate = _throughput(team_warm.decide, "prod", instants)
    rows.append(_row("random 2026-27, prod, team calendar, warm", _time_each(team_warm.decide, "prod", instants), rate))

    print(f"{'case':<52} {'calls':>8} {'decisions/s':>12} {'mean µs':>9} {'p99 µs':>9} {'max µs':>9}")
    print("-" * 104)
    for row in rows:
        print(row)
    opened = sum(policy.decide("prod", at).open for at in instants)
    print(
        f"\nprod open at {opened:,} of {N_RANDOM:,} random instants; {len(closed):,} of {len(year_end):,}"
        " year-end samples closed."
    )


def _with_long_freeze(config: Config) -> Config:
    freeze = Freeze(start=date(2026, 1, 1), end=date(2027, 6, 30), reason="Migration", environments=["prod"])
    return config.model_copy(update={"freezes": [freeze]})


def _with_team_calendar(config: Config) -> Config:
    calendar = Calendar.model_validate(
        {
            "country": "CA",
            "subdivision": "ON",
            "categories": ["public", "optional"],
            "extra": [{"date": "2026-12-24", "name": "Company day off"}],
            "skip": ["2027-02-15"],
        }
    )
    return config.model_copy(update={"calendar": calendar})


if __name__ == "__main__":
    main()

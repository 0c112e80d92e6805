"""Scale benchmark: `python bench/scale.py [--releases N] [--runs R] [--db PATH]` (from the repository root).

Builds a temporary SQLite store holding N releases (default 1,000,000): 30 services × 3 environments
(dev → staging → prod) over two years, each version promoted through the pipeline, about 1% failed
deploys and 1.5% production rollbacks (with their rollback releases and a failing post-release check),
one candidate per version with its commit time. Rows go in with ``executemany`` in one transaction.

Then, through the engine exactly as a command would call it (the store's own thread, awaited from the
event loop, the answer then worded by its view), it times after a warm-up: ``status``, ``history`` (with
and without an environment), the weekly and daily summaries, DORA for a week, and the App Home view. It
prints the median, p90 and max of several runs against the 50 ms target and exits 1 when a median misses it.

``--db PATH`` keeps the database there, and reuses it (migrating it if needed) when it already exists.
``--gc-freeze`` calls ``gc.freeze()`` before timing, as a long-running process may after start-up: the
weekly summary allocates thousands of objects, and the slowest runs without it are full (generation 2)
garbage collections walking every long-lived object, not the summary's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.config import Config, parse_config  # noqa: E402
from bot.engine import Deps, Engine  # noqa: E402
from bot.ports import DeployProvider  # noqa: E402
from bot.store import AsyncStore, Store  # noqa: E402
from bot.views.admin import history_message, status_message  # noqa: E402
from bot.views.render import Message  # noqa: E402
from bot.views.summary import Period, summary_message  # noqa: E402
from commands.home import home_for  # noqa: E402
from tests.harness import business_calendar  # noqa: E402

TARGET_MS = 50.0
SERVICES = [f"svc-{i:02d}" for i in range(1, 31)]
PIPELINE = ["dev", "staging", "prod"]
# Friday 27 November 2026, 15:00 in Toronto: when the weekly summary is posted.
NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
SPAN = timedelta(days=730)
USERS = ["U01RELEASE", "U02RELEASE", "U03RELEASE", "U04RELEASE"]

INSERT_RELEASE = (
    "INSERT INTO releases (id, service, env, version, kind, state, requested_by, requested_at, started_at, "
    "finished_at, channel, thread_ts, source_env, previous_version, rollback_of, healthy, change_failure, verdict) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_CANDIDATE = (
    "INSERT INTO candidates (service, version, commit_sha, committed_at, components, body_hash, created_at) "
    "VALUES (?, ?, ?, ?, '{}', ?, ?)"
)
INSERT_MEASUREMENT = (
    "INSERT INTO measurements (release_id, check_name, offset_s, due_at, state, verdict, value, summary, measured_at) "
    "VALUES (?, 'error rate', 900, ?, 'done', 'fail', 0.09, 'error rate 0.09 >= 0.05', ?)"
)
INSERT_ENV_STATE = "INSERT INTO env_state (service, env, version, release_id, since, by) VALUES (?, ?, ?, ?, ?, ?)"


def bench_config() -> Config:
    """30 services on the same dev → staging → prod pipeline, prod in business hours (CA-ON)."""
    run = ["true"]
    return parse_config(
        {
            **business_calendar(),
            "groups": {"releasers": USERS, "oncall": ["U01ONCALL1"]},
            "services": {
                name: {"channel": f"C{i:08d}", "components": ["api"], "pipeline": PIPELINE}
                for i, name in enumerate(SERVICES, start=1)
            },
            "environments": {
                "dev": {"window": "always", "deploy": {"provider": "command", "run": run}},
                "staging": {"window": "always", "deploy": {"provider": "command", "run": run}},
                "prod": {
                    "window": "business_hours",
                    "allowed": ["releasers"],
                    "deploy": {"provider": "command", "run": run},
                },
            },
            "summaries": {"channel": "C00SUMMARY", "daily": "17:00", "weekly": "fri 15:00"},
        }
    )


def _ts(value: datetime) -> str:
    # The store's own format (bot.store.rows.ts): ISO-8601 in UTC with microseconds, so text order is time order.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


Rows = list[tuple[Any, ...]]


def generate(total: int, seed: int = 8) -> tuple[Rows, Rows, Rows, Rows]:
    """Releases (time-ordered ids), candidates, failing measurements and env state for ``total`` releases."""
    rng = random.Random(seed)
    # Each version makes 3 releases (one per stage) plus a rollback 1.5% of the time.
    versions_per_service = max(1, round(total / len(SERVICES) / 2.98))
    step = SPAN / versions_per_service
    start = NOW - SPAN
    events: list[tuple[datetime, str, str, str, str, str, str | None, datetime, int]] = []
    candidates: list[tuple[Any, ...]] = []
    for service in SERVICES:
        offset = timedelta(seconds=rng.uniform(0, step.total_seconds()))
        for i in range(versions_per_service):
            version = f"1.{i // 1000}.{i % 1000}"
            committed = start + offset + step * i + timedelta(seconds=rng.uniform(0, 600))
            candidates.append(
                (service, version, f"{rng.getrandbits(160):040x}", _ts(committed), f"h{i}", _ts(committed))
            )
            at = committed
            for env in PIPELINE:
                at += timedelta(minutes=rng.uniform(20, 90) if env != "prod" else rng.uniform(120, 2000))
                roll = rng.random()
                if roll < 0.01:
                    state = "failed"
                elif env == "prod" and roll < 0.025:
                    state = "rolled_back"
                else:
                    state = "succeeded"
                user = rng.choice(USERS)
                source = None if env == "dev" else PIPELINE[PIPELINE.index(env) - 1]
                events.append((at, service, env, version, "promote" if source else "deploy", state, source, at, 0))
                if state == "rolled_back":
                    back = at + timedelta(minutes=rng.uniform(10, 50))
                    events.append((back, service, env, version, "rollback", "succeeded", user, at, 1))
                if state == "failed":
                    break  # a failed stage is not promoted further
    events.sort(key=lambda e: e[0])
    events = events[:total]

    releases: list[tuple[Any, ...]] = []
    measurements: list[tuple[Any, ...]] = []
    last_id: dict[tuple[str, str, str], int] = {}  # (service, env, version) -> id of its (non-rollback) release
    live: dict[tuple[str, str], str] = {}
    env_state: dict[tuple[str, str], tuple[Any, ...]] = {}
    for release_id, (finished, service, env, version, kind, state, extra, origin_at, is_rollback) in enumerate(
        events, start=1
    ):
        user = USERS[release_id % len(USERS)]
        requested = finished - timedelta(minutes=6)
        channel, thread = f"C{SERVICES.index(service) + 1:08d}", f"{int(finished.timestamp())}.{release_id % 10**6:06d}"
        if is_rollback:
            original = last_id[(service, env, version)]
            target = live.get((service, env), version)
            releases.append(
                (
                    release_id,
                    service,
                    env,
                    target,
                    "rollback",
                    "succeeded",
                    extra,
                    _ts(requested),
                    _ts(requested),
                    _ts(finished),
                    channel,
                    thread,
                    None,
                    version,
                    original,
                    1,
                    0,
                    None,
                )
            )
            measured = origin_at + timedelta(minutes=5)
            measurements.append((original, _ts(measured), _ts(measured)))
            live[(service, env)] = target
            env_state[(service, env)] = (service, env, target, release_id, _ts(finished), extra)
            continue
        last_id[(service, env, version)] = release_id
        previous = live.get((service, env))
        if state == "succeeded":
            live[(service, env)] = version
            env_state[(service, env)] = (service, env, version, release_id, _ts(finished), user)
        releases.append(
            (
                release_id,
                service,
                env,
                version,
                kind,
                state,
                user,
                _ts(requested),
                _ts(requested),
                _ts(finished),
                channel,
                thread,
                extra,
                previous,
                None,
                0 if state != "succeeded" else 1,
                1 if state in ("failed", "rolled_back") else 0,
                "fail" if state == "rolled_back" else None,
            )
        )
    return releases, candidates, measurements, list(env_state.values())


def build_store(path: Path, total: int) -> tuple[Store, dict[str, float]]:
    """Create the store at ``path`` and fill it; returns it and how long each phase took (s)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    releases, candidates, measurements, env_state = generate(total)
    timings["generate"] = time.perf_counter() - started
    store = Store(path)
    conn = store.sql.db.conn
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT_CANDIDATE, candidates)
    conn.executemany(INSERT_RELEASE, releases)
    conn.executemany(INSERT_MEASUREMENT, measurements)
    conn.executemany(INSERT_ENV_STATE, env_state)
    conn.execute("COMMIT")
    timings["insert"] = time.perf_counter() - started
    return store, timings


class _Clock:
    def now(self) -> datetime:
        return NOW


class _Notifier:
    """Nothing leaves the process: the benchmark times the bot's own work."""

    async def post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None) -> str:
        return "1.0"

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        return None

    async def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]]) -> None:
        return None

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        return None

    async def upload(self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str) -> None:
        return None

    async def permalink(self, channel: str, ts: str) -> None:
        return None


class _Directory:
    async def group_members(self, group_id: str) -> frozenset[str]:
        return frozenset()

    async def user_timezone(self, user_id: str) -> str | None:
        return None


def _no_provider(env: str) -> DeployProvider:
    raise RuntimeError("the benchmark deploys nothing")


async def _measure(call: Callable[[], Awaitable[object]], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def run_bench(store: Store, runs: int, warmup: int) -> list[tuple[str, list[float]]]:
    config = bench_config()
    db = AsyncStore(store)
    engine = Engine(
        Deps(
            config=config,
            db=db,
            notifier=_Notifier(),
            directory=_Directory(),
            clock=_Clock(),
            providers=_no_provider,
            data_dir=Path(str(store.path)).parent,  # nothing deploys here
        )
    )
    service = SERVICES[len(SERVICES) // 2]
    week = engine.summaries.period_bounds("week", NOW)
    zone = config.zone

    # Each case is what a command costs: the service's answer, then the view that words it.
    async def status() -> Message:
        return status_message(await engine.admin.status(service), zone)

    def history(env: str | None, count: int) -> Callable[[], Awaitable[Message]]:
        async def call() -> Message:
            return history_message(await engine.admin.history(service, env, count), zone)

        return call

    def summary(period: Period) -> Callable[[], Awaitable[Message]]:
        async def call() -> Message:
            return summary_message(await engine.summaries.summary(period), zone)

        return call

    cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (f"status {service}", status),
        (f"history {service} (all envs, 10)", history(None, 10)),
        (f"history {service} prod (10)", history("prod", 10)),
        (f"history {service} prod (50)", history("prod", 50)),
        ("DORA, one week (all services)", lambda: engine.summaries.dora_between(*week)),
        ("weekly summary", summary("week")),
        ("daily summary", summary("day")),
        ("App Home view (30 services)", lambda: home_for(engine, "U01RELEASE")),
    ]
    results = []
    try:
        for name, call in cases:
            results.append((name, await _measure(call, runs, warmup)))
    finally:
        db.close()
    return results


def _p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--releases", type=int, default=1_000_000, help="releases to store (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per operation (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--db", type=Path, default=None, help="keep the database here (reused if it exists)")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before timing")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="releasebot-scale-") as tmp:
        path = args.db or Path(tmp) / "scale.db"
        if path.exists():
            store, built = Store(path), f"reused {path}"
        else:
            store, timings = build_store(path, args.releases)
            built = f"generated in {timings['generate']:.1f} s, inserted in {timings['insert']:.1f} s"
        counts = {t: store.sql.one(f"SELECT count(*) AS n FROM {t}") for t in ("releases", "candidates")}  # noqa: S608
        size_mb = path.stat().st_size / 1e6
        print(
            f"store: {counts['releases']['n'] if counts['releases'] else 0:,} releases, "
            f"{counts['candidates']['n'] if counts['candidates'] else 0:,} candidates, {size_mb:,.0f} MB; {built}"
        )
        print(f"migrations: {', '.join(store.sql.applied_migrations())}")
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        print(f"gc: {'frozen before timing' if args.gc_freeze else 'as is (see --gc-freeze)'}")
        results = asyncio.run(run_bench(store, args.runs, args.warmup))

    print(f"\n{'operation':<40} {'median ms':>10} {'p90 ms':>9} {'max ms':>9}  target {TARGET_MS:.0f} ms")
    missed = 0
    for name, samples in results:
        median = statistics.median(samples)
        ok = median < TARGET_MS
        missed += not ok
        print(f"{name:<40} {median:>10.2f} {_p90(samples):>9.2f} {max(samples):>9.2f}  {'ok' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

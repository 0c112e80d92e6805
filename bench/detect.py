"""Detection latency of a watch-window check: an exporter flipped bad right after a release, a REAL Prometheus.

A tiny aiohttp exporter (port 0) serves ``bench_error_ratio{version=…}``; the real ``prometheus`` binary
scrapes it every 1 s. The bot runs in-process (the real HTTP app, engine, SQLite and APScheduler on the wall
clock, against the fake Slack Web API; tests/harness.py) with one prod check
``max(bench_error_ratio{version="{version}"})`` ``fail_if: "> 0.05"`` watched ``every`` N seconds, and
``on_check_failure: auto_rollback``. Each run releases a new version through staging to prod, lets two ticks pass,
flips that version's ratio to 0.5 at a random moment between ticks (any phase of the ticks and of Prometheus's
scrapes), and measures:

- flip → FAIL message: from the flip to the fake Slack receiving the window's reply saying FAIL
  (goal: at most ``every`` + 2 s: up to one tick, one scrape, and the work);
- verdict → rollback start: from that message to the deploy program starting the rollback (it stamps
  its start with ``date +%s.%N``) (goal: at most 1 s).

Run: `.venv/bin/python bench/detect.py [--runs 5] [--every 1 5]` (needs the prometheus binary). A report:
the exit code is 0 unless a run fails to detect the flip at all.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402

from tests.fakes.slack_api import RecordedCall  # noqa: E402
from tests.harness import BotHarness, MutableClock, config_dict, running_bot, ship_to_prod  # noqa: E402
from tests.prometheus_harness import RealPrometheus, require_prometheus  # noqa: E402

STABLE = "1.2.2"
BAD, GOOD = 0.5, 0.001
VERDICT_TO_ROLLBACK_GOAL = 1.0
SLACK_GOAL = 2.0  # flip → FAIL at most every + this


class WallClock(MutableClock):
    """The bot's clock is the wall clock here: APScheduler fires the ticks in real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Exporter:
    """``/metrics``: ``bench_error_ratio{version}`` gauges; ``flip`` sets one; scrapes are counted by an event."""

    def __init__(self) -> None:
        self.ratios: dict[str, float] = {STABLE: GOOD}
        self.scrapes = 0
        self._scraped = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _metrics(self, request: web.Request) -> web.Response:
        lines = ["# TYPE bench_error_ratio gauge"]
        lines += [f'bench_error_ratio{{version="{v}"}} {r:g}' for v, r in sorted(self.ratios.items())]
        self.scrapes += 1
        self._scraped.set()
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def scraped(self, n: int) -> None:
        target = self.scrapes + n
        async with asyncio.timeout(30):
            while self.scrapes < target:
                self._scraped.clear()
                await self._scraped.wait()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def deploy_script(root: Path) -> Path:
    """A deploy program that stamps each call's start (wall clock) into its log, then succeeds."""
    script = root / "deploy.sh"
    script.write_text('#!/bin/sh\nlog="$1"; shift\nprintf \'%s %s\\n\' "$(date +%s.%N)" "$*" >> "$log"\n')
    script.chmod(0o755)
    return script


def bench_config(root: Path, prometheus_url: str, every: int) -> dict[str, Any]:
    log = root / "deploys.log"
    config = config_dict(log, window="always", on_check_failure="auto_rollback")
    run = [str(deploy_script(root)), str(log), "{service}", "{version}", "{environment}", "{weight}"]
    for env in config["environments"].values():
        env["deploy"] = {"provider": "command", "run": run, "timeout": "20s"}
    config["environments"]["prod"]["rollback"] = {"approvals": {"required": 0}}
    config["environments"]["prod"]["checks"] = [
        {
            "name": "error rate",
            "prometheus": 'max(bench_error_ratio{version="{version}"})',
            "fail_if": "> 0.05",
            "every": f"{every}s",
            "for": "10m",
        }
    ]
    config["freezes"] = []
    config["metrics"] = {"prometheus_url": prometheus_url, "timeout": "5s", "retries": 0}
    return config


def is_fail(call: RecordedCall) -> bool:
    text = str(call.args.get("text", ""))
    return call.method in ("chat.postMessage", "chat.update") and text.startswith("error rate:") and " FAIL " in text


async def one_run(
    bot: BotHarness, exporter: Exporter, version: str, *, first: bool, every: int, rng: random.Random
) -> tuple[float, float]:
    """Release ``version``, let a couple of ticks pass, flip it bad at a random moment between ticks, and return
    (flip → FAIL message, FAIL message → rollback start)."""
    exporter.ratios[version] = GOOD
    await exporter.scraped(2)
    release = await ship_to_prod(bot, version, first=first)
    assert release.version == version and release.state.value == "succeeded", release
    # The fault comes while the window runs, at any phase of its ticks and of Prometheus's scrapes: the
    # scenario's own timing, not a wait for the bot.
    await asyncio.sleep(2 * every + rng.uniform(0, every))
    seen = len(bot.slack.calls)
    flipped = time.time()
    exporter.ratios[version] = BAD
    slack = bot.slack
    async with asyncio.timeout(60), slack._cond:
        await slack._cond.wait_for(lambda: any(is_fail(c) for c in slack.calls[seen:]))
    verdict = next(c for c in slack.calls[seen:] if is_fail(c)).time
    await bot.settle()  # the rollback runs to its end
    started = [
        float(line.split()[0])
        for line in bot.log.read_text().splitlines()
        if line.split()[1:] == ["notify", STABLE, "prod", "100"] and float(line.split()[0]) >= verdict - 1
    ]
    assert started, f"no rollback of {version} in the deploy log"
    for done in bot.store.history("notify", "prod", 5):  # the rollback's own window: not part of this run
        await bot.engine.checks.cancel_checks(done.id, "bench run over")
    return verdict - flipped, started[0] - verdict


def describe(label: str, values: list[float], goal: float) -> str:
    median, worst = statistics.median(values), max(values)
    ok = "meets" if worst <= goal else "MISSES"
    return f"  {label:<28} median {median:6.3f} s   max {worst:6.3f} s   goal <= {goal:g} s ({ok})"


async def bench(runs: int, everies: list[int]) -> None:
    require_prometheus()
    rng = random.Random(7)  # the flips' phases: the same on every run of the bench
    exporter = Exporter()
    await exporter.start()
    try:
        async with RealPrometheus([f"127.0.0.1:{exporter.port}"], scrape_interval="1s") as prometheus:
            await exporter.scraped(2)
            for every in everies:
                with tempfile.TemporaryDirectory(prefix="detect-") as tmp:
                    root = Path(tmp)
                    config = bench_config(root, prometheus.url, every)
                    async with running_bot(root, clock=WallClock(datetime.now(UTC)), config=config) as bot:
                        detect, react = [], []
                        for k in range(runs):
                            d, r = await one_run(bot, exporter, f"1.3.{k}", first=k == 0, every=every, rng=rng)
                            detect.append(d)
                            react.append(r)
                        first = next(r for r in bot.store.history("notify", "prod", 50) if r.version == "1.3.0")
                        ticks = bot.store.sql.one(
                            "SELECT count(*) AS n FROM measurements WHERE release_id = ?", (first.id,)
                        )
                    print(f"every {every}s, {runs} runs (real Prometheus, 1 s scrapes):")
                    print(describe("flip -> FAIL message", detect, every + SLACK_GOAL))
                    print(describe("verdict -> rollback start", react, VERDICT_TO_ROLLBACK_GOAL))
                    print(f"  rows stored for one release's 10m window: {ticks['n'] if ticks else '?'}")
    finally:
        await exporter.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="releases flipped bad per `every` (default 5)")
    parser.add_argument("--every", type=int, nargs="+", default=[1, 5], help="watch intervals in seconds")
    args = parser.parse_args()
    asyncio.run(bench(args.runs, args.every))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Log checks for real: a release's deploy writes the service's log, REAL mtail turns its lines into counters,
REAL Prometheus scrapes mtail every second, and the release's ``prometheus`` check on
``rate(errors_total[1m])`` FAILs when the lines are errors and PASSes when they are clean.

The mtail program is the one shipped in ``examples/mtail/``; the check is the one ``examples/releasebot.yml``
shows (a test below keeps the two equal). Skipped where ``mtail`` or ``prometheus`` is absent, unless
``CI=true``: then a missing binary fails.

Timing: the check runs at release time + ``after`` (20 s). The test waits (a bounded poll of Prometheus's API —
the only signal external processes give) until Prometheus has ingested the deploy's lines, then takes the due
measurement as the scheduler's wake-up does. Prometheus is then asked about an instant a few seconds ahead of
its newest sample, which it answers from the samples it has: the 1 m window holds the counter from before the
deploy and after it.
"""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import Release, ReleaseState
from tests.harness import CHANNEL, BotHarness, MutableClock, config_dict, running_bot
from tests.mtail_harness import RealMtail, await_value, require_mtail
from tests.prometheus_harness import RealPrometheus, require_prometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "examples" / "mtail"
EXAMPLE_CONFIG = ROOT / "examples" / "releasebot.yml"
# The example's check: errors per second over the last minute, of this service's mtail program.
ERROR_RATE = 'sum(rate(errors_total{prog="{service}.mtail"}[1m]))'
THRESHOLDS = {"pass_if": "< 0.05", "fail_if": ">= 0.1"}
LINES = 25  # what the deploy below writes: 5 start-up lines, then 20 at the level it is given
ERROR_LINES = 20

# A service starting up: the deploy script appends the lines the new version logs as it serves.
SERVICE_DEPLOY = """#!/bin/sh
# Arguments: LOG LEVEL SERVICE VERSION. Appends 5 INFO start-up lines, then 20 lines at LEVEL.
log="$1"; level="$2"; service="$3"; version="$4"
i=0
while [ "$i" -lt 5 ]; do
  printf '%s INFO %s %s: worker %s started\\n' "$(date -u +%FT%TZ)" "$service" "$version" "$i" >> "$log"
  i=$((i + 1))
done
i=0
while [ "$i" -lt 20 ]; do
  printf '%s %s %s %s: request %s handled\\n' "$(date -u +%FT%TZ)" "$level" "$service" "$version" "$i" >> "$log"
  i=$((i + 1))
done
echo "deployed $service $version"
"""


@dataclass
class LogStack:
    log: Path
    deploy: Path
    mtail: RealMtail
    prometheus: RealPrometheus


@asynccontextmanager
async def log_stack(tmp_path: Path) -> AsyncIterator[LogStack]:
    """The service's (empty) log, real mtail tailing it with the example program, real Prometheus scraping mtail
    every second — yielded once Prometheus has two samples of ``errors_total`` from before any deploy."""
    require_mtail()
    require_prometheus()
    log = tmp_path / "notify.log"
    log.touch()  # mtail follows the files it finds at start-up
    deploy = tmp_path / "deploy-notify.sh"
    deploy.write_text(SERVICE_DEPLOY)
    deploy.chmod(deploy.stat().st_mode | stat.S_IXUSR)
    async with RealMtail(PROGRAMS, [log]) as mtail, RealPrometheus([mtail.target], scrape_interval="1s") as prometheus:
        # errors_total is exported as 0 from the start: two samples of it make rate() answer 0, not "no data".
        await await_value(prometheus.url, 'count_over_time(errors_total{prog="notify.mtail"}[1m])', lambda n: n >= 2)
        yield LogStack(log, deploy, mtail, prometheus)


def log_check_config(stack: LogStack, level: str) -> dict[str, Any]:
    """The harness config; prod (always open) deploys with the script writing ``level`` lines and checks the
    error rate 20 s after the release."""
    config = config_dict(stack.log.parent / "deploys.log", window="always")
    config["environments"]["prod"]["deploy"] = {
        "provider": "command",
        "run": [str(stack.deploy), str(stack.log), level, "{service}", "{version}"],
        "timeout": "20s",
    }
    config["environments"]["prod"]["checks"] = [
        {"name": "log errors", "prometheus": ERROR_RATE, "after": ["20s"], **THRESHOLDS}
    ]
    config["freezes"] = []  # the clock follows the wall clock: the year-end freeze must not refuse it
    config["metrics"] = {"prometheus_url": stack.prometheus.url, "timeout": "5s", "retries": 0}
    return config


async def release_to_prod(bot: BotHarness, version: str) -> Release:
    """Ship ``version`` through staging, then to prod with the clock at the wall clock (Prometheus's time)."""
    bot.live("prod", "1.2.2")
    bot.add_candidate(version)
    await bot.command(f"staging {version}")
    await bot.settle()
    bot.clock.set(datetime.now(UTC))
    await bot.command("prod")
    await bot.settle()
    release = bot.store.history("notify", "prod", 1)[0]
    assert (release.version, release.state) == (version, ReleaseState.SUCCEEDED), bot.last_reply()
    return release


async def measure_when_ingested(bot: BotHarness, stack: LogStack, release: Release) -> str:
    """Wait until Prometheus holds the deploy's lines, take the measurement due 20 s after the release, and
    return the check's reply in the release's thread."""
    # mtail counted every line the deploy wrote, and Prometheus scraped that: the data the check needs is in.
    await await_value(stack.prometheus.url, 'sum(lines_total{prog="notify.mtail"})', lambda n: n == LINES)
    assert release.finished_at is not None
    due = release.finished_at + timedelta(seconds=20)
    assert datetime.now(UTC) < due, "ingestion took longer than the check's offset; the test cannot tell"
    bot.clock.set(due)
    await bot.engine.checks.run_due_measurements()
    await bot.settle()  # a scheduler wake-up may have taken it instead: the effect is the same, once
    found = bot.store.get_release(release.id)
    assert found is not None and found.thread_ts is not None
    replies = [
        m.text + "\n" + json.dumps(m.blocks, ensure_ascii=False)
        for m in bot.slack.messages(CHANNEL)
        if m.thread_ts == found.thread_ts and m.text.startswith("log errors: ")
    ]
    assert len(replies) == 1, replies
    return replies[0]


async def test_error_lines_written_by_the_deploy_fail_the_check(tmp_path: Path) -> None:
    async with log_stack(tmp_path) as stack:
        config = log_check_config(stack, "ERROR")
        async with running_bot(tmp_path, clock=MutableClock(datetime.now(UTC)), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            reply = await measure_when_ingested(bot, stack, release)

            assert "log errors: fail" in reply, reply
            shown_query = json.dumps('sum(rate(errors_total{prog="notify.mtail"}[1m]))')[1:-1]  # as in the blocks
            assert shown_query in reply, "the thread shows the query, the service filled in"
            assert bot.store.get_release(release.id).verdict == "fail"  # type: ignore[union-attr]
        errors = await await_value(stack.prometheus.url, 'sum(errors_total{prog="notify.mtail"})', lambda n: True)
        assert errors == ERROR_LINES
    assert stack.log.read_text().count(" ERROR notify 1.3.0: request ") == ERROR_LINES


async def test_clean_lines_written_by_the_deploy_pass_the_check(tmp_path: Path) -> None:
    async with log_stack(tmp_path) as stack:
        config = log_check_config(stack, "INFO")
        async with running_bot(tmp_path, clock=MutableClock(datetime.now(UTC)), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            reply = await measure_when_ingested(bot, stack, release)

            assert "log errors: pass" in reply, reply
            assert "log errors = 0 " in reply
            assert bot.store.get_release(release.id).verdict == "pass"  # type: ignore[union-attr]
        # mtail did read the deploy's lines (all INFO): the 0 is a clean log, not a log nobody read.
        info = await await_value(stack.prometheus.url, 'sum(lines_total{level="INFO"})', lambda n: True)
        assert info == LINES
        assert "lines_total" in await stack.mtail.metrics()


def test_the_example_config_shows_the_tested_check_and_program() -> None:
    """The commented example in examples/releasebot.yml is the check tested here, on the shipped program."""
    example = EXAMPLE_CONFIG.read_text()
    assert f"prometheus: '{ERROR_RATE}'" in example
    assert f'pass_if: "{THRESHOLDS["pass_if"]}"' in example and f'fail_if: "{THRESHOLDS["fail_if"]}"' in example
    program = (PROGRAMS / "notify.mtail").read_text()
    assert "counter errors_total" in program and "counter lines_total by level" in program

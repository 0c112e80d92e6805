"""Store round trips of two user actions, end to end through the real bot (tests/test_round_trips.py bounds them).

Drives the real HTTP app over the fake Slack Web API (tests/harness.py), as the scenario tests do, and
counts every AsyncStore.run()/read() (``AsyncStore.round_trips``) while each action and all the work it
starts runs, tallied by store method and by caller (``AsyncStore.tally``):

(a) `/release staging 1.2.3`, from the signed slash command through the deploy to the final thread
    message;
(b) one Approve click on a prod release that needs one approval (the click runs the release).

Each action ends when the engine's background work is done (``engine.drain()``) and the Slack outbox has
delivered everything (``OutboxNotifier.drained()``): nothing sleeps. The calls are grouped by who made
them: the engine (bot/engine), the Slack outbox (bot/slack/outbox*.py, queueing and delivering the
engine's messages), and everything else (the Slack edge, command handlers, ...). Setup done directly on
the synchronous store (candidates, history) is not counted. Targets: at most 15 on the action's own path
(engine, edge, queueing its messages) and 2 per message for the outbox's background delivery. A unit
(several store calls in one round trip) is listed by the function that made it.

Run: `.venv/bin/python bench/round_trips.py [--callers]`
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import (  # noqa: E402
    CHANNEL,
    ONCALL1,
    TUESDAY_10AM,
    BotHarness,
    MutableClock,
    buttons,
    config_dict,
    running_bot,
)
from tests.round_trips import Measured, area, measure  # noqa: E402

TARGET = 15
VERSION = "1.2.3"


@asynccontextmanager
async def bot_in(**prod: Any) -> AsyncIterator[BotHarness]:
    """A fresh bot on Tuesday 10:00 with the scenario tests' config, ``prod`` overriding prod's settings."""
    with tempfile.TemporaryDirectory(prefix="round-trips-") as tmp:
        path = Path(tmp)
        config = config_dict(path / "deploys.log", **prod)
        async with running_bot(path, clock=MutableClock(TUESDAY_10AM), config=config) as bot:
            yield bot


async def release_to_staging() -> Measured:
    async with bot_in() as bot:
        bot.add_candidate(VERSION)
        measured = await measure(bot, f"(a) /release staging {VERSION}", lambda: bot.command(f"staging {VERSION}"))
        expect(bot.deploys() == [f"notify {VERSION} staging 100"], f"deploys: {bot.deploys()}")
        expect(any("is live in staging" in m.text for m in bot.slack.messages(CHANNEL)), "no 'is live' message")
        return measured


async def approve_prod_release() -> tuple[Measured, Measured]:
    """The prod request (up to the approval message), for context, then the Approve click itself."""
    async with bot_in(approvals={"required": 1, "from": ["oncall"]}) as bot:
        bot.add_candidate("1.2.2")
        bot.add_candidate(VERSION)
        bot.live("prod", "1.2.2")
        bot.live("staging", VERSION)
        request = await measure(
            bot, "(context, not part of b) /release prod up to the approval request", lambda: bot.command("prod")
        )
        approvals = [
            value
            for call in bot.slack.calls_to("chat.postMessage")
            if (value := buttons(call.args.get("blocks") or []).get("approval_approve")) is not None
        ]
        expect(len(approvals) == 1, f"approval requests posted: {approvals}")
        expect(bot.deploys() == [], f"deployed before the approval: {bot.deploys()}")
        click = await measure(
            bot,
            "(b) Approve click on a prod release needing one approval",
            lambda: bot.click("approval_approve", approvals[0], user=ONCALL1),
        )
        expect(bot.deploys() == [f"notify {VERSION} prod 100"], f"deploys: {bot.deploys()}")
        return request, click


def expect(condition: bool, why: str) -> None:
    """The scenario really ran as intended, or the numbers mean nothing."""
    if not condition:
        raise SystemExit(f"scenario went wrong: {why}")


def area_order(name: str) -> tuple[bool, bool, str]:
    """The engine first, then the outbox, then the rest by module name."""
    return name != "engine", name != "outbox", name


def label(method: str, caller: str) -> str:
    """A store method by its name; a unit (``in_transaction``) by the function that made it."""
    return f"unit in {caller.rpartition(':')[2]}" if method == "in_transaction" else method


def report(measured: Measured, *, callers: bool) -> None:
    path_ok = "ok" if measured.path <= TARGET else f"over the target of {TARGET}"
    per_message = measured.delivery / measured.enqueued if measured.enqueued else 0.0
    print(
        f"{measured.name}: {measured.total} round trips — path {measured.path} ({path_ok}), "
        f"delivery {measured.delivery} for {measured.enqueued} messages ({per_message:.1f} per message)"
    )
    by_area: dict[str, Counter[str]] = {}
    for trip, n in measured.tally.items():
        by_area.setdefault(area(trip.caller), Counter())[label(trip.method, trip.caller)] += n
    for name in sorted(by_area, key=area_order):
        methods = by_area[name]
        print(f"  {name}: {sum(methods.values())}")
        for method, n in sorted(methods.items(), key=lambda item: (-item[1], item[0])):
            print(f"    {n:3d}  {method}")
    if callers:
        print("  by caller:")
        for trip, n in sorted(
            measured.tally.items(), key=lambda item: (area_order(area(item[0].caller)), -item[1], item[0])
        ):
            print(f"    {n:3d}  {trip.method:32s} <- {trip.caller}")
    print()


async def run(callers: bool) -> None:
    staging = await release_to_staging()
    request, click = await approve_prod_release()
    for measured in (staging, click, request):
        report(measured, callers=callers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", action="store_true", help="also break each count down by calling function")
    asyncio.run(run(parser.parse_args().callers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

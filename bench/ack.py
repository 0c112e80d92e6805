"""Ack latency of `/release status`: the bot in HTTP mode vs a bare slack-bolt AsyncApp and a raw aiohttp handler.

The same signed slash-command bodies (re-signed with a fresh timestamp on every send) go to each
server at ``--concurrency`` connections, in rotating rounds (each target takes each place in the order
equally often) so machine noise hits all of them. Each server runs in its own process (see
bench/_load.py):

- the bot, which answers `status` inside its ack (or through its response_url on the fake Slack);
- a bare Bolt AsyncApp in Bolt's default configuration whose listener only acks: Bolt runs a listener as
  a task and polls for its ack every 10 ms, a floor under every request (the bot's app answers when its
  listener returns instead: ``process_before_response``);
- the same bare app answering when its listener returns, for reference: the best a Bolt app does, so
  the table shows what the bot's own work (the replay claim, the status read) adds to Bolt's;
- a raw aiohttp handler that checks the signature and answers 200: the floor of the HTTP stack.

With ``--load`` a second phase repeats the measurement while 50 releases run at once (deploy scripts
held open, released halfway through the phase so their completion work lands inside it too) and 500
scheduled post-release checks come due (real HTTP checks against a health endpoint). The bot
process's RSS is reported before and after.

Goals, each phase: bot p99 / bare-Bolt p99 <= 0.6; bot p99 / raw-aiohttp p99 <= 2; bot throughput /
bare-Bolt throughput >= 2.5. This is a report: the exit code is 0.

Run: `.venv/bin/python bench/ack.py [--requests N] [--concurrency 16] [--load]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from bench._load import RELEASER, SECRET, SERVICES, Child, channel_of  # noqa: E402
from tests.fakes.slack_signing import signed_headers, slash_command_body  # noqa: E402

BOT, BARE, ON_RETURN, RAW = "bot", "bare bolt", "bolt on return", "raw aiohttp"
P99_VS_BARE = 0.6  # bot p99 / bare-Bolt p99, at most
P99_VS_RAW = 2.0  # bot p99 / raw-aiohttp p99, at most
THROUGHPUT_VS_BARE = 2.5  # bot req/s / bare-Bolt req/s, at least
RELEASES = 50
CHECKS = 500


@dataclass
class Sample:
    """Latencies and busy time of one target across its rounds."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    answered_in_ack: int = 0  # statuses whose answer came back in the ack body itself

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
        return ordered[rank]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


class Slack:
    """The fake Slack process, seen from the driver."""

    def __init__(self, child: Child, session: aiohttp.ClientSession) -> None:
        self.child, self.session = child, session

    async def response_urls(self, n: int, channel: str) -> list[str]:
        url = f"{self.child.info['control']}/_bench/response_urls"
        async with self.session.get(url, params={"n": str(n), "channel": channel, "user": RELEASER}) as r:
            return list(await r.json())

    async def stats(self) -> dict[str, Any]:
        async with self.session.get(f"{self.child.info['control']}/_bench/stats") as r:
            return dict(await r.json())


async def control(session: aiohttp.ClientSession, bot: Child, verb: str, **body: Any) -> dict[str, Any]:
    """A bench control call to the bot process; ``state`` with ``gc=1`` also takes its GC pause record."""
    url = f"{bot.info['control']}/_bench/{verb}"
    request = session.post(url, json=body) if verb != "state" else session.get(url, params=body)
    async with request as r:
        r.raise_for_status()
        return dict(await r.json())


async def fire(session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int, into: Sample) -> None:
    """POST every body (signed at send time) through ``concurrency`` workers; record per-request latency."""
    queue = iter(bodies)

    async def worker() -> None:
        for body in queue:
            headers = signed_headers(SECRET, body)
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                payload = await response.read()
                ok = response.status == 200
            if ok and b"Status of" in payload:
                into.answered_in_ack += 1
            if ok:
                into.latencies.append(time.perf_counter() - started)
            else:
                into.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    into.elapsed += time.perf_counter() - started


async def status_bodies(slack: Slack, n: int) -> list[bytes]:
    """`/release status` typed in svc00's channel, each with its own response_url on the fake Slack."""
    channel = channel_of(0)
    urls = await slack.response_urls(n, channel)
    return [
        slash_command_body("/release", "status", user_id=RELEASER, channel_id=channel, response_url=u) for u in urls
    ]


async def measure(
    session: aiohttp.ClientSession,
    slack: Slack,
    targets: dict[str, str],
    *,
    requests: int,
    rounds: int,
    concurrency: int,
    halfway: Any = None,
) -> dict[str, Sample]:
    """Rotate the targets' order round by round; ``halfway`` is awaited once in the middle."""
    samples = {name: Sample() for name in targets}
    per_round = max(1, requests // rounds)
    names = list(targets)
    for r in range(rounds):
        if halfway is not None and r == rounds // 2:
            await halfway()
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            bodies = await status_bodies(slack, per_round)
            await fire(session, f"{targets[name]}/slack/events", bodies, concurrency, samples[name])
    return samples


@dataclass(frozen=True)
class Ratios:
    """The bot against Bolt's default and against raw aiohttp in one phase; each goal met or missed."""

    p99_vs_bare: float
    p99_vs_raw: float
    throughput_vs_bare: float

    def lines(self) -> list[str]:
        def verdict(ok: bool) -> str:
            return "PASS" if ok else "MISS"

        return [
            f"bot p99 / bare-Bolt p99:               {self.p99_vs_bare:5.2f}  (goal <= {P99_VS_BARE})  "
            + verdict(self.p99_vs_bare <= P99_VS_BARE),
            f"bot p99 / raw-aiohttp p99:             {self.p99_vs_raw:5.2f}  (goal <= {P99_VS_RAW})  "
            + verdict(self.p99_vs_raw <= P99_VS_RAW),
            f"bot throughput / bare-Bolt throughput: {self.throughput_vs_bare:5.2f}  (goal >= {THROUGHPUT_VS_BARE})  "
            + verdict(self.throughput_vs_bare >= THROUGHPUT_VS_BARE),
        ]


def report(title: str, samples: dict[str, Sample]) -> Ratios:
    print(f"\n{title}")
    print(f"{'target':<14}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, s in samples.items():
        print(
            f"{name:<14}{len(s.latencies):>10}{s.errors:>8}{s.throughput:>10.0f}"
            f"{s.pct(50) * 1000:>10.2f}{s.pct(99) * 1000:>10.2f}{max(s.latencies, default=0) * 1000:>10.2f}"
        )
    bot, bare, raw = samples[BOT], samples[BARE], samples[RAW]
    ratios = Ratios(
        p99_vs_bare=bot.pct(99) / bare.pct(99),
        p99_vs_raw=bot.pct(99) / raw.pct(99),
        throughput_vs_bare=bot.throughput / bare.throughput if bare.throughput else float("nan"),
    )
    for line in ratios.lines():
        print(line)
    on_return = samples[ON_RETURN]
    print(
        f"for reference, bot / Bolt acking on return: p99 {bot.pct(99) / on_return.pct(99):.2f}, "
        f"throughput {bot.throughput / on_return.throughput if on_return.throughput else float('nan'):.2f}"
    )
    return ratios


async def wait_until(probe: Any, done: Any, timeout: float, what: str) -> dict[str, Any]:
    """Poll a status probe until ``done(state)``; a benchmark may poll, it asserts nothing."""
    deadline = time.monotonic() + timeout
    while True:
        state = await probe()
        if done(state) or time.monotonic() > deadline:
            if not done(state):
                print(f"  (gave up waiting for {what} after {timeout:.0f} s: {json.dumps(state)})")
            return dict(state)
        await asyncio.sleep(0.05)


def mib(kb: int) -> str:
    return f"{kb / 1024:.1f} MiB"


async def cpu(session: aiohttp.ClientSession, children: dict[str, Child]) -> dict[str, float]:
    """CPU seconds each server process has used so far."""
    used = {}
    for name, child in children.items():
        async with session.get(f"{child.info['control']}/_bench/usage") as r:
            used[name] = float((await r.json())["cpu_s"])
    return used


def cpu_report(before: dict[str, float], after: dict[str, float], samples: dict[str, Sample]) -> None:
    """Where the CPU went in a phase: the bot's includes its after-ack work (status, respond(), load)."""
    parts = []
    for name, key in ((BOT, "bot"), (BARE, "bare"), (ON_RETURN, "on_return"), (RAW, "raw"), ("fake slack", "slack")):
        spent = after[key] - before[key]
        served = len(samples[name].latencies) if name in samples else 0
        per = f" = {spent / served * 1000:.2f} ms/request" if served else ""
        parts.append(f"{name} {spent:.2f} s{per}")
    print("CPU used in the phase: " + ", ".join(parts))


def gc_report(state: dict[str, Any]) -> None:
    print(
        f"bot garbage collections in the phase: {state['gc_collections']}, "
        f"longest pause {state['gc_longest_ms']:.1f} ms (a loop stall outside the bot's own code)"
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ack-bench-") as tmp:
        slack_child = await Child.start("slack")
        bot = await Child.start(
            "bot", "--tmp", tmp, "--slack", slack_child.info["api_url"], "--health", slack_child.info["health_url"]
        )
        others = {
            "bare": await Child.start("bare", "--slack", slack_child.info["api_url"]),
            "on_return": await Child.start("bare-on-return", "--slack", slack_child.info["api_url"]),
            "raw": await Child.start("raw"),
        }
        connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                await drive(args, session, Slack(slack_child, session), {"bot": bot, **others})
        finally:
            bot_final = await bot.stop()
            for child in others.values():
                await child.stop()
            await slack_child.stop()
        print(f"\nbot process at exit: RSS {mib(bot_final.get('rss_kb', 0))}, peak {mib(bot_final['peak_rss_kb'])}")


async def drive(
    args: argparse.Namespace, session: aiohttp.ClientSession, slack: Slack, servers: dict[str, Child]
) -> None:
    bot = servers["bot"]
    targets = {
        BOT: bot.info["url"],
        BARE: servers["bare"].info["url"],
        ON_RETURN: servers["on_return"].info["url"],
        RAW: servers["raw"].info["url"],
    }
    print(
        f"ack bench: {args.requests} `/release status` per target per phase, {args.rounds} rotating rounds, "
        f"{args.concurrency} concurrent connections, warm-up {args.warmup}"
    )
    print(f"bot process at start: RSS {mib(bot.info['rss_kb'])}")
    common = {"rounds": args.rounds, "concurrency": args.concurrency}
    children = {**servers, "slack": slack.child}
    warm = await measure(session, slack, targets, requests=args.warmup * 2, **{**common, "rounds": len(targets)})
    warm_bot = len(warm[BOT].latencies) - warm[BOT].answered_in_ack
    before = await wait_until(slack.stats, lambda s: s["response_url_ok"] >= warm_bot, 30, "warm-up respond()s")
    await control(session, bot, "state", gc="1")
    cpu_before = await cpu(session, children)
    idle = await measure(session, slack, targets, requests=args.requests, **common)
    cpu_after = await cpu(session, children)
    collected = await control(session, bot, "state", gc="1")
    idle_ratios = report("phase 1: idle bot", idle)
    cpu_report(cpu_before, cpu_after, idle)
    gc_report(collected)
    bot_requests = len(idle[BOT].latencies) + idle[BOT].errors
    in_ack = idle[BOT].answered_in_ack
    after = await wait_until(
        slack.stats,
        lambda s: s["response_url_ok"] - before["response_url_ok"] + in_ack >= bot_requests,
        30,
        "respond()s",
    )
    print(
        f"bot answered {after['response_url_ok'] - before['response_url_ok'] + in_ack}/{bot_requests} statuses "
        f"({in_ack} in the ack itself, the rest through response_url; failed: {after['response_url_failed']})"
    )
    state = await control(session, bot, "state")
    print(f"bot process after phase 1: RSS {mib(state['rss_kb'])}")
    if not args.load:
        return

    print(f"\nstarting the load: {RELEASES} releases to staging, {CHECKS} checks due over {args.spread:.0f} s")
    for i in range(RELEASES):
        channel = channel_of(i % SERVICES)
        (url,) = await slack.response_urls(1, channel)
        body = slash_command_body("/release", "staging 1.0.0", user_id=RELEASER, channel_id=channel, response_url=url)
        async with session.post(f"{targets[BOT]}/slack/events", data=body, headers=signed_headers(SECRET, body)) as r:
            r.raise_for_status()

    def probe() -> Any:
        return control(session, bot, "state")

    state = await wait_until(probe, lambda s: s["deploys_started"] >= RELEASES, 60, "the deploys to start")
    print(f"  {state['deploys_started']} deploy scripts running and held; releases {state['staging_releases']}")
    state = await control(session, bot, "arm", count=CHECKS, spread=args.spread)
    print(f"  {sum(state['checks'].values())} measurements scheduled, {state['scheduler_jobs']} APScheduler jobs")
    rss_loaded = state["rss_kb"]

    async def halfway() -> None:
        unblocked = await control(session, bot, "unblock")
        print(f"  halfway: deploys released; checks so far {unblocked['checks']}")

    await control(session, bot, "state", gc="1")
    started = time.perf_counter()
    cpu_before = await cpu(session, children)
    loaded = await measure(session, slack, targets, requests=args.requests, halfway=halfway, **common)
    cpu_after = await cpu(session, children)
    took = time.perf_counter() - started
    during = await control(session, bot, "state", gc="1")
    loaded_ratios = report(f"phase 2: {RELEASES} releases + {CHECKS} scheduled checks ({took:.1f} s)", loaded)
    cpu_report(cpu_before, cpu_after, loaded)
    gc_report(during)
    print(f"  during the phase: checks {during['checks']}, staging releases {during['staging_releases']}")
    final = await wait_until(
        probe, lambda s: s["checks"].get("pending", 0) == 0 and s["checks"].get("running", 0) == 0, 60, "the checks"
    )
    final = await control(session, bot, "drain")
    print(f"  after draining: checks {final['checks']}, staging releases {final['staging_releases']}")
    print(
        f"bot process RSS: {mib(bot.info['rss_kb'])} at start, {mib(rss_loaded)} with the load armed, "
        f"{mib(during['rss_kb'])} after the loaded phase, {mib(final['rss_kb'])} drained "
        f"(peak {mib(final['peak_rss_kb'])})"
    )
    print("\nsummary, idle then loaded:")
    for idle_line, loaded_line in zip(idle_ratios.lines(), loaded_ratios.lines(), strict=True):
        print(f"  idle   {idle_line}\n  loaded {loaded_line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per target per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per phase")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up requests per target")
    parser.add_argument("--load", action="store_true", help="also measure under 50 releases + 500 checks")
    parser.add_argument("--spread", type=float, default=4.0, help="seconds over which the 500 checks come due")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

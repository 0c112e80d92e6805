"""The event loop is never blocked for more than 50 ms by the bot's own work (SPEC §7).

While a test watches, every callback and task step the loop runs is timed (the points asyncio's debug mode
times for its "Executing <...> took X seconds" report). What counts is how long a step kept the loop's
thread: its wall-clock time minus the time the thread spent runnable but waiting for a CPU, which Linux
reports per thread in /proc/thread-self/schedstat. A busy machine stretches wall-clock time by that wait
only; sleeping or waiting on I/O inside a step (``time.sleep``, a synchronous HTTP call, a lock) is not
run-queue time, so it still counts in full.

Why: the wall-clock report of debug mode failed this test in 4 of 16 runs with two busy processes on a
2-core machine (steps of 50-70 ms). Measured as here, the longest step of the same burst was 9-28 ms over 20
runs under that load, so 50 ms keeps a margin of almost 2x. Debug mode is not used any more: its own
bookkeeping per handle inflated the steps it timed, and a production loop never pays it.

First two controls that prove the watch sees a step that sleeps and one that computes on the loop thread
(under load too); then a realistic burst through the signed HTTP route, including release notes read from a
real 2,000-commit git repository, which must show no step of 50 ms.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import threading
import time
from asyncio import base_events
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.core.notes import ReleaseNotes
from tests.harness import config_dict, running_bot

STALL_LIMIT = 0.050
COMMITS = 2000


@dataclass(frozen=True)
class Stall:
    step: str
    held: float  # seconds the step kept the loop's thread: wall-clock time less the wait for a CPU
    wall: float

    def __str__(self) -> str:
        return f"{self.step} held the loop {self.held:.3f} s ({self.wall:.3f} s wall-clock)"


class CpuWait:
    """This thread's time spent runnable but not running, in seconds (Linux scheduler statistics).

    Where the kernel offers no per-thread statistics it reads 0, and the watch falls back to plain
    wall-clock time: as strict as before, only less tolerant of a loaded machine.
    """

    def __init__(self) -> None:
        self.closed = False
        try:  # opened from the loop's thread, the file stays that thread's
            self.fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self.fd = None

    def __call__(self) -> float:
        if self.fd is None:
            return 0.0
        # "<ns on a CPU> <ns waiting on a run queue> <time slices>"
        return int(os.pread(self.fd, 64, 0).split()[1]) / 1e9

    def close(self) -> None:
        self.closed = True
        if self.fd is not None:
            os.close(self.fd)


@contextmanager
def loop_stall_watch(limit: float = STALL_LIMIT) -> Iterator[list[Stall]]:
    """Collects the running loop's steps that held its thread for ``limit`` seconds or more.

    Every ``asyncio.Handle`` run (callbacks, timers, task steps) on the loop's thread is timed; other
    threads' loops run untouched.

    Automatic garbage collection is paused while watching: a full collection walks every object in the
    process (here the test runner's, the fake Slack's and the start-up's ~100,000) and took 30-60 ms on
    its own, landing in whichever step happened to allocate at that moment. That pause is a property of
    the heap, not of the bot's request work, so it is excluded here and measured by `bench/ack.py`
    (longest GC pause of the bot process under load) instead.
    """
    asyncio.get_running_loop()  # watch from inside the loop, so that this is its thread
    thread, cpu_wait, stalls = threading.get_ident(), CpuWait(), list[Stall]()
    run = asyncio.Handle._run

    def timed_run(handle: asyncio.Handle) -> None:
        if threading.get_ident() != thread:
            return run(handle)
        wall, waited = time.perf_counter(), cpu_wait()
        run(handle)  # it reports the step's exceptions to the loop itself
        if cpu_wait.closed:  # the step that left the watch: its end is not measured
            return
        wall = time.perf_counter() - wall
        held = wall - (cpu_wait() - waited)
        if held >= limit:
            # asyncio's own description of a step, as in its debug-mode report (the task and its coroutine).
            stalls.append(Stall(base_events._format_handle(handle), held, wall))  # type: ignore[attr-defined]

    gc.collect()
    gc.disable()
    asyncio.Handle._run = timed_run  # type: ignore[method-assign, assignment]
    try:
        yield stalls
    finally:
        asyncio.Handle._run = run  # type: ignore[method-assign]
        gc.enable()
        cpu_wait.close()


def _computes(seconds: float) -> None:
    """Work on this thread for ``seconds`` of its own CPU time, however long a busy machine makes it take."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        sum(range(1000))


async def _blocked_by(mistake: Callable[[], None]) -> list[Stall]:
    async def blocks() -> None:
        mistake()

    async def yields() -> None:
        await asyncio.sleep(0.08)  # the same wait, done right

    with loop_stall_watch() as stalls:
        await asyncio.create_task(yields())
        assert stalls == []
        await asyncio.create_task(blocks())
    return stalls


async def test_the_watch_detects_a_step_that_sleeps_on_the_loop() -> None:
    # The mistake the watch exists to catch: blocking I/O (here a sleep) on the loop thread.
    [stall] = await _blocked_by(lambda: time.sleep(0.08))
    # At least the 80 ms it slept (a millisecond of slack for the kernel's and Python's clocks).
    assert "blocks()" in stall.step and stall.held >= 0.079, stall


async def test_the_watch_detects_a_step_that_computes_on_the_loop() -> None:
    # 80 ms of CPU work: on a loaded machine its wall-clock time grows, what it held the loop for does not fall.
    [stall] = await _blocked_by(lambda: _computes(0.08))
    assert "blocks()" in stall.step and stall.held >= 0.075, stall


def build_repo(path: Path, total: int) -> list[str]:
    """A ``total``-commit history (conventional subjects, a merged branch every 100) via git fast-import."""
    out: list[bytes] = []
    mark = tip = 0

    def commit(message: str, parents: list[int]) -> int:
        nonlocal mark
        mark += 1
        who = f"Dev {mark % 25} <dev{mark % 25}@example.com> {1_700_000_000 + mark * 60} +0000".encode()
        data = message.encode()
        out.append(b"commit refs/heads/main\nmark :%d\nauthor %s\ncommitter %s\n" % (mark, who, who))
        out.append(b"data %d\n%s\n" % (len(data), data))
        if parents:
            out.append(b"from :%d\n" % parents[0])
        out.extend(b"merge :%d\n" % p for p in parents[1:])
        out.append(b"M 644 inline f%d.txt\ndata 2\n%d\n\n" % (mark % 40, mark % 10))
        return mark

    kinds = ["feat", "fix", "perf", "chore", "docs", "refactor"]
    while mark < total:
        n = mark + 1
        if n % 100 == 0 and total - mark >= 3:
            side = commit(f"feat(pr{n}): branch work", [tip])
            tip = commit(f"Merge pull request #{n} from org/feature-{n}\n\nFeature {n}", [tip, side])
            continue
        tip = commit(f"{kinds[n % len(kinds)]}: change {n} to the notification pipeline (#{n})", [tip] if tip else [])
    out.append(b"reset refs/heads/main\nfrom :%d\n\n" % tip)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(out), check=True)
    listed = subprocess.run(
        ["git", "-C", str(path), "rev-list", "--first-parent", "--reverse", "main"],
        check=True,
        capture_output=True,
        text=True,
    )
    return listed.stdout.split()


async def test_a_realistic_burst_never_blocks_the_loop_for_50_ms(tmp_path: Path) -> None:
    shas = build_repo(tmp_path / "repo", COMMITS)
    config = config_dict(tmp_path / "deploys.log")
    config["services"]["notify"]["repo"] = {"path": str(tmp_path / "repo")}
    async with running_bot(tmp_path, config=config) as bot:
        bot.add_candidate("1.2.2", commit=shas[0])
        bot.add_candidate("1.2.3", commit=shas[-1])
        bot.live("staging", "1.2.2")
        bot.live("prod", "1.2.2")

        with loop_stall_watch() as stalls:
            # `status` is answered inside the ack; a release is answered through response_url, which
            # `command()` waits for, so `settle()` then sees every background task.
            statuses = await asyncio.gather(*(bot.command("status") for _ in range(30)))
            staging = await bot.command("staging 1.2.3")
            await bot.settle()
            prod = await bot.command("prod")
            await bot.settle()

        assert [r.status for r in [*statuses, staging, prod]] == [200] * 32
        assert sum(["notify status" in await r.text() for r in statuses]) == 30
        assert bot.deploys() == ["notify 1.2.3 staging 100", "notify 1.2.3 prod 100"]
        history = bot.store.history("notify", None, 10)
        shipped = [r for r in history if r.version == "1.2.3"]
        assert len(shipped) == 2 and all(r.notes and "unavailable" not in r.notes for r in shipped)
        notes = ReleaseNotes.from_dict(shipped[0].notes or {})
        assert notes.commit_count >= COMMITS - 1, "the notes covered the whole 2,000-commit range"
        assert stalls == [], "the event loop was blocked for 50 ms or more:\n" + "\n".join(map(str, stalls))

"""Release notes for a 10,000-commit range from a local git repository.

Builds the repository with `git fast-import` (a few hundred milliseconds), then times
`LocalGitSource.commits_between` + `build_release_notes` (+ rendering, reported separately) while
a heartbeat task scheduled every 5 ms records the longest gap between its ticks: the event loop
stall the bot's own work caused. Targets: notes in < 1 s, stall < 50 ms.

Run: `.venv/bin/python bench/notes.py [--commits N]`
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.notes import build_release_notes  # noqa: E402
from bot.sources.git import LocalGitSource  # noqa: E402
from bot.views.notes import notes_blocks  # noqa: E402

TICK = 0.005
TARGET_SECONDS = 1.0
TARGET_STALL = 0.050
TYPES = ["feat", "fix", "perf", "chore", "docs", "refactor", "fix(security)", "ci", "feat(api)", "test"]
PEOPLE = [(f"Dev {i}", f"dev{i}@example.com") for i in range(40)]


def fast_import_stream(total: int) -> bytes:
    """A fast-import stream of `total` commits: mostly linear, a 3-commit PR merged every 100, reverts,
    breaking changes, co-authors and non-conventional subjects."""
    out: list[bytes] = []
    epoch = 1_700_000_000
    tip = 0  # mark of the mainline tip
    mark = 0

    def commit(message: str, author: tuple[str, str], parents: list[int]) -> int:
        nonlocal mark
        mark += 1
        data = message.encode()
        who = f"{author[0]} <{author[1]}> {epoch + mark * 60} +0000".encode()
        out.append(b"commit refs/heads/main\nmark :%d\nauthor %s\ncommitter %s\n" % (mark, who, who))
        out.append(b"data %d\n%s\n" % (len(data), data))
        if parents:
            out.append(b"from :%d\n" % parents[0])
        out.extend(b"merge :%d\n" % p for p in parents[1:])
        out.append(b"M 644 inline f%d.txt\ndata 2\n%d\n\n" % (mark % 50, mark % 10))
        return mark

    while mark < total:
        n = mark + 1
        if n % 100 == 0 and total - mark >= 4:
            side = tip
            for k in range(3):
                side = commit(f"feat(pr{n}): branch work {k}", PEOPLE[(n + k) % 40], [side])
            tip = commit(f"Merge pull request #{n} from org/feature-{n}\n\nFeature {n}", PEOPLE[0], [tip, side])
            continue
        kind = TYPES[n % len(TYPES)]
        subject = f"{kind}: change {n} touching the notification pipeline (#{n})"
        if n % 37 == 0:
            subject = f"Update things for ticket {n}"
        body = ""
        if n % 53 == 0:
            body = f"\n\nBREAKING CHANGE: setting {n} renamed"
        if n % 11 == 0:
            body += f"\n\nCo-authored-by: {PEOPLE[(n * 7) % 40][0]} <{PEOPLE[(n * 7) % 40][1].upper()}>"
        if n % 97 == 0 and n > 20:
            earlier = n - 3
            original = f"{TYPES[earlier % len(TYPES)]}: change {earlier} touching the notification pipeline"
            subject = f'Revert "{original} (#{earlier})"'
        tip = commit(subject + body, PEOPLE[n % 40], [tip] if tip else [])
    out.append(b"reset refs/heads/main\nfrom :%d\n\n" % tip)
    return b"".join(out)


def build_repo(path: Path, total: int) -> float:
    start = time.perf_counter()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=fast_import_stream(total), check=True)
    return time.perf_counter() - start


class Heartbeat:
    """Ticks every 5 ms; the longest gap between ticks is how long the loop was blocked (plus 5 ms)."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now

    def reset(self) -> None:
        self.max_gap = 0.0

    def stop(self) -> None:
        self._stop.set()


async def measure(path: Path, total: int) -> int:
    src = LocalGitSource(path, max_commits=total)
    beat = Heartbeat()
    task = asyncio.create_task(beat.run())
    await asyncio.sleep(TICK * 3)  # let the heartbeat settle
    rows: list[tuple[str, float, float]] = []

    beat.reset()
    t0 = time.perf_counter()
    commits = await src.commits_between(None, "main")
    t1 = time.perf_counter()
    rows.append(("git log + parse", t1 - t0, beat.max_gap))

    beat.reset()
    # The notes builder is pure CPU work; off the loop thread, the loop keeps ticking.
    notes = await asyncio.to_thread(build_release_notes, commits, pr_url_base="https://github.com/org/repo")
    t2 = time.perf_counter()
    rows.append(("build_release_notes", t2 - t1, beat.max_gap))
    core_total, core_stall = t2 - t0, max(r[2] for r in rows)

    beat.reset()
    blocks = await asyncio.to_thread(notes_blocks, notes, full_notes_url="https://bot/api/v1/notes")
    markdown = await asyncio.to_thread(notes.to_markdown, "bench")
    t3 = time.perf_counter()
    rows.append(("render (blocks + markdown)", t3 - t2, beat.max_gap))
    beat.stop()
    await task

    print(
        f"\nrange: {len(commits)} commits, {notes.merge_count} merges, {notes.reverted_count} reverted, "
        f"{notes.change_count} changes, {len(notes.contributors)} contributors, truncated={notes.truncated}"
    )
    print(f"rendered: {len(blocks)} blocks, markdown {len(markdown):,} chars; heartbeat ticks: {beat.ticks}\n")
    print(f"{'phase':<28}{'time (ms)':>12}{'max loop gap (ms)':>20}")
    print("-" * 60)
    for name, seconds, gap in rows:
        print(f"{name:<28}{seconds * 1000:>12.1f}{gap * 1000:>20.1f}")
    print("-" * 60)
    print(f"{'commits_between + notes':<28}{core_total * 1000:>12.1f}{core_stall * 1000:>20.1f}")
    ok_time, ok_stall = core_total < TARGET_SECONDS, core_stall < TARGET_STALL
    print(
        f"\ntarget < {TARGET_SECONDS * 1000:.0f} ms: {'PASS' if ok_time else 'FAIL'}   "
        f"loop gap < {TARGET_STALL * 1000:.0f} ms (tick {TICK * 1000:.0f} ms): "
        f"{'PASS' if ok_stall else 'FAIL'}"
    )
    return 0 if ok_time and ok_stall else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="notes-bench-") as tmp:
        repo = Path(tmp) / "repo"
        built = build_repo(repo, args.commits)
        print(f"built a {args.commits}-commit repository with git fast-import in {built * 1000:.0f} ms")
        return asyncio.run(measure(repo, args.commits))


if __name__ == "__main__":
    sys.exit(main())

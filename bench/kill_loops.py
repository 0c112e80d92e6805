"""Fenced deploys under kill loops, and a store that refuses writes: `python bench/kill_loops.py [N] [M]`.

Runs the real bot (``python -m bot serve``, tests/kill_harness.py) against the fake Slack. N times: release to
prod, SIGKILL the bot while the deploy script runs, let the script end one of three ways in turn (after the
restart, followed by the new bot, which meanwhile refuses Retry and new releases; while the bot is down,
succeeding; while down, failing), restart, and wait until the release's outcome is recorded. Then M times: make
the running bot's store refuse writes (RLIMIT_FSIZE 0) while a deploy runs, let the deploy succeed, allow
writes again and wait until the outcome is recorded. /healthz is not polled in the second loop, so the time
shown is the bot's own retry backoff (an orchestrator probing /healthz makes it sooner).

Printed: how many deploy runs of prod overlapped (the stub holds a lock for its whole run and logs any run that
finds it held), the outcomes, and per way:
- restart: the new process started → /healthz answered 200 (start-up and Recovery);
- recorded: the left deploy ended (or, when it ended while the bot was down, the new process started) → its
  outcome in the store; for the write loop, writes allowed again → the outcome in the store.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import RELEASER  # noqa: E402
from tests.kill_harness import (  # noqa: E402
    MODES,
    RUNNING,
    KillBed,
    kill_during_a_deploy,
    poll,
    refuse_writes_after_a_deploy,
    seed_staged,
)


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}s, max {max(values):.2f}s (n={len(values)})"


async def main(loops: int, write_faults: int) -> None:
    versions = [f"2.0.{n}" for n in range(loops + write_faults)]
    with tempfile.TemporaryDirectory() as tmp:
        async with KillBed(Path(tmp)) as bed:
            seed_staged(bed, versions)
            await bed.start()
            restarts: dict[str, list[float]] = defaultdict(list)
            recorded: dict[str, list[float]] = defaultdict(list)
            outcomes: dict[str, list[str]] = defaultdict(list)
            refusals = 0
            for n, version in enumerate(versions[:loops]):
                mode = MODES[n % len(MODES)]
                left = await kill_during_a_deploy(bed, version, mode, retry_as=RELEASER)
                restarts[mode].append(left.restart_s)
                recorded[mode].append(left.recorded_s)
                outcomes[mode].append(left.state)
                refusals += sum("is still being deployed" in refusal for refusal in left.refusals)
            writes: list[float] = []
            for version in versions[loops:]:
                release = await refuse_writes_after_a_deploy(bed, version)
                bed.allow_writes()
                started = time.monotonic()
                await poll("the outcome", lambda r=release: bed.release(r["id"])["state"] not in RUNNING)
                writes.append(time.monotonic() - started)
                outcomes["store refused writes"].append(bed.release(release["id"])["state"])

            print(f"{loops} kill loops, {write_faults} write faults, {len(bed.deploys())} deploy runs of prod")
            print(f"deploy runs that overlapped another: {len(bed.overlaps())}")
            print(f"Retry / new release refused while a left deploy ran: {refusals}")
            for way, states in outcomes.items():
                print(f"{way}: {', '.join(sorted(set(states)))} x{len(states)}")
            for mode in MODES:
                if restarts[mode]:
                    print(f"{mode}: restart {spread(restarts[mode])}; recorded {spread(recorded[mode])}")
            if writes:
                print(f"store refused writes: recorded after writes came back {spread(writes)}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    faults = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    asyncio.run(main(count, faults))

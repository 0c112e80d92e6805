"""The ``command`` provider's fence: a step starts only once it is recorded, leaves its output and exit status in
files, and a step whose bot died is found again (still running, ended, gone, or past its timeout) by a new one.

A "left" step here is made the way production makes one: a separate Python process runs the provider's deploy,
prints the identity it recorded, and is SIGKILLed while the script runs (the script has its own session, so it
carries on without it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import CommandProvider
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven
from bot.providers.command import CommandDeployProvider, status_file
from bot.providers.process import boot_id, group_running, identify, proc_stat
from tests.fakes.runs import RecordedRun, recorded

REPO = Path(__file__).resolve().parent.parent
CTX = DeployContext(service="notify", version="1.2.3", environment="prod", release_id=7)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def provider(run: list[str], **config: str) -> CommandDeployProvider:
    model = CommandProvider.model_validate({"provider": "command", "run": run, **config})
    return CommandDeployProvider(model, kill_grace=0.5)


class Refusing(RecordedRun):
    """A record the store refuses to write (the disk is full): the step must not start."""

    async def starting(self, identity: RunIdentity) -> None:
        raise OSError("database or disk is full")


class Checking(RecordedRun):
    """A record that looks, while it is being written, whether the script has started already."""

    def __init__(self, output: Path, marker: Path) -> None:
        super().__init__(output)
        self.marker = marker
        self.started_before_record: bool | None = None

    async def starting(self, identity: RunIdentity) -> None:
        await super().starting(identity)
        self.started_before_record = self.marker.exists()


async def test_the_script_starts_only_once_its_step_is_recorded(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    touch = script(tmp_path / "deploy.sh", f"touch '{marker}'\necho deployed\n")
    run = Checking(tmp_path / "deploys" / "7-deploy.log", marker)

    result = await provider([str(touch)]).deploy(CTX, run)

    assert result.ok and result.exit_status == 0, result
    assert run.started_before_record is False
    assert run.identity is not None and run.identity.pgid is not None
    assert run.identity.boot_id == boot_id() and run.identity.proc_start is not None
    assert marker.exists()


async def test_a_step_the_store_cannot_record_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    touch = script(tmp_path / "deploy.sh", f"touch '{marker}'\n")
    run = Refusing(tmp_path / "deploys" / "7-deploy.log")

    with pytest.raises(OSError, match="disk is full"):
        await provider([str(touch)]).deploy(CTX, run)

    assert not marker.exists(), "a deploy the store could not record must not run"


async def test_the_whole_output_goes_to_its_file_and_the_exit_status_next_to_it(tmp_path: Path) -> None:
    chatty = script(tmp_path / "deploy.sh", 'i=1; while [ $i -le 100 ]; do echo "line $i"; i=$((i+1)); done\nexit 4\n')
    run = recorded(tmp_path)

    result = await provider([str(chatty)]).deploy(CTX, run)

    assert (result.ok, result.error, result.exit_status) == (False, "exit status 4", 4)
    assert run.output.read_text().splitlines() == [f"line {i}" for i in range(1, 101)]
    assert result.output_tail.splitlines()[-1] == "line 100" and len(result.output_tail.splitlines()) == 41
    assert json.loads(status_file(run.output).read_text()) == {"returncode": 4}


# --- a step whose bot died ---------------------------------------------------------------------------------

LEAVER = """
import asyncio, json, sys
from pathlib import Path
from bot.config import CommandProvider
from bot.providers.base import DeployContext
from bot.providers.command import CommandDeployProvider

class Run:
    output = Path(sys.argv[2])
    async def starting(self, identity):
        print(json.dumps(identity.__dict__), flush=True)
        if sys.argv[1] == "die-while-recording":
            await asyncio.Event().wait()
    async def identified(self, remote_id):
        pass

config = CommandProvider.model_validate({"provider": "command", "run": sys.argv[3:]})
asyncio.run(CommandDeployProvider(config).deploy(DeployContext("notify", "1.2.3", "prod", 7), Run()))
"""


async def left_behind(output: Path, argv: list[str], *, die: str = "while-running") -> RunIdentity:
    """Start ``argv`` through the provider in a bot-like process and SIGKILL that process: once the script has
    started (its first line of output is in the file), or ``die="while-recording"``: while the step's record is
    being written, before the script may start. The step's identity as it was recorded."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", LEAVER, f"die-{die}", str(output), *argv]
    bot = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    assert bot.stdout is not None
    identity = RunIdentity(**json.loads(await asyncio.to_thread(bot.stdout.readline)))
    while die == "while-running" and not (output.exists() and output.read_text()):  # bounded by the test timeout
        await asyncio.sleep(0.02)
    bot.kill()
    bot.wait()
    return identity


def left(output: Path, identity: RunIdentity, remaining: float = 30.0) -> LeftRun:
    return LeftRun(action="deploy", identity=identity, output=output, remote_id=None, remaining=remaining)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A FIFO a blocked script waits on; written to (and so released) at teardown whatever happened."""
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    yield fifo
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # nobody is waiting
    os.write(fd, b"go\n")
    os.close(fd)


def release(fifo: Path) -> None:
    with fifo.open("w") as out:
        out.write("go\n")


async def test_a_left_step_that_still_runs_is_found_and_followed_to_its_exit_status(tmp_path: Path, gate: Path) -> None:
    blocked = script(tmp_path / "deploy.sh", f"echo started\nread -r _ < '{gate}'\necho finished\nexit 0\n")
    output = tmp_path / "deploys" / "7-deploy.log"
    identity = await left_behind(output, [str(blocked)])
    deploy = provider([str(blocked)])

    assert await deploy.inspect(left(output, identity)) is None, "its bot died, the step runs on"
    following = asyncio.create_task(deploy.follow(left(output, identity)))
    await asyncio.to_thread(release, gate)
    ended = await following

    assert isinstance(ended, StepResult)
    assert (ended.ok, ended.exit_status) == (True, 0)
    assert ended.output_tail == "started\nfinished"
    assert not group_running(identity)


async def test_a_left_step_that_ended_while_the_bot_was_down_is_read_from_its_status_file(
    tmp_path: Path, gate: Path
) -> None:
    failing = script(tmp_path / "deploy.sh", f"echo started\nread -r _ < '{gate}'\necho 'migration failed'\nexit 3\n")
    output = tmp_path / "deploys" / "7-deploy.log"
    identity = await left_behind(output, [str(failing)])
    await asyncio.to_thread(release, gate)
    status = status_file(output)
    while not status.exists():  # the wrapper writes it as the script exits; bounded by the test timeout
        await asyncio.sleep(0.02)

    ended = await provider([str(failing)]).inspect(left(output, identity))

    assert isinstance(ended, StepResult)
    assert (ended.ok, ended.error, ended.exit_status) == (False, "exit status 3", 3)
    assert ended.output_tail == "started\nmigration failed"


async def test_a_left_step_killed_without_an_exit_status_is_unproven(tmp_path: Path, gate: Path) -> None:
    blocked = script(tmp_path / "deploy.sh", f"echo started\nread -r _ < '{gate}'\n")
    output = tmp_path / "deploys" / "7-deploy.log"
    identity = await left_behind(output, [str(blocked)])
    assert identity.pgid is not None
    os.killpg(identity.pgid, signal.SIGKILL)  # someone killed the deploy itself: nothing wrote its status
    while group_running(identity):
        await asyncio.sleep(0.02)

    ended = await provider([str(blocked)]).inspect(left(output, identity))

    assert ended == Unproven("its process ended without recording an exit status", "started")


async def test_a_bot_killed_while_recording_its_step_leaves_it_unstarted(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    touch = script(tmp_path / "deploy.sh", f"touch '{marker}'\n")
    output = tmp_path / "deploys" / "7-deploy.log"
    identity = await left_behind(output, [str(touch)], die="while-recording")
    while group_running(identity):  # the wrapper reads the end of its stdin: no go, so it exits
        await asyncio.sleep(0.02)

    ended = await provider([str(touch)]).inspect(left(output, identity))

    assert not marker.exists(), "without its go the script never ran"
    assert isinstance(ended, Unproven), "no exit status was written: the bot cannot tell, people check"


async def test_a_left_step_still_running_at_its_timeout_is_stopped(tmp_path: Path) -> None:
    hangs = script(tmp_path / "deploy.sh", "echo started\nexec sleep 300\n")
    output = tmp_path / "deploys" / "7-deploy.log"
    identity = await left_behind(output, [str(hangs)])

    ended = await provider([str(hangs)], timeout="15m").follow(left(output, identity, remaining=0.3))

    assert isinstance(ended, StepResult)
    assert (ended.ok, ended.error) == (False, "timed out after 15m")
    assert not group_running(identity), "its whole group was killed"


def test_a_pid_used_again_by_another_process_is_not_taken_for_the_step() -> None:
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        found = identify(other.pid)
        assert group_running(found)
        stat_now = proc_stat(other.pid)
        assert stat_now is not None
        assert not group_running(RunIdentity(other.pid, stat_now.start - 1, found.boot_id)), "started at another time"
        assert not group_running(RunIdentity(other.pid, found.proc_start, "another-boot")), "before a reboot"
    finally:
        other.kill()
        other.wait()
    assert not group_running(found)


def test_step_files_older_than_a_month_are_pruned_and_newer_ones_kept(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from bot.engine.fences import KEEP_OUTPUT, DeployRuns  # noqa: PLC0415

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    deploys = tmp_path / "deploys"
    deploys.mkdir()
    old, fresh, other = deploys / "7-deploy-100-aaaa.log", deploys / "9-deploy-100-bbbb.status", deploys / "notes.txt"
    for path in (old, fresh, other):
        path.write_text("x")
    aged = (now - KEEP_OUTPUT - timedelta(hours=1)).timestamp()
    os.utime(old, (aged, aged))
    os.utime(other, (aged, aged))
    recent = (now - timedelta(days=2)).timestamp()
    os.utime(fresh, (recent, recent))

    runs = DeployRuns(None, None, None, deploys)  # type: ignore[arg-type]  # prune touches files only
    assert runs.prune(now) == 1
    assert not old.exists() and fresh.exists() and other.exists(), "only step files, only old ones"
    assert DeployRuns(None, None, None, tmp_path / "missing").prune(now) == 0  # type: ignore[arg-type]

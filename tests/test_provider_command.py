"""The ``command`` deploy provider: exact argv, no shell, timeouts kill the process group, bounded output."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import CommandProvider
from bot.providers.base import DeployContext, StepResult
from bot.providers.command import DRAIN_GRACE, CommandDeployProvider, OutputTail
from tests.fakes.runs import recorded

REPO_ROOT = Path(__file__).resolve().parent.parent
CTX = DeployContext(service="notify", version="1.2.3", environment="staging", release_id=42, weight=10)


def script(path: Path, body: str) -> Path:
    """Write an executable /bin/sh script."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def provider(
    run: list[str], *, kill_grace: float = 2.0, base_dir: Path | None = None, **config: str | list[str]
) -> CommandDeployProvider:
    """A provider from config keys as they would appear in releasebot.yml."""
    model = CommandProvider.model_validate({"provider": "command", "run": run, **config})
    return CommandDeployProvider(model, base_dir=base_dir, kill_grace=kill_grace)


def args_dumper(tmp_path: Path) -> tuple[Path, Path]:
    """A script writing each argument NUL-terminated to a file, so spaces and newlines stay visible."""
    out = tmp_path / "args.bin"
    return script(tmp_path / "dump.sh", f"printf '%s\\0' \"$@\" > '{out}'\n"), out


def dumped(out: Path) -> list[str]:
    return out.read_bytes().decode().split("\0")[:-1]


async def exited(pid_fd: int) -> None:
    """Wait until the process behind ``pid_fd`` has exited (a pidfd turns readable then)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(pid_fd, ready)
    try:
        async with asyncio.timeout(5):
            await done
    finally:
        loop.remove_reader(pid_fd)
        os.close(pid_fd)


async def started_pids(fifo: Path) -> list[int]:
    """Block until the script writes to ``fifo``, then return the pids it wrote next to it, as pidfds."""
    await asyncio.to_thread(fifo.read_text)
    return [int(pid) for pid in (fifo.parent / "pids").read_text().split()]


def pidfds(pids: list[int]) -> list[int]:
    return [os.pidfd_open(pid) for pid in pids]


async def test_demo_script_runs_from_repo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    deploy = provider(["./examples/deploy.sh", "{service}", "{version}", "{environment}", "{weight}"])

    result = await deploy.deploy(CTX, recorded(tmp_path))

    assert result.ok, result
    assert result.error is None
    assert result.output_tail == "deploying notify 1.2.3 to staging at 10% traffic\ndone"


async def test_each_argument_arrives_literally_never_through_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dump, out = args_dumper(tmp_path)
    nasty = '1.0 ; rm -rf / $(touch pwned) `touch pwned2` {service} "q" *\nline2'
    ctx = DeployContext("notify", nasty, "prod", 7, weight=50, colour="green", previous_version="0.9")
    template = [
        str(dump),
        "{service}",
        "{version}",
        "--weight={weight}%",
        "literal { brace",
        '{"json": {"n": 1}}',
        "{colour}/{previous_version}/{release_id}",
        "${HOME}",
        "{}",
        "{environment}{environment}",
    ]

    result = await provider(template).deploy(ctx, recorded(tmp_path))

    assert result.ok, result
    assert dumped(out) == [
        "notify",
        nasty,
        "--weight=50%",
        "literal { brace",
        '{"json": {"n": 1}}',
        "green/0.9/7",
        "${HOME}",
        "{}",
        "prodprod",
    ]
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


async def test_missing_colour_and_previous_version_become_empty_strings(tmp_path: Path) -> None:
    dump, out = args_dumper(tmp_path)

    await provider([str(dump), "{colour}", "x{previous_version}x"]).deploy(CTX, recorded(tmp_path))

    assert dumped(out) == ["", "xx"]


def test_unknown_placeholder_is_rejected_when_the_config_is_validated() -> None:
    # Paths and line numbers in the file: tests/test_config.py.
    with pytest.raises(ValueError, match=r"run\.2\n.*unknown placeholder \{verison\}"):
        provider(["./deploy.sh", "{service}", "{verison}"])
    with pytest.raises(ValueError, match=r"rollback\.0\n.*unknown placeholder \{target\}"):
        provider(["./deploy.sh"], rollback=["{target}"])


async def test_failing_script_reports_exit_status_and_output_tail(tmp_path: Path) -> None:
    fail = script(
        tmp_path / "fail.sh",
        'i=1; while [ $i -le 100 ]; do echo "step $i"; i=$((i+1)); done\necho "boom: disk full" >&2\nexit 3\n',
    )

    result = await provider([str(fail)]).deploy(CTX, recorded(tmp_path))

    assert not result.ok
    assert result.error == "exit status 3"
    lines = result.output_tail.splitlines()
    assert lines[0] == "…"  # earlier output was dropped
    assert lines[-2:] == ["step 100", "boom: disk full"]  # stderr is merged in order
    assert len(lines) == 41
    assert "step 60" not in lines


async def test_missing_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    result = await provider(["./no-such-deploy.sh", "{version}"]).deploy(CTX, recorded(tmp_path))

    assert result == result.__class__(
        ok=False, output_tail="", error="cannot run ./no-such-deploy.sh: No such file or directory"
    )


async def test_missing_working_directory(tmp_path: Path) -> None:
    result = await provider(["true"], cwd="gone", base_dir=tmp_path).deploy(CTX, recorded(tmp_path))

    assert not result.ok
    assert result.error == f"cannot run in {tmp_path / 'gone'}: No such file or directory"


async def test_relative_argv0_resolves_against_configured_cwd(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    script(tmp_path / "ops" / "deploy.sh", 'echo "in $(pwd) deploying $1"\n')

    result = await provider(["./deploy.sh", "{version}"], cwd="ops", base_dir=tmp_path).deploy(CTX, recorded(tmp_path))

    assert result.ok, result
    assert result.output_tail == f"in {tmp_path / 'ops'} deploying 1.2.3"


@pytest.mark.parametrize("background", ["leave", "kill"])
async def test_timeout_kills_the_whole_process_group(tmp_path: Path, background: str) -> None:
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    slow = script(
        tmp_path / "slow.sh",
        f"echo 'migrating database'\nsleep 1000 &\necho \"$$ $!\" > '{tmp_path}/pids'\necho go > '{fifo}'\nwait\n",
    )
    deploy = provider([str(slow)], timeout="2s", kill_grace=1.0, background=background)

    task = asyncio.create_task(deploy.deploy(CTX, recorded(tmp_path)))
    fds = pidfds(await started_pids(fifo))
    result = await task

    assert not result.ok
    assert result.error == "timed out after 2s"
    assert result.output_tail == "migrating database"
    for fd in fds:  # both the script and its grandchild `sleep 1000`
        await exited(fd)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process; a zombie (dead, not yet reaped by whoever adopted it) is not."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


async def timed_deploy(deploy: CommandDeployProvider, tmp_path: Path) -> tuple[StepResult, float]:
    """The deploy's result and how long it took on the event loop's clock."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await deploy.deploy(CTX, recorded(tmp_path))
    return result, loop.time() - start


async def test_exit_status_decides_though_a_background_child_holds_the_output(tmp_path: Path) -> None:
    # `sleep 60` inherits stdout: the pipe stays open for a minute after the script exits.
    daemon = script(tmp_path / "daemon.sh", "echo 'starting daemon'\n(sleep 60 & echo \"$!\")\nexit 0\n")

    result, took = await timed_deploy(provider([str(daemon)], timeout="30s"), tmp_path)
    pid = int(result.output_tail.splitlines()[-1])
    try:
        assert result.ok, result
        assert result.output_tail.splitlines()[0] == "starting daemon"
        assert took < 10, f"took {took:.1f}s: the drain grace is {DRAIN_GRACE}s, the timeout 30s"
        assert running(pid), "the background child is the script's business by default"
    finally:
        os.kill(pid, signal.SIGKILL)


async def test_output_a_background_child_writes_within_the_grace_is_kept(tmp_path: Path) -> None:
    late = script(tmp_path / "late.sh", "echo deployed\n(sleep 0.2; echo 'cache warmed') &\nexit 0\n")

    result = await provider([str(late)], timeout="30s").deploy(CTX, recorded(tmp_path))

    assert result.ok, result
    assert result.output_tail == "deployed\ncache warmed"


async def test_background_kill_kills_what_the_script_left_running(tmp_path: Path) -> None:
    # One child holds the output pipe, the other does not: both are in the script's process group.
    daemon = script(
        tmp_path / "daemon.sh",
        'sleep 60 &\necho "$!"\nsleep 60 > /dev/null 2>&1 &\necho "$!"\nexit 0\n',
    )

    result, took = await timed_deploy(provider([str(daemon)], timeout="30s", background="kill"), tmp_path)

    assert result.ok, result
    assert took < 10, f"took {took:.1f}s with a 30s timeout"
    pids = [int(line) for line in result.output_tail.splitlines()]
    assert len(pids) == 2
    assert not any(running(pid) for pid in pids)


async def test_failure_with_a_background_child_reports_the_exit_status(tmp_path: Path) -> None:
    failing = script(tmp_path / "failing.sh", "sleep 60 &\necho \"$!\"\necho 'migration failed' >&2\nexit 1\n")

    result, took = await timed_deploy(provider([str(failing)], timeout="30s"), tmp_path)
    pid = int(result.output_tail.splitlines()[0])
    try:
        assert not result.ok
        assert result.error == "exit status 1"
        assert result.output_tail.splitlines()[1:] == ["migration failed"]
        assert took < 10, f"took {took:.1f}s with a 30s timeout"
    finally:
        os.kill(pid, signal.SIGKILL)


async def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    stubborn = script(
        tmp_path / "stubborn.sh",
        f"trap '' TERM\nsleep 1000 &\necho \"$$ $!\" > '{tmp_path}/pids'\necho go > '{fifo}'\nwait\nwait\n",
    )
    deploy = provider([str(stubborn)], timeout="2s", kill_grace=0.2)

    task = asyncio.create_task(deploy.deploy(CTX, recorded(tmp_path)))
    fds = pidfds(await started_pids(fifo))
    result = await task

    assert result.error == "timed out after 2s"
    for fd in fds:
        await exited(fd)


async def test_cancelling_the_step_kills_the_process_group(tmp_path: Path) -> None:
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    slow = script(tmp_path / "slow.sh", f"sleep 1000 &\necho \"$$ $!\" > '{tmp_path}/pids'\necho go > '{fifo}'\nwait\n")
    task = asyncio.create_task(provider([str(slow)], timeout="1h").deploy(CTX, recorded(tmp_path)))
    fds = pidfds(await started_pids(fifo))

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for fd in fds:
        await exited(fd)


async def test_huge_output_keeps_only_the_tail_in_bounded_memory(tmp_path: Path) -> None:
    chatty = script(
        tmp_path / "chatty.sh",
        "yes 'progress: copying layer' | head -c 100000000\necho\necho 'deployed 1.2.3'\n",
    )
    tracemalloc.start()
    try:
        result = await provider([str(chatty)]).deploy(CTX, recorded(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.ok, result.error
    lines = result.output_tail.splitlines()
    assert lines[0] == "…"
    assert lines[-1] == "deployed 1.2.3"
    assert set(lines[1:-2]) == {"progress: copying layer"}  # lines[-2] is the line `head -c` cut short
    assert len(result.output_tail.encode()) <= 4096 + 4
    assert len(result.output_tail.splitlines()) <= 41
    assert peak < 2_000_000, f"peak Python memory {peak} bytes while reading 100 MB of output"


async def test_child_environment_has_release_values_and_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "RELEASEBOT_API_TOKEN",
        "GITHUB_TOKEN",
    ]
    for name in secrets:
        monkeypatch.setenv(name, f"secret-value-{name}")
    monkeypatch.setenv("DEPLOY_REGION", "ca-central-1")
    out = tmp_path / "env.txt"
    dump = script(tmp_path / "env.sh", f"env > '{out}'\n")

    result = await provider([str(dump)]).deploy(CTX, recorded(tmp_path))

    assert result.ok
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert "secret-value" not in out.read_text()
    assert not set(secrets) & set(env)
    assert env["DEPLOY_REGION"] == "ca-central-1"
    assert env["RELEASEBOT_SERVICE"] == "notify"
    assert env["RELEASEBOT_VERSION"] == "1.2.3"
    assert env["RELEASEBOT_ENVIRONMENT"] == "staging"
    assert env["RELEASEBOT_WEIGHT"] == "10"
    assert env["RELEASEBOT_RELEASE_ID"] == "42"
    assert env["RELEASEBOT_ACTION"] == "deploy"


async def test_shift_uses_shift_argv_else_run_with_the_new_weight(tmp_path: Path) -> None:
    dump, out = args_dumper(tmp_path)
    ctx = DeployContext("notify", "1.2.3", "prod", 3, weight=50, colour="blue")

    await provider([str(dump), "run", "{version}", "{weight}"], shift=[str(dump), "shift", "{colour}"]).shift(
        ctx, recorded(tmp_path)
    )
    assert dumped(out) == ["shift", "blue"]

    await provider([str(dump), "run", "{version}", "{weight}"]).shift(ctx, recorded(tmp_path))
    assert dumped(out) == ["run", "1.2.3", "50"]


async def test_rollback_uses_rollback_argv_else_run_for_the_target_at_full_weight(tmp_path: Path) -> None:
    dump, out = args_dumper(tmp_path)
    target = DeployContext("notify", "1.2.2", "prod", 3, weight=10, previous_version="1.2.3")

    await provider([str(dump), "run", "{version}", "{weight}"], rollback=[str(dump), "undo", "{version}"]).rollback(
        target, recorded(tmp_path)
    )
    assert dumped(out) == ["undo", "1.2.2"]

    result = await provider([str(dump), "run", "{version}", "{weight}"]).rollback(target, recorded(tmp_path))
    assert result.ok
    assert dumped(out) == ["run", "1.2.2", "100"]


@given(
    lines=st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Zl", "Zp", "Cc"]), max_size=300)),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=8),
)
def test_output_tail_is_independent_of_how_output_is_chunked(lines: list[str], cuts: list[int]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    whole = OutputTail()
    whole.feed(data)
    pieces = OutputTail()
    start = 0
    for cut in sorted(cuts):
        pieces.feed(data[start:cut])
        start = max(start, cut)
    pieces.feed(data[start:])

    assert pieces.text() == whole.text()
    assert len(whole.text().splitlines()) <= 41
    if len(data) <= 4096 and len(lines) <= 40:
        assert whole.text() == "\n".join(lines)

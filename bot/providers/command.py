"""The ``command`` deploy provider: run an argv list (never a shell), with a timeout, keeping the output tail.

Rules:

- **Placeholders.** Each argument is scanned once for ``{name}`` tokens (lowercase letters and ``_``).
  Known names (:data:`COMMAND_PLACEHOLDERS`: the release's values and the ``{action}``) are replaced; a
  value is never rescanned, so a version containing ``{service}`` or ``; rm -rf /`` arrives as one literal
  argument. Any other brace text (``{"json": 1}``, ``{}``, ``${HOME}``) is left exactly as written. An
  unknown ``{name}`` token is a config error (``bot.config``), so a typo such as ``{verison}`` is reported
  by ``check-config`` instead of deploying a literal ``{verison}``. A missing colour or previous version
  substitutes as ``""``. Every action (deploy, shift, rollback) gets every placeholder.
- **Paths.** A config loaded from a file has its paths made absolute against the file's directory
  (``bot.config.paths``): a program path with a ``/`` is relative to the config file, and so is ``cwd``,
  which defaults to the file's directory. So ``./deploy.sh`` beside ``releasebot.yml`` runs wherever the
  bot was started. A bare program name is looked up on ``PATH``. For a config built without a file the
  child runs in ``cwd`` (taken against ``base_dir``, by default the bot's working directory), else in
  ``base_dir``, and a relative program is found from there, as exec does. :func:`program_problems` checks
  every program the way it will be started, for ``check-config``.
- **Environment.** The bot's environment minus its secrets (:data:`SECRET_ENV`), plus
  ``RELEASEBOT_SERVICE``/``VERSION``/``ENVIRONMENT``/``WEIGHT``/``RELEASE_ID``/``ACTION`` (and
  ``RELEASEBOT_COLOUR``/``RELEASEBOT_PREVIOUS_VERSION`` when known).
- **Fence.** The argv runs under a small Python wrapper (:data:`WRAPPER`) that leads the step's own session
  and process group. The wrapper waits for a go on its stdin, which the bot sends only once the store has
  recorded the step (its group, named by :func:`bot.providers.process.identify`): a step the store could not
  record never starts, and a restarted bot finds every step that did (see ``inspect`` and ``follow``).
- **Output.** stdout and stderr are merged into the step's output file (the run record's ``output``, in the
  data directory), which the script keeps writing if the bot dies; the step's result keeps the last 4 KiB /
  40 lines of it. When the script exits, the wrapper writes its exit status to a file next to the output, so
  a restarted bot, no longer the script's parent, still learns how it ended.
- **Outcome.** The script's exit status decides, as soon as it exits: 0 is success, non-zero is
  ``exit status N``. A timeout kills the whole process group (SIGTERM, then SIGKILL after ``kill_grace``
  seconds) and reports ``timed out after 15m``; an executable that cannot be started is
  ``cannot run ./x: <reason>``.
- **Background children.** What the script leaves running when it exits does not hold the step open: what is
  left of its process group gets :data:`DRAIN_GRACE` more seconds to finish writing, then the output's tail
  is taken. With ``background: leave`` (the default) those children are the script's business and are left
  alone; with ``background: kill`` the script's process group is killed (as on a timeout), so nothing it
  started outlives the step — except what left the group (``setsid``).
- **After a restart.** ``inspect`` tells how a step the previous process left has ended (its status file),
  or that it still runs (its group is alive and is the one recorded); ``follow`` waits for it up to the
  timeout counted from its start, then kills its group. A step whose group is gone without a status file
  ended in a way nothing proves (:class:`~bot.providers.base.Unproven`).
- **Actions.** ``shift`` runs the ``shift`` argv when configured, else ``run`` with the new weight.
  ``rollback`` runs the ``rollback`` argv when configured, else ``run``, for the rollback target at weight
  100. Which calls the engine makes, with which values, is listed under ``deploy.run`` in docs/config.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from bot.config import CommandProvider, Config
from bot.config.rollout import COMMAND_PLACEHOLDERS, PLACEHOLDER, PLACEHOLDERS, unknown_placeholder
from bot.config.source import Loc, Position, Problem, problem_at
from bot.core.durations import format_duration
from bot.ports import RunRecord
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven
from bot.providers.process import group_running, identify, signal_group

__all__ = [
    "COMMAND_PLACEHOLDERS",
    "DRAIN_GRACE",
    "PLACEHOLDERS",
    "SECRET_ENV",
    "WRAPPER",
    "CommandDeployProvider",
    "OutputTail",
    "child_env",
    "check_placeholders",
    "file_tail",
    "placeholder_values",
    "program_problems",
    "status_file",
    "substitute",
]

Action = Literal["deploy", "shift", "rollback"]

# Secrets the bot itself holds; a deploy script has no business seeing them.
SECRET_ENV = frozenset(
    {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "RELEASEBOT_API_TOKEN", "GITHUB_TOKEN"}
)
TAIL_BYTES = 4096
TAIL_LINES = 40
# Once the script has exited, what it left running in its group gets this much longer: enough for its last
# children to finish writing, short enough that a background child (a daemon the script started, a stray
# `&`) cannot keep the step open. Then the output's tail is taken.
DRAIN_GRACE = 2.0
_GROUP_POLL = 0.05  # how often a group being drained or killed is checked for members left
_FOLLOW_POLL = 0.2  # how often a step left by a previous process is looked at (status file, /proc)
# The wrapper: waits for the bot's go (the step is recorded), runs the argv with stdin from /dev/null and the
# output inherited, and writes how it ended to the status file (argv[1]) atomically. Without a go (the bot
# died before recording the step) it runs nothing. Killed itself (a timeout), it writes nothing.
WRAPPER = """\
import json, os, subprocess, sys
status, argv = sys.argv[1], sys.argv[2:]
if sys.stdin.readline() != "go\\n":
    sys.exit(125)
try:
    ended = {"returncode": subprocess.call(argv, stdin=subprocess.DEVNULL)}
except OSError as exc:
    ended = {"cannot_run": f"cannot run {argv[0]}: {exc.strerror or exc}"}
with open(status + ".tmp", "w") as out:
    json.dump(ended, out)
os.replace(status + ".tmp", status)
"""


def placeholder_values(ctx: DeployContext, action: str | None = None) -> dict[str, str]:
    """The text each placeholder stands for in ``ctx`` (plus ``action`` when given)."""
    values = {
        "service": ctx.service,
        "version": ctx.version,
        "environment": ctx.environment,
        "weight": str(ctx.weight),
        "colour": ctx.colour or "",
        "previous_version": ctx.previous_version or "",
        "release_id": str(ctx.release_id),
    }
    if action is not None:
        values["action"] = action
    return values


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` tokens found in ``values`` in one pass; leave all other text untouched."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def check_placeholders(templates: Sequence[str], known: Sequence[str], where: str) -> None:
    """Raise ValueError naming the first ``{name}`` token in ``templates`` that is not in ``known``."""
    for i, template in enumerate(templates):
        error = unknown_placeholder(template, tuple(known))
        if error is not None:
            raise ValueError(f"{where}[{i}]: {error}")


def child_env(parent: Mapping[str, str], ctx: DeployContext, action: Action) -> dict[str, str]:
    """The deploy script's environment: ``parent`` without secrets, plus the release's RELEASEBOT_* values."""
    env = {key: value for key, value in parent.items() if key not in SECRET_ENV}
    env.update(
        RELEASEBOT_SERVICE=ctx.service,
        RELEASEBOT_VERSION=ctx.version,
        RELEASEBOT_ENVIRONMENT=ctx.environment,
        RELEASEBOT_WEIGHT=str(ctx.weight),
        RELEASEBOT_RELEASE_ID=str(ctx.release_id),
        RELEASEBOT_ACTION=action,
    )
    if ctx.colour is not None:
        env["RELEASEBOT_COLOUR"] = ctx.colour
    if ctx.previous_version is not None:
        env["RELEASEBOT_PREVIOUS_VERSION"] = ctx.previous_version
    return env


def program_problems(
    config: Config, positions: Mapping[Loc, Position], search_path: str | None = None
) -> list[Problem]:
    """Each ``command`` deploy's working directory and programs (``run``, ``shift``, ``rollback``), checked the
    way they will be started: a path must be an executable file, a bare name must be found on ``search_path``
    (default: the bot's ``PATH``, which the deploy inherits). A program with a placeholder in its name is only
    known when it runs, so it is not checked."""
    problems: list[Problem] = []
    for name, environment in config.environments.items():
        deploy = environment.deploy
        if not isinstance(deploy, CommandProvider):
            continue
        here: Loc = ("environments", name, "deploy")
        workdir = CommandDeployProvider(deploy).workdir()
        if not workdir.is_dir():
            problems.append(problem_at((*here, "cwd"), f"working directory {workdir} is not a directory", positions))
            continue  # a relative program is found from there
        for key, argv in (("run", deploy.run), ("shift", deploy.shift), ("rollback", deploy.rollback)):
            reason = _program_problem(argv[0], workdir, search_path) if argv else None
            if reason is not None:
                problems.append(problem_at((*here, key, 0), reason, positions))
    return problems


def _program_problem(program: str, workdir: Path, search_path: str | None) -> str | None:
    if PLACEHOLDER.search(program):
        return None
    if "/" not in program:
        if shutil.which(program, path=search_path) is None:
            return f"{program!r} is not on PATH (a program named without a '/' is looked up on PATH)"
        return None
    path = workdir / program
    if not path.exists():
        return f"{path} does not exist (a program path is relative to the config file)"
    if not path.is_file() or not os.access(path, os.X_OK):
        return f"{path} is not an executable file"
    return None


class OutputTail:
    """Keeps the last ``max_bytes`` / ``max_lines`` of a byte stream in bounded memory."""

    def __init__(self, max_bytes: int = TAIL_BYTES, max_lines: int = TAIL_LINES) -> None:
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.total = 0
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Append ``chunk``, forgetting what falls out of the window (trimmed lazily, at 2x the window)."""
        self.total += len(chunk)
        self._buf += chunk
        if len(self._buf) > 2 * self.max_bytes:
            del self._buf[: -self.max_bytes]

    def text(self) -> str:
        """The kept tail as text; a leading ``…`` line marks that earlier output was dropped."""
        data = bytes(self._buf[-self.max_bytes :])
        lines = data.decode("utf-8", errors="replace").splitlines()
        truncated = self.total > len(data)
        if truncated and len(lines) > 1:
            lines = lines[1:]  # the first line was cut somewhere in the middle
        if len(lines) > self.max_lines:
            lines, truncated = lines[-self.max_lines :], True
        return "\n".join(["…", *lines] if truncated else lines)


def tail_text(text: str) -> str:
    """Bound an already-complete text (an HTTP deploy log) the same way as a command's output."""
    tail = OutputTail()
    tail.feed(text.encode("utf-8", errors="replace"))
    return tail.text()


def file_tail(path: Path) -> str:
    """The tail of an output file, reading only its end ("" when there is none)."""
    tail = OutputTail()
    try:
        with path.open("rb") as output:
            size = output.seek(0, os.SEEK_END)
            # Twice the window: the line cut at the start is dropped, and a longer file reads as truncated.
            output.seek(max(0, size - 2 * tail.max_bytes))
            tail.feed(output.read())
    except FileNotFoundError:
        return ""
    return tail.text()


def status_file(output: Path) -> Path:
    """Where the wrapper writes how the step's script ended: next to its output."""
    return output.with_suffix(".status")


def read_status(status: Path) -> tuple[str | None, int | None] | None:
    """(error or None, exit status) as the wrapper recorded them; None when it recorded nothing."""
    try:
        ended = json.loads(status.read_text())
    except (FileNotFoundError, ValueError):  # not written (yet), or not by the wrapper
        return None
    if "cannot_run" in ended:
        return str(ended["cannot_run"]), None
    returncode = int(ended["returncode"])
    return _exit_error(returncode), returncode if returncode >= 0 else None


class CommandDeployProvider:
    """Deploys by running the configured argv lists; implements the DeployProvider protocol."""

    def __init__(self, config: CommandProvider, *, base_dir: Path | None = None, kill_grace: float = 2.0) -> None:
        self.config = config  # its placeholders were checked when it was validated
        self.base_dir = base_dir
        self.kill_grace = kill_grace

    def __repr__(self) -> str:
        return f"CommandDeployProvider(run={self.config.run!r})"

    async def deploy(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Run ``run`` for ``ctx``."""
        return await self.execute(self.config.run, ctx, "deploy", run)

    async def shift(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Run ``shift`` (or ``run``) with ``ctx.weight`` / ``ctx.colour``."""
        return await self.execute(self.config.shift or self.config.run, ctx, "shift", run)

    async def rollback(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Run ``rollback`` (or ``run``) for the rollback target ``ctx.version`` at weight 100."""
        full = dataclasses.replace(ctx, weight=100)
        return await self.execute(self.config.rollback or self.config.run, full, "rollback", run)

    def workdir(self) -> Path:
        """The directory the child runs in (see the module docstring)."""
        base = self.base_dir if self.base_dir is not None else Path.cwd()
        return base / self.config.cwd if self.config.cwd is not None else base

    async def execute(self, template: Sequence[str], ctx: DeployContext, action: Action, run: RunRecord) -> StepResult:
        """Substitute ``ctx`` into ``template``, record the step in ``run``, run it and report the outcome with
        the output tail."""
        values = placeholder_values(ctx, action)
        argv = [substitute(arg, values) for arg in template]
        workdir = self.workdir()
        output = run.output
        output.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        with output.open("ab") as out:  # the child's own copy stays open as long as it runs
            spawn = asyncio.ensure_future(
                loop.subprocess_exec(
                    lambda: _Child(loop),
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    WRAPPER,
                    str(status_file(output)),
                    *argv,
                    stdin=asyncio.subprocess.PIPE,  # the go, once the step is recorded
                    stdout=out,
                    stderr=out,
                    cwd=workdir,
                    env=child_env(os.environ, ctx, action),
                    start_new_session=True,  # its own process group, so a timeout can kill grandchildren too
                )
            )
            try:
                # Shielded: cancelled mid-spawn, asyncio would kill only the leader and leak its children.
                transport, child = await asyncio.shield(spawn)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.filename is not None and Path(str(exc.filename)) == workdir:
                    return StepResult(ok=False, output_tail="", error=f"cannot run in {workdir}: {reason}")
                return StepResult(ok=False, output_tail="", error=f"cannot start {argv[0]}: {reason}")
            except asyncio.CancelledError:
                with contextlib.suppress(OSError):
                    transport, child = await spawn
                    try:
                        await self._kill_group(transport.get_pid(), child.exited)
                    finally:
                        transport.close()
                raise
        try:
            await self._start(transport, child, run)
            error, exit_status = await self._supervise(transport, child, status_file(output))
        finally:
            transport.close()
        return StepResult(ok=error is None, output_tail=file_tail(output), error=error, exit_status=exit_status)

    async def _start(self, transport: asyncio.SubprocessTransport, child: _Child, run: RunRecord) -> None:
        """Record the step, then tell the wrapper to start the script. Not recorded, the script never starts."""
        pgid = transport.get_pid()  # start_new_session: the wrapper leads a group with its own pid
        try:
            await run.starting(identify(pgid))
        except BaseException:
            await asyncio.shield(self._kill_group(pgid, child.exited))
            raise
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        stdin.write(b"go\n")
        stdin.close()

    async def _supervise(
        self, transport: asyncio.SubprocessTransport, child: _Child, status: Path
    ) -> tuple[str | None, int | None]:
        """Wait for the script's exit (or time it out), deal with what it left running; (error, exit status).

        The error is None on success, else one line. The script's exit decides: children it left in the
        background are not waited for beyond :data:`DRAIN_GRACE`.
        """
        pgid = transport.get_pid()
        try:
            async with asyncio.timeout(self.config.timeout.total_seconds()):
                # Shielded: the timeout must not cancel the future the exit is reported to.
                await asyncio.shield(child.exited)
        except TimeoutError:
            await asyncio.shield(self._kill_group(pgid, child.exited))
            return f"timed out after {format_duration(self.config.timeout)}", None
        except asyncio.CancelledError:
            # The bot is stopping or the release was abandoned: leave no deploy running unsupervised.
            await asyncio.shield(self._kill_group(pgid, child.exited))
            raise
        if self.config.background == "kill":
            await asyncio.shield(self._kill_group(pgid, child.exited))
        else:
            await self._drain(pgid)
        recorded = read_status(status)
        if recorded is not None:
            return recorded
        returncode = transport.get_returncode()  # the wrapper ended without a status: it was killed
        assert returncode is not None  # set before process_exited() is called
        return _exit_error(returncode) or "the deploy command ended without an exit status", None

    async def _drain(self, pgid: int) -> None:
        """Give what the script left running in its group :data:`DRAIN_GRACE` to finish writing its output.

        Polled: nothing signals when processes that are not our children leave. An unreaped zombie (no init
        reaping orphans) also counts as a member, which only costs the rest of the grace.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_GRACE):
                while _group_exists(pgid):  # noqa: ASYNC110
                    await asyncio.sleep(_GROUP_POLL)

    async def _kill_group(self, pgid: int, exited: asyncio.Future[None]) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it after ``kill_grace`` seconds."""
        signal_group(pgid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.kill_grace):
                await asyncio.shield(exited)
                # The leader may be gone while a grandchild is still finishing (see _drain on polling).
                while _group_exists(pgid):  # noqa: ASYNC110
                    await asyncio.sleep(_GROUP_POLL)
        signal_group(pgid, signal.SIGKILL)
        await asyncio.shield(exited)

    # --- steps a previous process of the bot left --------------------------------------------------
    async def inspect(self, left: LeftRun) -> StepResult | Unproven | None:
        """How a left step ended (its status file); None while its process group still runs."""
        ended = self._ended(left)
        if ended is not None:
            return ended
        if group_running(left.identity):
            return None
        # It may have ended between the two looks: the status file is written before the group ends.
        ended = self._ended(left)
        if ended is not None:
            return ended
        tail = file_tail(left.output) if left.output is not None else ""
        return Unproven("its process ended without recording an exit status", tail)

    async def follow(self, left: LeftRun) -> StepResult | Unproven:
        """Wait for a left step to end; at its timeout (from its start) kill its group.

        Polled (:data:`_FOLLOW_POLL`): it is not our child, so nothing tells when it ends. The bot stopping
        meanwhile leaves it running: the next start follows it again.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + left.remaining
        while True:
            found = await self.inspect(left)
            if found is not None:
                if self.config.background == "kill":
                    await self._stop_left(left.identity)
                return found
            if loop.time() >= deadline:
                await self._stop_left(left.identity)
                tail = file_tail(left.output) if left.output is not None else ""
                return StepResult(
                    ok=False, output_tail=tail, error=f"timed out after {format_duration(self.config.timeout)}"
                )
            await asyncio.sleep(min(_FOLLOW_POLL, deadline - loop.time()))

    def _ended(self, left: LeftRun) -> StepResult | None:
        if left.output is None:
            return None
        recorded = read_status(status_file(left.output))
        if recorded is None:
            return None
        error, exit_status = recorded
        return StepResult(ok=error is None, output_tail=file_tail(left.output), error=error, exit_status=exit_status)

    async def _stop_left(self, identity: RunIdentity) -> None:
        """SIGTERM a left step's group, then SIGKILL what is left after ``kill_grace``. Each signal is sent only
        while the group is still the step's (:func:`group_running`), never to a group that took its id later."""
        assert identity.pgid is not None
        if not group_running(identity):
            return
        signal_group(identity.pgid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.kill_grace):
                while group_running(identity):  # noqa: ASYNC110
                    await asyncio.sleep(_GROUP_POLL)
        if group_running(identity):
            signal_group(identity.pgid, signal.SIGKILL)


class _Child(asyncio.SubprocessProtocol):
    """Tells when the wrapper exits. asyncio's own ``Process.wait()`` (3.11) only returns once every pipe is
    closed too; the wrapper's output is a file, but its stdin is a pipe."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _exit_error(returncode: int) -> str | None:
    """None for exit status 0, else how the script ended, for people."""
    if returncode == 0:
        return None
    return f"exit status {returncode}" if returncode > 0 else f"killed by {signal.Signals(-returncode).name}"


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member we may not signal (it changed user) is still a member
    return True

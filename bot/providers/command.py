"""The ``command`` deploy provider: run an argv list (never a shell), with a timeout, keeping the output tail.

Rules:

- **Placeholders.** Each argument is scanned once for ``{name}`` tokens (lowercase letters and ``_``).
  Known names (:data:`PLACEHOLDERS`) are replaced by the release's values; a value is never rescanned,
  so a version containing ``{service}`` or ``; rm -rf /`` arrives as one literal argument. Any other
  brace text (``{"json": 1}``, ``{}``, ``${HOME}``) is left exactly as written. An unknown ``{name}``
  token is rejected when the provider is built, so a typo such as ``{verison}`` fails at start instead
  of deploying a literal ``{verison}``. A missing colour or previous version substitutes as ``""``.
- **Paths.** The child runs in ``cwd`` when configured (a relative ``cwd`` is taken against
  ``base_dir``, by default the bot's working directory), else in ``base_dir``. ``argv[0]`` follows exec
  rules: a name containing ``/`` is relative to the child's working directory, a bare name is looked
  up on ``PATH``. So ``./examples/deploy.sh`` works when the bot runs from the repository root.
- **Environment.** The bot's environment minus its secrets (:data:`SECRET_ENV`), plus
  ``RELEASEBOT_SERVICE``/``VERSION``/``ENVIRONMENT``/``WEIGHT``/``RELEASE_ID``/``ACTION`` (and
  ``RELEASEBOT_COLOUR``/``RELEASEBOT_PREVIOUS_VERSION`` when known).
- **Output.** stdout and stderr are merged and read as they come; only the last 4 KiB / 40 lines are
  kept, so a script printing 100 MB costs no memory.
- **Outcome.** The script's exit status decides, as soon as it exits: 0 is success, non-zero is
  ``exit status N``. A timeout kills the whole process group (SIGTERM, then SIGKILL after ``kill_grace``
  seconds) and reports ``timed out after 15m``; an executable that cannot be started is
  ``cannot run ./x: <reason>``.
- **Background children.** What the script leaves running when it exits does not hold the step open, even
  when it inherited the output pipe: the output is read for :data:`DRAIN_GRACE` more seconds, then
  reading stops (a child writing to the pipe later gets EPIPE/SIGPIPE, so a daemon should redirect its
  output). With ``background: leave`` (the default) those children are the script's business and are
  left alone; with ``background: kill`` the script's process group is killed (as on a timeout), so
  nothing it started outlives the step — except what left the group (``setsid``).
- **Actions.** ``shift`` runs the ``shift`` argv when configured, else ``run`` with the new weight.
  ``rollback`` runs the ``rollback`` argv when configured, else ``run`` for the rollback target; both
  with weight 100.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from bot.config import CommandProvider
from bot.core.durations import format_duration
from bot.providers.base import DeployContext, StepResult

__all__ = [
    "DRAIN_GRACE",
    "PLACEHOLDERS",
    "SECRET_ENV",
    "CommandDeployProvider",
    "OutputTail",
    "child_env",
    "check_placeholders",
    "placeholder_values",
    "substitute",
]

Action = Literal["deploy", "shift", "rollback"]

PLACEHOLDERS = ("service", "version", "environment", "weight", "colour", "previous_version", "release_id")
# Secrets the bot itself holds; a deploy script has no business seeing them.
SECRET_ENV = frozenset(
    {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "RELEASEBOT_API_TOKEN", "GITHUB_TOKEN"}
)
TAIL_BYTES = 4096
TAIL_LINES = 40
# Once the script has exited, its output is read for this much longer: enough for what its last children
# were still writing to arrive, short enough that a background child that inherited the pipe (a daemon the
# script started, a stray `&`) cannot keep the step open. Then reading stops.
DRAIN_GRACE = 2.0
_TOKEN = re.compile(r"\{([a-z_]+)\}")
_GROUP_POLL = 0.05  # how often a group being killed is checked for members left


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
    return _TOKEN.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def check_placeholders(templates: Sequence[str], known: Sequence[str], where: str) -> None:
    """Raise ValueError naming the first ``{name}`` token in ``templates`` that is not in ``known``."""
    for i, template in enumerate(templates):
        for match in _TOKEN.finditer(template):
            if match.group(1) not in known:
                raise ValueError(
                    f"{where}[{i}]: unknown placeholder {match.group(0)} "
                    f"(known: {', '.join('{' + k + '}' for k in known)})"
                )


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


class CommandDeployProvider:
    """Deploys by running the configured argv lists; implements the DeployProvider protocol."""

    def __init__(self, config: CommandProvider, *, base_dir: Path | None = None, kill_grace: float = 2.0) -> None:
        check_placeholders(config.run, PLACEHOLDERS, "run")
        check_placeholders(config.shift or [], PLACEHOLDERS, "shift")
        check_placeholders(config.rollback or [], PLACEHOLDERS, "rollback")
        self.config = config
        self.base_dir = base_dir
        self.kill_grace = kill_grace

    def __repr__(self) -> str:
        return f"CommandDeployProvider(run={self.config.run!r})"

    async def deploy(self, ctx: DeployContext) -> StepResult:
        """Run ``run`` for ``ctx``."""
        return await self.execute(self.config.run, ctx, "deploy")

    async def shift(self, ctx: DeployContext) -> StepResult:
        """Run ``shift`` (or ``run``) with ``ctx.weight`` / ``ctx.colour``."""
        return await self.execute(self.config.shift or self.config.run, ctx, "shift")

    async def rollback(self, ctx: DeployContext) -> StepResult:
        """Run ``rollback`` (or ``run``) for the rollback target ``ctx.version`` at weight 100."""
        full = dataclasses.replace(ctx, weight=100)
        return await self.execute(self.config.rollback or self.config.run, full, "rollback")

    def workdir(self) -> Path:
        """The directory the child runs in (see the module docstring)."""
        base = self.base_dir if self.base_dir is not None else Path.cwd()
        return base / self.config.cwd if self.config.cwd is not None else base

    async def execute(self, template: Sequence[str], ctx: DeployContext, action: Action) -> StepResult:
        """Substitute ``ctx`` into ``template``, run it and report the outcome with the output tail."""
        values = placeholder_values(ctx)
        argv = [substitute(arg, values) for arg in template]
        workdir = self.workdir()
        loop = asyncio.get_running_loop()
        tail = OutputTail()
        spawn = asyncio.ensure_future(
            loop.subprocess_exec(
                lambda: _Child(tail, loop),
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
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
            return StepResult(ok=False, output_tail="", error=f"cannot run {argv[0]}: {reason}")
        except asyncio.CancelledError:
            with contextlib.suppress(OSError):
                transport, child = await spawn
                try:
                    await self._kill_group(transport.get_pid(), child.exited)
                finally:
                    transport.close()
            raise
        try:
            error = await self._supervise(transport, child)
        finally:
            # Stops reading: a background child still holding the pipe gets EPIPE/SIGPIPE if it writes.
            transport.close()
        return StepResult(ok=error is None, output_tail=tail.text(), error=error)

    async def _supervise(self, transport: asyncio.SubprocessTransport, child: _Child) -> str | None:
        """Wait for the script's exit (or time it out), drain its output, deal with what it left running.

        Returns None on success, else the one-line error. The script's exit decides: children it left in
        the background are not waited for, whether or not they still hold its output pipe.
        """
        pgid = transport.get_pid()  # start_new_session: the child leads a group with its own pid
        try:
            async with asyncio.timeout(self.config.timeout.total_seconds()):
                # Shielded: the timeout must not cancel the future the exit is reported to.
                await asyncio.shield(child.exited)
        except TimeoutError:
            await asyncio.shield(self._kill_group(pgid, child.exited))
            error: str | None = f"timed out after {format_duration(self.config.timeout)}"
            group_killed = True
        except asyncio.CancelledError:
            # The bot is stopping or the release was abandoned: leave no deploy running unsupervised.
            await asyncio.shield(self._kill_group(pgid, child.exited))
            raise
        else:
            returncode = transport.get_returncode()
            assert returncode is not None  # set before process_exited() is called
            error = _exit_error(returncode)
            group_killed = False
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_GRACE):
                    await asyncio.shield(child.output_closed)
        finally:
            if self.config.background == "kill" and not group_killed:
                await asyncio.shield(self._kill_group(pgid, child.exited))
        return error

    async def _kill_group(self, pgid: int, exited: asyncio.Future[None]) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it after ``kill_grace`` seconds."""
        _signal_group(pgid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.kill_grace):
                await asyncio.shield(exited)
                # The leader may be gone while a grandchild is still finishing. Polled: nothing signals when
                # processes that are not our children leave. An unreaped zombie (no init reaping orphans)
                # also counts as a member, which only costs the rest of the grace.
                while _group_exists(pgid):  # noqa: ASYNC110
                    await asyncio.sleep(_GROUP_POLL)
        _signal_group(pgid, signal.SIGKILL)
        await asyncio.shield(exited)


class _Child(asyncio.SubprocessProtocol):
    """Feeds the merged output into ``tail``; tells apart the script's exit and the end of its output.

    asyncio's own ``Process.wait()`` (3.11) only returns once every pipe is closed too, so a background
    child holding stdout would make an exited script look like it is still running.
    """

    def __init__(self, tail: OutputTail, loop: asyncio.AbstractEventLoop) -> None:
        self.tail = tail
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.tail.feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _exit_error(returncode: int) -> str | None:
    """None for exit status 0, else how the script ended, for people."""
    if returncode == 0:
        return None
    return f"exit status {returncode}" if returncode > 0 else f"killed by {signal.Signals(-returncode).name}"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member we may not signal (it changed user) is still a member
    return True

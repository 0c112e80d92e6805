"""Real server processes the integration tests start (Prometheus, Alertmanager, mtail): found or skipped, on a
free loopback port with a throw-away directory, awaited ready, stopped.

A binary that is absent skips its tests on a laptop, but fails them when ``CI=true``: .ci/run installs every one,
so a missing binary there is a broken CI, not a reason to skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import aiohttp
import pytest

READY_TIMEOUT = 30.0


def require_binary(*names: str, package: str, tests: str) -> str:
    """The first of ``names`` on PATH, or skip ``tests`` (laptop) — but under ``CI=true`` a missing binary fails."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the {names[0]} binary is not installed: .ci/run must apt-get install {package}")
    pytest.skip(f"{names[0]} not installed (apt-get install {package}); {tests} skipped")


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One server binary: :meth:`start` prepares its files in :attr:`root` and spawns it with :meth:`_spawn`;
    it is ready when ``ready_path`` answers 200. ``async with`` starts it and stops it, cleaning up after."""

    name: ClassVar[str]  # in messages and the log file's name
    ready_path: ClassVar[str]

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The base URL of its HTTP server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def root(self) -> Path:
        """Its throw-away directory (config, data, log)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.name}-test-")
        return Path(self._tmp.name)

    @property
    def log(self) -> str:
        """What the process wrote so far (for failure messages)."""
        path = self.root / f"{self.name}.log" if self._tmp is not None else None
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    async def start(self) -> None:
        raise NotImplementedError

    async def _spawn(self, *args: str) -> None:
        """Start the binary with ``args`` (its output to the log) on :attr:`port`, and await readiness."""
        with (self.root / f"{self.name}.log").open("wb") as out:
            self._process = await asyncio.create_subprocess_exec(self.binary, *args, stdout=out, stderr=out)
        await self._await_ready()

    async def _await_ready(self) -> None:
        # Readiness of an external process: bounded polling is the only signal it offers.
        assert self._process is not None
        async with aiohttp.ClientSession() as session:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READY_TIMEOUT
            while loop.time() < deadline:
                if self._process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited with {self._process.returncode}:\n{self.log}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}{self.ready_path}") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT:g}s:\n{self.log}")

    async def stop(self) -> None:
        """Terminate (then kill) the process; idempotent. Its directory stays until ``__aexit__``."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            self._cleanup()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        self._cleanup()

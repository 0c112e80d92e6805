"""A real mtail for tests: it tails log files and serves counters in the Prometheus format, on a free port.

``RealMtail`` runs the ``mtail`` binary (Debian package ``mtail``) on a free loopback port with the given
program directory and log files. Skipped where the binary is absent, except under ``CI=true``, where a missing
binary fails (the rule of ``tests/prometheus_harness.py``). ``await_value`` polls a real Prometheus until a
query says what the test waits for: the readiness of external processes offers no other signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest

from tests.prometheus_harness import free_port

READY_TIMEOUT = 30.0


def mtail_binary() -> str | None:
    """The mtail executable on PATH, if any."""
    return shutil.which("mtail")


def require_mtail() -> str:
    """The binary, or skip (laptop) — but in CI (``CI=true``) a missing binary fails loudly."""
    binary = mtail_binary()
    if binary is not None:
        return binary
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but the mtail binary is not installed: .ci/run must apt-get install mtail")
    pytest.skip("mtail binary not installed (apt-get install mtail); log-check integration tests skipped")


class RealMtail:
    """``mtail --progs PROGS --logs LOG,… --address 127.0.0.1 --port P``; ``target`` is what Prometheus scrapes."""

    def __init__(self, progs: Path, logs: list[Path], *, binary: str | None = None) -> None:
        self.progs = progs
        self.logs = logs
        self.binary = binary or require_mtail()
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """``host:port`` for a scrape config (mtail serves ``/metrics``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """What mtail wrote so far (for failure messages)."""
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "mtail.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def start(self) -> None:
        """Start the process (the log files must exist: mtail only polls files it found at start-up) and await
        ``/metrics``."""
        missing = [str(log) for log in self.logs if not log.exists()]
        if missing:
            raise FileNotFoundError(f"create the log files before mtail starts: {missing}")
        self._tmp = tempfile.TemporaryDirectory(prefix="mtail-test-")
        self.port = free_port()
        out = (Path(self._tmp.name) / "mtail.log").open("wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                "--progs",
                str(self.progs),
                "--logs",
                ",".join(str(log) for log in self.logs),
                "--address",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--logtostderr",
                stdout=out,
                stderr=out,
            )
        finally:
            out.close()
        await self._await_ready()

    async def _await_ready(self) -> None:
        # Readiness of an external process: bounded polling is the only signal it offers.
        assert self._process is not None
        async with aiohttp.ClientSession() as session:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READY_TIMEOUT
            while loop.time() < deadline:
                if self._process.returncode is not None:
                    raise RuntimeError(f"mtail exited with {self._process.returncode}:\n{self.log}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/metrics") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"mtail not ready after {READY_TIMEOUT:g}s:\n{self.log}")

    async def metrics(self) -> str:
        """The ``/metrics`` page as Prometheus scrapes it."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as response:
            return await response.text()

    async def stop(self) -> None:
        """Terminate (then kill) the process; idempotent."""
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

    async def __aenter__(self) -> RealMtail:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            if self._tmp is not None:
                self._tmp.cleanup()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


async def query_value(prometheus_url: str, query: str) -> float | None:
    """The single value of an instant query at Prometheus's now; None when it has no series."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{prometheus_url}/api/v1/query", params={"query": query}) as response,
    ):
        body = await response.json()
    result = body["data"]["result"]
    if not result:
        return None
    if len(result) > 1:
        raise AssertionError(f"{query} returned {len(result)} series")
    return float(result[0]["value"][1])


async def await_value(
    prometheus_url: str, query: str, wanted: Callable[[float], bool], *, timeout: float = 20.0
) -> float:
    """Poll ``query`` until its value satisfies ``wanted`` (bounded: scrapes of a real process give no event)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value: float | None = None
    while loop.time() < deadline:
        value = await query_value(prometheus_url, query)
        if value is not None and not math.isnan(value) and wanted(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{query} was {value} after {timeout:g}s")

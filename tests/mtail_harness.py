"""A real mtail for tests: it tails log files and serves counters in the Prometheus format, on a free port.

``RealMtail`` runs the ``mtail`` binary (Debian package ``mtail``) on a free loopback port with the given
program directory and log files. Skipped where the binary is absent, except under ``CI=true``, where a missing
binary fails (the rule of ``tests/prometheus_harness.py``). ``await_value`` polls a real Prometheus until a
query says what the test waits for: the readiness of external processes offers no other signal.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.processes import ServerProcess, free_port, require_binary


def require_mtail() -> str:
    """The binary, or skip (laptop) — but in CI (``CI=true``) a missing binary fails loudly."""
    return require_binary("mtail", package="mtail", tests="log-check integration tests")


class RealMtail(ServerProcess):
    """``mtail --progs PROGS --logs LOG,… --address 127.0.0.1 --port P``; ``target`` is what Prometheus scrapes."""

    name = "mtail"
    ready_path = "/metrics"

    def __init__(self, progs: Path, logs: list[Path], *, binary: str | None = None) -> None:
        super().__init__(binary or require_mtail())
        self.progs = progs
        self.logs = logs

    @property
    def target(self) -> str:
        """``host:port`` for a scrape config (mtail serves ``/metrics``)."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the process (the log files must exist: mtail only polls files it found at start-up) and await
        ``/metrics``."""
        missing = [str(log) for log in self.logs if not log.exists()]
        if missing:
            raise FileNotFoundError(f"create the log files before mtail starts: {missing}")
        self.port = free_port()
        await self._spawn(
            "--progs",
            str(self.progs),
            "--logs",
            ",".join(str(log) for log in self.logs),
            "--address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--logtostderr",
        )

    async def metrics(self) -> str:
        """The ``/metrics`` page as Prometheus scrapes it."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as response:
            return await response.text()


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

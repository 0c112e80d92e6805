"""A real Prometheus server for tests, and an exporter the test controls that it scrapes.

``RealPrometheus`` runs the ``prometheus`` binary (Debian package ``prometheus``) on a free loopback port
with a throw-away config and TSDB. ``ControlledExporter`` is a real aiohttp server serving
``http_requests_total`` in the Prometheus text format; every scrape advances the counters by the
per-scrape increments the test sets, so ``rate()`` has data after a few 1 s scrapes, and
``wait_for_scrapes(n)`` awaits scrapes through an event instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest
from aiohttp import web

READY_TIMEOUT = 30.0


def prometheus_binary() -> str | None:
    """The prometheus executable on PATH, if any."""
    return shutil.which("prometheus")


def require_prometheus() -> str:
    """The binary, or skip (laptop) — but in CI (``CI=true``) a missing binary fails loudly."""
    binary = prometheus_binary()
    if binary is not None:
        return binary
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but the prometheus binary is not installed: .ci/run must apt-get install prometheus")
    pytest.skip("prometheus binary not installed (apt-get install prometheus); integration tests skipped")


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ControlledExporter:
    """``/metrics`` with ``http_requests_total{service,code}`` counters advanced on every scrape."""

    def __init__(self) -> None:
        self.increments: dict[tuple[str, str], float] = {}
        self.counters: dict[tuple[str, str], float] = {}
        self.scrapes = 0
        self._scraped = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def set_rate(self, service: str, code: str, per_scrape: float) -> None:
        """Requests added to ``{service, code}`` at each scrape (the series appears at the next scrape)."""
        self.increments[(service, code)] = per_scrape

    async def _metrics(self, request: web.Request) -> web.Response:
        for key, step in self.increments.items():
            self.counters[key] = self.counters.get(key, 0.0) + step
        lines = [
            "# HELP http_requests_total Requests served.",
            "# TYPE http_requests_total counter",
        ]
        for (service, code), value in sorted(self.counters.items()):
            lines.append(f'http_requests_total{{service="{service}",code="{code}"}} {value:g}')
        self.scrapes += 1
        self._scraped.set()
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")

    async def wait_for_scrapes(self, n: int, timeout: float = 20.0) -> None:
        """Await ``n`` more scrapes than have happened so far."""
        target = self.scrapes + n
        async with asyncio.timeout(timeout):
            while self.scrapes < target:
                self._scraped.clear()
                await self._scraped.wait()

    @property
    def target(self) -> str:
        """``host:port`` for a scrape config."""
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> ControlledExporter:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class RealPrometheus:
    """The real ``prometheus`` binary on a free loopback port, scraping ``targets`` at ``scrape_interval``."""

    def __init__(self, targets: list[str], *, scrape_interval: str = "1s", binary: str | None = None) -> None:
        self.targets = targets
        self.scrape_interval = scrape_interval
        self.binary = binary or require_prometheus()
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """What prometheus wrote so far (for failure messages)."""
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def start(self) -> None:
        """Write the config, start the process, and await ``/-/ready``."""
        self._tmp = tempfile.TemporaryDirectory(prefix="prom-test-")
        root = Path(self._tmp.name)
        targets = ", ".join(f'"{t}"' for t in self.targets)
        (root / "prometheus.yml").write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  evaluation_interval: {self.scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: exporter\n"
            f"    static_configs: [{{targets: [{targets}]}}]\n"
        )
        self.port = free_port()
        log = (root / "prometheus.log").open("wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        await self._await_ready()

    async def _await_ready(self) -> None:
        # Readiness of an external process: bounded polling is the only signal it offers.
        assert self._process is not None
        async with aiohttp.ClientSession() as session:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READY_TIMEOUT
            while loop.time() < deadline:
                if self._process.returncode is not None:
                    raise RuntimeError(f"prometheus exited with {self._process.returncode}:\n{self.log}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"prometheus not ready after {READY_TIMEOUT:g}s:\n{self.log}")

    async def stop(self) -> None:
        """Terminate (then kill) the process; idempotent. The TSDB stays until ``__aexit__``."""
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

    async def __aenter__(self) -> RealPrometheus:
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


@dataclass
class PrometheusStack:
    """An exporter the test controls and a real Prometheus scraping it every second."""

    exporter: ControlledExporter
    prometheus: RealPrometheus


@contextlib.asynccontextmanager
async def prometheus_stack(rates: Iterable[tuple[str, str, float]]) -> AsyncIterator[PrometheusStack]:
    """A stack whose exporter adds ``(service, code, per_scrape)`` requests at each scrape, yielded once
    Prometheus has ``rate()`` data for them. Skips (fails in CI) without the prometheus binary."""
    require_prometheus()
    async with ControlledExporter() as exporter:
        for service, code, per_scrape in rates:
            exporter.set_rate(service, code, per_scrape)
        async with RealPrometheus([exporter.target], scrape_interval="1s") as prometheus:
            # rate() needs two samples in its window; the third scrape guarantees two were ingested.
            await exporter.wait_for_scrapes(3)
            yield PrometheusStack(exporter, prometheus)

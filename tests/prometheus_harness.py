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
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.processes import READY_TIMEOUT, ServerProcess, free_port, require_binary

__all__ = [
    "READY_TIMEOUT",
    "ControlledExporter",
    "PrometheusStack",
    "RealPrometheus",
    "free_port",
    "prometheus_stack",
    "require_prometheus",
]


def require_prometheus() -> str:
    """The binary, or skip (laptop) — but in CI (``CI=true``) a missing binary fails loudly."""
    return require_binary("prometheus", package="prometheus", tests="integration tests")


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


class RealPrometheus(ServerProcess):
    """The real ``prometheus`` binary on a free loopback port, scraping ``targets`` at ``scrape_interval``."""

    name = "prometheus"
    ready_path = "/-/ready"

    def __init__(self, targets: list[str], *, scrape_interval: str = "1s", binary: str | None = None) -> None:
        super().__init__(binary or require_prometheus())
        self.targets = targets
        self.scrape_interval = scrape_interval

    def config(self) -> dict[str, Any]:
        """Its prometheus.yml (JSON is YAML: no quoting to get wrong)."""
        return {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": self.targets}]}],
        }

    async def start(self) -> None:
        """Write the config, start the process, and await ``/-/ready``."""
        (self.root / "prometheus.yml").write_text(json.dumps(self.config()))
        self.port = free_port()
        await self._spawn(
            f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        )


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

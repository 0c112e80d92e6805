"""A real Alertmanager for tests, and a real Prometheus that evaluates an alerting rule and sends it there.

``RealAlertmanager`` runs the ``prometheus-alertmanager`` binary (Debian package ``prometheus-alertmanager``) on a
free loopback port, clustering off, with one route to one webhook receiver: the bot's ``/api/v1/alerts`` with
the bearer token (``http_config.authorization``) and ``send_resolved``, and grouping timers of a second so a test
sees a notification within seconds. ``AlertingPrometheus`` is tests/prometheus_harness.py's ``RealPrometheus``
with a rule file and an ``alerting`` block pointing at that Alertmanager, evaluating every second.

Like tests/prometheus_harness.py: skipped where the binaries are absent, a failure when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest

from tests.prometheus_harness import READY_TIMEOUT, RealPrometheus, free_port, require_prometheus

ALERTMANAGER = "prometheus-alertmanager"  # Debian's name for the binary (upstream: alertmanager)


def alertmanager_binary() -> str | None:
    """The Alertmanager executable on PATH (Debian's name first, then upstream's), if any."""
    return shutil.which(ALERTMANAGER) or shutil.which("alertmanager")


def require_alertmanager() -> str:
    """The binary, or skip (laptop) — but in CI (``CI=true``) a missing binary fails loudly."""
    binary = alertmanager_binary()
    if binary is not None:
        return binary
    if os.environ.get("CI") == "true":
        pytest.fail(
            "CI=true but the prometheus-alertmanager binary is not installed: "
            ".ci/run must apt-get install prometheus-alertmanager"
        )
    pytest.skip("alertmanager not installed (apt-get install prometheus-alertmanager); integration test skipped")


async def _await_ready(process: asyncio.subprocess.Process, url: str, log: Path, what: str) -> None:
    # Readiness of an external process: bounded polling of its /-/ready is the only signal it offers.
    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while loop.time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}:\n{_read(log)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/-/ready") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {READY_TIMEOUT:g}s:\n{_read(log)}")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class RealAlertmanager:
    """``prometheus-alertmanager`` on a free loopback port, posting every group to ``webhook_url`` with ``token``."""

    def __init__(self, webhook_url: str, token: str, *, binary: str | None = None) -> None:
        self.webhook_url = webhook_url
        self.token = token
        self.binary = binary or require_alertmanager()
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return _read(Path(self._tmp.name) / "alertmanager.log") if self._tmp else ""

    async def __aenter__(self) -> RealAlertmanager:
        self._tmp = tempfile.TemporaryDirectory(prefix="am-test-")
        root = Path(self._tmp.name)
        # JSON is YAML: no quoting to get wrong. Group by the labels the bot reads, so one service's alerts
        # are one notification; a second of group_wait/group_interval shows a firing and its resolve quickly.
        config = {
            "route": {
                "receiver": "release-bot",
                "group_by": ["alertname", "service", "env"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "release-bot",
                    "webhook_configs": [
                        {
                            "url": self.webhook_url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials": self.token}},
                        }
                    ],
                }
            ],
        }
        (root / "alertmanager.yml").write_text(json.dumps(config))
        self.port = free_port()
        log_path = root / "alertmanager.log"
        with log_path.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                f"--config.file={root / 'alertmanager.yml'}",
                f"--storage.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip port: one instance, nothing else bound
                "--log.level=warn",
                stdout=log,
                stderr=log,
            )
        try:
            await _await_ready(self._process, self.url, log_path, "alertmanager")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class AlertingPrometheus(RealPrometheus):
    """Prometheus scraping ``targets`` and evaluating ``rules`` (a rule file's YAML/JSON text) every
    ``scrape_interval``, sending what fires to the Alertmanager at ``alertmanager`` (``host:port``)."""

    def __init__(self, targets: list[str], *, rules: str, alertmanager: str, scrape_interval: str = "1s") -> None:
        super().__init__(targets, scrape_interval=scrape_interval, binary=require_prometheus())
        self.rules = rules
        self.alertmanager = alertmanager

    async def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="prom-alerts-test-")
        root = Path(self._tmp.name)
        (root / "rules.yml").write_text(self.rules)
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": [str(root / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]},
            "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": self.targets}]}],
        }
        (root / "prometheus.yml").write_text(json.dumps(config))
        self.port = free_port()
        with (root / "prometheus.log").open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
                stdout=log,
                stderr=log,
            )
        await self._await_ready()

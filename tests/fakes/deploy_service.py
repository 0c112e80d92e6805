"""A fake deploy service for the ``http`` provider: a real aiohttp server on 127.0.0.1, port 0.

``POST /deploy`` accepts a job and answers ``{"id", "status", "status_url"}`` (status 202 by default);
``GET /jobs/{id}`` answers the job's scripted statuses one poll at a time, the last one repeating.
Requests carrying an ``Idempotency-Key`` already seen return the existing job, as real services do.
Every request is recorded. ``gate.required`` makes it demand credentials; ``ssl`` serves it over HTTPS.
"""

from __future__ import annotations

import itertools
import ssl as ssl_module
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.auth import Gate
from tests.fakes.server import LocalServer


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Job:
    """A deploy the service accepted; ``statuses`` is what successive polls answer."""

    id: str
    request: dict[str, Any]
    statuses: list[dict[str, Any]]
    polls: int = 0


@dataclass
class FakeDeployService(LocalServer):
    """Configure the next answers through the public attributes, then point the provider at ``url``."""

    # What the next accepted job's polls answer, in order; the last one repeats.
    statuses: list[dict[str, Any]] = field(default_factory=lambda: [{"status": "succeeded", "log": "ok"}])
    accept_status: int = 202
    accept_body: dict[str, Any] | None = None  # replaces the default answer to POST when set
    include_status_url: bool = True
    poll_errors: list[int] = field(default_factory=list)  # HTTP statuses answered by the next polls first
    requests: list[Recorded] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    gate: Gate = field(default_factory=Gate)  # credentials every request must carry (none by default)
    ssl: ssl_module.SSLContext | None = None  # set before start(): serve HTTPS with this context
    _by_key: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _port: int = 0

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        app = web.Application(middlewares=[self.gate.middleware()])
        app.router.add_post("/deploy", self._deploy)
        app.router.add_get("/jobs/{id}", self._job)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with ``ssl``)."""
        return f"{'https' if self.ssl is not None else 'http'}://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """The deploy endpoint."""
        return f"{self.base_url}/deploy"

    def posts(self) -> list[Recorded]:
        """The POSTs received, oldest first."""
        return [r for r in self.requests if r.method == "POST"]

    def polls(self) -> list[Recorded]:
        """The status polls received, oldest first."""
        return [r for r in self.requests if r.method == "GET"]

    async def _deploy(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Recorded("POST", request.path_qs, dict(request.headers), body))
        if self.accept_body is not None:
            return web.json_response(self.accept_body, status=self.accept_status)
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self._by_key:
            job = self.jobs[self._by_key[key]]
        else:
            job = Job(id=f"job-{next(self._ids)}", request=body, statuses=list(self.statuses))
            self.jobs[job.id] = job
            if key is not None:
                self._by_key[key] = job.id
        answer: dict[str, Any] = {"id": job.id, "status": "running"}
        if self.include_status_url:
            answer["status_url"] = f"/jobs/{job.id}"  # relative, as many services answer
        return web.json_response(answer, status=self.accept_status)

    async def _job(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded("GET", request.path_qs, dict(request.headers), None))
        if self.poll_errors:
            status = self.poll_errors.pop(0)
            return web.json_response({"error": "unavailable"}, status=status)
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        answer = job.statuses[min(job.polls, len(job.statuses) - 1)]
        job.polls += 1
        return web.json_response({"id": job.id, **answer})

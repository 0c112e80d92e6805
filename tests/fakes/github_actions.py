"""A fake of GitHub's Actions REST API: a real aiohttp server on 127.0.0.1, port 0, with GitHub's JSON shapes.

Endpoints: workflow dispatch (204, or 401/404/422 as GitHub answers them), list a workflow's runs
(``event`` and ``created=>=`` filters, newest first), get a run, list a run's jobs, cancel a run.
Each dispatch creates a run whose ``status`` advances one step per ``GET`` of the run
(``queued`` → ``in_progress`` → ``completed`` by default), ending with ``conclusion``.
``run_name`` mimics the workflow's ``run-name:`` (``${{ inputs.x }}`` is replaced); without it the
display title is the workflow's name, as on GitHub.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer

_INPUT = re.compile(r"\$\{\{\s*inputs\.(\w+)\s*\}\}")


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class RunScript:
    """How the next dispatched run behaves."""

    progress: list[str] = field(default_factory=lambda: ["queued", "in_progress", "completed"])
    conclusion: str = "success"
    jobs: list[dict[str, Any]] = field(
        default_factory=lambda: [{"name": "deploy", "steps": [("Checkout", "success"), ("Deploy", "success")]}]
    )
    hidden_for_lists: int = 0  # the run is missing from this many list calls (GitHub's indexing lag)


@dataclass
class FakeGitHubActions(LocalServer):
    """Configure through the public attributes; point the provider at ``api_url``."""

    token: str = "ghp_test"
    repo: str = "acme/notify"
    workflow: str = "deploy.yml"
    workflow_name: str = "Deploy"
    declared_inputs: tuple[str, ...] = ("service", "version", "environment", "weight", "action", "release_id")
    run_name: str | None = None
    next_run: RunScript = field(default_factory=RunScript)
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    run_faults: list[int] = field(default_factory=list)  # statuses the next GETs of a run answer first
    requests: list[Recorded] = field(default_factory=list)
    _scripts: dict[int, RunScript] = field(default_factory=dict)
    _polls: dict[int, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9001))
    _runner: web.AppRunner | None = None
    _port: int = 0

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        app = web.Application(middlewares=[self._record_and_auth])
        prefix = "/repos/{owner}/{name}/actions"
        app.router.add_post(prefix + "/workflows/{workflow}/dispatches", self._dispatch)
        app.router.add_get(prefix + "/workflows/{workflow}/runs", self._list_runs)
        app.router.add_get(prefix + "/runs/{id}", self._get_run)
        app.router.add_get(prefix + "/runs/{id}/jobs", self._jobs)
        app.router.add_post(prefix + "/runs/{id}/cancel", self._cancel)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """Base URL, as ``GITHUB_API_URL``."""
        return f"http://127.0.0.1:{self._port}"

    def add_run(
        self,
        *,
        display_title: str | None = None,
        status: str = "completed",
        conclusion: str = "success",
        hidden_for_lists: int = 0,
    ) -> int:
        """Seed a run dispatched by someone else (an earlier or a concurrent deploy); returns its id."""
        run = self._new_run(display_title or self.workflow_name, "main")
        run.update(status=status, conclusion=conclusion if status == "completed" else None)
        script = RunScript(progress=[status], conclusion=conclusion, hidden_for_lists=hidden_for_lists)
        self._scripts[run["id"]] = script
        return int(run["id"])

    def calls(self, method: str, suffix: str) -> list[Recorded]:
        """Recorded requests with this method whose path ends with ``suffix``."""
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    @web.middleware
    async def _record_and_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, request.path, dict(request.query), dict(request.headers), body))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "Bad credentials")
        if request.match_info.get("owner", "") + "/" + request.match_info.get("name", "") != self.repo:
            return _error(404, "Not Found")
        workflow = request.match_info.get("workflow")
        if workflow is not None and workflow != self.workflow:
            return _error(404, "Not Found")
        response: web.StreamResponse = await handler(request)
        return response

    async def _dispatch(self, request: web.Request) -> web.Response:
        body = await request.json()
        ref, inputs = body.get("ref"), body.get("inputs") or {}
        if not isinstance(ref, str) or not ref:
            return _error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        unexpected = sorted(set(inputs) - set(self.declared_inputs))
        if unexpected:
            return _error(422, "Unexpected inputs provided: " + str(unexpected).replace("'", '"'))
        for key, value in inputs.items():
            if not isinstance(value, str):
                return _error(422, f"For 'properties/{key}', {value!r} is not a string.")
        title = self.workflow_name
        if self.run_name is not None:
            title = _INPUT.sub(lambda m: str(inputs.get(m.group(1), "")), self.run_name)
        run = self._new_run(title, ref)
        self._scripts[run["id"]] = self.next_run
        self.next_run = RunScript()
        return web.Response(status=204)

    async def _list_runs(self, request: web.Request) -> web.Response:
        event = request.query.get("event")
        created = request.query.get("created", "")
        since = datetime.fromisoformat(created.removeprefix(">=").replace("Z", "+00:00")) if created else None
        listed = []
        for run in sorted(self.runs.values(), key=lambda r: r["id"], reverse=True):
            script = self._scripts[run["id"]]
            if script.hidden_for_lists > 0:
                script.hidden_for_lists -= 1
                continue
            if event is not None and run["event"] != event:
                continue
            if since is not None and datetime.fromisoformat(run["created_at"].replace("Z", "+00:00")) < since:
                continue
            listed.append(run)
        per_page = int(request.query.get("per_page", "30"))
        return web.json_response({"total_count": len(listed), "workflow_runs": listed[:per_page]})

    async def _get_run(self, request: web.Request) -> web.Response:
        run = self.runs.get(int(request.match_info["id"]))
        if run is None:
            return _error(404, "Not Found")
        if self.run_faults:
            return _error(self.run_faults.pop(0), "Server Error")
        if run["status"] != "completed":
            script = self._scripts[run["id"]]
            polls = self._polls.get(run["id"], 0)
            self._polls[run["id"]] = polls + 1
            run["status"] = script.progress[min(polls, len(script.progress) - 1)]
            if run["status"] == "completed":
                run["conclusion"] = script.conclusion
        return web.json_response(run)

    async def _jobs(self, request: web.Request) -> web.Response:
        run = self.runs.get(int(request.match_info["id"]))
        if run is None:
            return _error(404, "Not Found")
        jobs = []
        for n, job in enumerate(self._scripts[run["id"]].jobs):
            steps = [
                {"name": name, "status": "completed", "conclusion": conclusion, "number": i + 1}
                for i, (name, conclusion) in enumerate(job["steps"])
            ]
            failed = any(s["conclusion"] == "failure" for s in steps)
            jobs.append(
                {
                    "id": run["id"] * 10 + n,
                    "run_id": run["id"],
                    "name": job["name"],
                    "status": run["status"],
                    "conclusion": ("failure" if failed else "success") if run["status"] == "completed" else None,
                    "html_url": f"{run['html_url']}/job/{run['id'] * 10 + n}",
                    "steps": steps,
                }
            )
        return web.json_response({"total_count": len(jobs), "jobs": jobs})

    async def _cancel(self, request: web.Request) -> web.Response:
        run = self.runs.get(int(request.match_info["id"]))
        if run is None:
            return _error(404, "Not Found")
        if run["status"] == "completed":
            return _error(409, "Cannot cancel a workflow run that is completed.")
        run.update(status="completed", conclusion="cancelled")
        return web.json_response({}, status=202)

    def _new_run(self, title: str, ref: str) -> dict[str, Any]:
        run_id = next(self._ids)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        run = {
            "id": run_id,
            "name": self.workflow_name,
            "display_title": title,
            "run_number": len(self.runs) + 1,
            "event": "workflow_dispatch",
            "status": "queued",
            "conclusion": None,
            "head_branch": ref,
            "path": f".github/workflows/{self.workflow}",
            "html_url": f"https://github.com/{self.repo}/actions/runs/{run_id}",
            "created_at": stamp,
            "updated_at": stamp,
        }
        self.runs[run_id] = run
        return run


def _error(status: int, message: str) -> web.Response:
    body = {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}
    return web.json_response(body, status=status)

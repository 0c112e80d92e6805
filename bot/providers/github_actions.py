"""The ``github_actions`` deploy provider: dispatch a workflow, find its run, follow it to the end.

GitHub's dispatch endpoint answers ``204 No Content`` without the id of the run it starts, so the run
is found afterwards:

1. Before dispatching, list the workflow's ``workflow_dispatch`` runs created since a little before now
   (``created=>=<now - clock_skew>``) and remember their ids: none of them can be ours.
2. ``POST /repos/{repo}/actions/workflows/{workflow}/dispatches`` with ``{"ref", "inputs"}``; inputs are
   strings: ``service``, ``version``, ``environment``, ``weight``, ``action``, ``release_id`` (and
   ``colour`` when the release has one — a blue/green workflow must declare it). GitHub rejects inputs the
   workflow does not declare (422), so the workflow declares all of them.
3. List the runs again (every ``poll_every``) until a new one appears. A run whose ``display_title``
   mentions ``release <id>`` is ours; a new run mentioning another release is not. Otherwise the newest
   new run is taken — two dispatches of one workflow at the same moment could then be confused, which
   ``run-name: Deploy ${{ inputs.service }} ${{ inputs.version }} (release ${{ inputs.release_id }})``
   in the workflow rules out.
4. ``GET /repos/{repo}/actions/runs/{id}`` until ``status == "completed"``. ``conclusion == "success"``
   is success; anything else fails with ``workflow run <html_url> concluded <conclusion>``. The output
   tail lists the run's jobs and failed steps (logs themselves are zip archives and are not fetched).

The whole action is bounded by the configured ``timeout``; a run still going then is cancelled
(best effort) so a deploy never continues unobserved. The step is recorded as starting before the
dispatch, and its run's id once found (the run record, bot/engine/fences.py): a restarted bot asks that run
how it ended, or follows it while it still runs, up to the timeout counted from the step's start. A step
cut off before its run was found cannot be asked: its outcome is unproven. Requests go through the shared GitHub client
(``bot.github_api``) without its own retries: rate limits, 5xx and network errors while polling are
retried at the next poll, and errors on dispatch fail the step at once (a retried dispatch could start
a second deploy).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from bot.config import GithubActionsProvider
from bot.core.durations import format_duration
from bot.github_api import GitHubClient, GitHubError, GitHubResponse
from bot.ports import RunRecord
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven
from bot.providers.command import tail_text

__all__ = ["GithubActionsDeployProvider"]

Action = Literal["deploy", "shift", "rollback"]
Sleep = Callable[[float], Awaitable[None]]

_RELEASE_MENTION = re.compile(r"release[ #:-]*(\d+)\b", re.IGNORECASE)
_NOT_FOUND = "the bot restarted before it found the workflow run it dispatched: check the workflow's runs on GitHub"


class _Outcome(Exception):
    """Internal: the step is decided."""

    def __init__(self, result: StepResult) -> None:
        super().__init__(result.error)
        self.result = result


class _Transient(Exception):
    """Internal: a request failed in a way the next poll may not."""


class GithubActionsDeployProvider:
    """Deploys by dispatching a GitHub Actions workflow; implements the DeployProvider protocol."""

    def __init__(
        self,
        config: GithubActionsProvider,
        *,
        client: GitHubClient,
        poll_every: float = 10.0,
        clock_skew: timedelta = timedelta(minutes=2),
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not client.has_token:
            raise ValueError("the github_actions provider needs GITHUB_TOKEN")
        self.config = config
        self.client = client
        self.poll_every = poll_every
        self.clock_skew = clock_skew
        self._sleep = sleep
        self._clock = clock
        self._now = now

    @property
    def api_url(self) -> str:
        return self.client.api_url

    def __repr__(self) -> str:
        return f"GithubActionsDeployProvider(repo={self.config.repo!r}, workflow={self.config.workflow!r})"

    async def deploy(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Dispatch the workflow with ``action=deploy`` and follow its run."""
        return await self._act("deploy", ctx, run)

    async def shift(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Dispatch the workflow with ``action=shift`` (``weight`` / ``colour``) and follow its run."""
        return await self._act("shift", ctx, run)

    async def rollback(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Dispatch the workflow with ``action=rollback`` for ``ctx.version`` and follow its run."""
        return await self._act("rollback", ctx, run)

    async def _act(self, action: Action, ctx: DeployContext, record: RunRecord) -> StepResult:
        deadline = self._clock() + self.config.timeout.total_seconds()
        try:
            return await self._run(action, ctx, deadline, record)
        except _Outcome as outcome:
            return outcome.result

    async def _run(self, action: Action, ctx: DeployContext, deadline: float, record: RunRecord) -> StepResult:
        since = (self._now() - self.clock_skew).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            known = {run["id"] for run in await self._list_runs(since)}
        except _Transient as exc:
            raise _Outcome(_fail("", f"GitHub API unavailable: {exc}")) from None
        await record.starting(RunIdentity())
        await self._dispatch(action, ctx)
        run = await self._find_run(since, known, ctx.release_id, deadline)
        await record.identified(str(run["id"]))
        return await self._outcome(await self._follow(run, deadline))

    async def _outcome(self, run: dict[str, Any]) -> StepResult:
        """A completed run as the step's result: its conclusion decides, its jobs make the tail."""
        tail = await self._summary(run)
        conclusion = run.get("conclusion")
        if conclusion == "success":
            return StepResult(ok=True, output_tail=tail)
        return _fail(tail, f"workflow run {run.get('html_url')} concluded {conclusion}")

    # --- steps a previous process of the bot left --------------------------------------------------
    async def inspect(self, left: LeftRun) -> StepResult | Unproven | None:
        """Ask the left step's workflow run once: its outcome, or None while it runs (or cannot be asked now)."""
        if left.remote_id is None:
            return Unproven(_NOT_FOUND)
        url = f"{self._repo_url()}/actions/runs/{left.remote_id}"
        try:
            resp = await self._request("GET", url)
        except _Transient:
            return None  # asked again while it is followed
        except GitHubError as exc:
            return _fail("", f"GitHub answered HTTP {exc.status} for {url}: {exc.message}")
        if resp.status != 200 or not isinstance(resp.payload, dict):
            return _fail("", f"GitHub answered HTTP {resp.status} for {url}: {_message(resp.payload)}")
        if resp.payload.get("status") != "completed":
            return None
        return await self._outcome(resp.payload)

    async def follow(self, left: LeftRun) -> StepResult | Unproven:
        """Follow the left step's workflow run to its end; at its timeout (from the step's start) cancel it."""
        if left.remote_id is None:
            return Unproven(_NOT_FOUND)
        deadline = self._clock() + left.remaining
        try:
            return await self._outcome(await self._follow({"id": left.remote_id}, deadline))
        except _Outcome as outcome:
            return outcome.result

    async def _dispatch(self, action: Action, ctx: DeployContext) -> None:
        inputs = {
            "service": ctx.service,
            "version": ctx.version,
            "environment": ctx.environment,
            "weight": str(ctx.weight),
            "action": action,
            "release_id": str(ctx.release_id),
        }
        if ctx.colour is not None:
            inputs["colour"] = ctx.colour
        url = f"{self._workflow_url()}/dispatches"
        doing = "workflow dispatch failed"
        try:
            resp = await self._request("POST", url, {"ref": self.config.ref, "inputs": inputs})
        except _Transient as exc:
            raise _Outcome(_fail("", f"{doing}: {exc}")) from None
        except GitHubError as exc:
            raise _Outcome(_fail("", _http_error(doing, exc.status, exc.message))) from None
        if resp.status != 204:
            raise _Outcome(_fail("", _http_error(doing, resp.status, _message(resp.payload))))

    async def _find_run(self, since: str, known: set[Any], release_id: int, deadline: float) -> dict[str, Any]:
        problem = ""
        while True:
            try:
                run = _pick(await self._list_runs(since), known, release_id)
            except _Transient as exc:
                run, problem = None, str(exc)
            if run is not None:
                return run
            await self._wait(deadline, "waiting for the workflow run to start", problem)

    async def _follow(self, run: dict[str, Any], deadline: float) -> dict[str, Any]:
        url = f"{self._repo_url()}/actions/runs/{run['id']}"
        problem = ""
        while run.get("status") != "completed":
            try:
                await self._wait(deadline, f"workflow run {run.get('html_url')} still {run.get('status')}", problem)
            except _Outcome:
                await self._cancel(run)
                raise
            try:
                resp = await self._request("GET", url)
            except _Transient as exc:
                problem = str(exc)
                continue
            except GitHubError as exc:
                raise _Outcome(_fail("", f"GitHub answered HTTP {exc.status} for {url}: {exc.message}")) from None
            if resp.status != 200 or not isinstance(resp.payload, dict):
                raise _Outcome(_fail("", f"GitHub answered HTTP {resp.status} for {url}: {_message(resp.payload)}"))
            run, problem = resp.payload, ""
        return run

    async def _wait(self, deadline: float, doing: str, problem: str) -> None:
        """Sleep one poll interval, or decide the step as timed out when the deadline has passed."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            detail = f"{doing}; last error: {problem}" if problem else doing
            error = f"timed out after {format_duration(self.config.timeout)}"
            raise _Outcome(_fail(detail, error))
        await self._sleep(min(self.poll_every, remaining))

    async def _cancel(self, run: dict[str, Any]) -> None:
        try:
            await self._request("POST", f"{self._repo_url()}/actions/runs/{run['id']}/cancel")
        except (_Transient, GitHubError):
            return  # best effort: the timeout is reported either way

    async def _summary(self, run: dict[str, Any]) -> str:
        """One line for the run, then one per job, and the failed steps of failed jobs."""
        lines = [f"workflow run {run.get('html_url')}: {run.get('status')}, {run.get('conclusion')}"]
        try:
            resp = await self._request("GET", f"{self._repo_url()}/actions/runs/{run['id']}/jobs?per_page=100")
        except (_Transient, GitHubError):
            return "\n".join(lines)
        payload = resp.payload
        jobs = payload.get("jobs") if resp.status == 200 and isinstance(payload, dict) else None
        for job in jobs if isinstance(jobs, list) else []:
            lines.append(f"job {job.get('name')}: {job.get('conclusion')}")
            if job.get("conclusion") not in ("success", "skipped"):
                for step in job.get("steps") or []:
                    if step.get("conclusion") not in ("success", "skipped", None):
                        lines.append(f"  step {step.get('name')}: {step.get('conclusion')}")
        return tail_text("\n".join(lines))

    async def _list_runs(self, since: str) -> list[dict[str, Any]]:
        url = f"{self._workflow_url()}/runs?event=workflow_dispatch&created=%3E%3D{since}&per_page=100"
        doing = "listing workflow runs failed"
        try:
            resp = await self._request("GET", url)
        except GitHubError as exc:
            raise _Outcome(_fail("", _http_error(doing, exc.status, exc.message))) from None
        if resp.status != 200 or not isinstance(resp.payload, dict):
            raise _Outcome(_fail("", _http_error(doing, resp.status, _message(resp.payload))))
        runs = resp.payload.get("workflow_runs")
        return [run for run in runs if isinstance(run, dict)] if isinstance(runs, list) else []

    async def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> GitHubResponse:
        """One call without the client's retries (see the module doc).

        Raises _Transient for what the next poll may fix, GitHubError for an answer that will not change.
        """
        try:
            return await self.client.request(method, url, body=body, retries=0)
        except GitHubError as exc:
            if not exc.transient:
                raise
            problem = exc.reason if exc.status is None else f"HTTP {exc.status}: {exc.message}"
            raise _Transient(problem) from None

    def _repo_url(self) -> str:
        return f"{self.api_url}/repos/{self.config.repo}"

    def _workflow_url(self) -> str:
        return f"{self._repo_url()}/actions/workflows/{quote(self.config.workflow, safe='')}"


def _pick(runs: list[dict[str, Any]], known: set[Any], release_id: int) -> dict[str, Any] | None:
    """Our run among ``runs``: one naming our release, else the newest new one naming no release."""
    fresh = [run for run in runs if run.get("id") not in known]
    ours: list[dict[str, Any]] = []
    anonymous: list[dict[str, Any]] = []
    for run in fresh:
        title = f"{run.get('display_title') or ''} {run.get('name') or ''}"
        mentioned = {int(m) for m in _RELEASE_MENTION.findall(title)}
        if release_id in mentioned:
            ours.append(run)
        elif not mentioned:
            anonymous.append(run)
    candidates = ours or anonymous
    if not candidates:
        return None
    return max(candidates, key=lambda run: (str(run.get("created_at") or ""), int(run.get("id") or 0)))


def _http_error(doing: str, status: int | None, message: str) -> str:
    error = f"{doing}: HTTP {status}: {message}"
    if status == 401:
        return error + " (check GITHUB_TOKEN)"
    if status == 404:
        return error + " (check the repo and workflow names, and the token's access)"
    return error


def _message(payload: Any) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return " ".join(str(payload["message"]).split())  # GitHub's 422 messages span lines
    return "no message"


def _fail(tail: str, error: str) -> StepResult:
    return StepResult(ok=False, output_tail=tail, error=error)

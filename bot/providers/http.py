"""The ``http`` deploy provider: POST the action as JSON to a deploy service, then poll its status URL.

Wire contract (what a deploy service implements):

- ``POST <url>`` with JSON ``{"action": "deploy"|"shift"|"rollback", "service", "version", "environment",
  "weight", "colour", "previous_version", "release_id"}`` and header
  ``Idempotency-Key: release-<id>-<action>-<weight>``, so a retried request cannot deploy twice.
  Answers 200, 201 or 202; anything else fails the step with the status and the start of the body (not
  for 401 and 403: an answer about credentials is the one most likely to quote them).
- The answer's JSON may carry ``status`` and ``log`` (a service that deploys synchronously answers
  ``{"status": "succeeded"}`` and is done), ``status_url`` (absolute, or relative to ``url``) and ``id``.
  Without ``status_url`` the configured ``status_url`` is used, with ``{id}`` (the answer's ``id``),
  ``{release_id}``, ``{service}``, ``{environment}``, ``{version}``, ``{weight}`` and ``{action}``
  substituted. With neither, an accepted request with no status is taken as done.
- ``GET <status url>`` answers ``{"status": "running"|"succeeded"|"failed", "log": "...", "error": "..."}``.
  It is polled every ``poll_every`` until a terminal status or until ``timeout`` has elapsed since the
  POST. Connection errors, timeouts, 5xx, 408 and 429 while polling are retried (the deploy is still
  running somewhere); any other 4xx fails the step.

The log's last 40 lines / 4 KiB become the step's output tail.

The step is recorded as starting before the POST, and the status URL it is followed at once known (the run
record, bot/engine/fences.py): a restarted bot asks that URL how the deploy ended, or follows it while it
still runs, up to the timeout counted from the step's start. A deploy answered without a status URL (done
synchronously, or cut off by the restart before the answer) cannot be asked again: its outcome is unproven.

With ``auth`` (credentials named by environment variable, a CA bundle; see ``bot.http_auth``) every request
carries its headers and TLS trust. A ``status_url`` the service answers on another origin than ``url`` is
polled without the headers (the configured ``status_url`` is trusted like ``url``), as a redirect to another
host would drop them: credentials for the deploy service go to the deploy service only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import aiohttp
from yarl import URL

from bot.config import HttpProvider
from bot.core.durations import format_duration
from bot.http_auth import Credentials
from bot.http_session import HttpSession
from bot.ports import RunRecord
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven
from bot.providers.command import PLACEHOLDERS, check_placeholders, placeholder_values, substitute, tail_text

__all__ = ["HttpDeployProvider"]

Action = Literal["deploy", "shift", "rollback"]
Sleep = Callable[[float], Awaitable[None]]

_ACCEPTED = (200, 201, 202)
_SUCCEEDED = frozenset({"succeeded", "success", "ok", "done"})
_FAILED = frozenset({"failed", "failure", "error", "cancelled", "canceled"})
_RUNNING = frozenset({"running", "pending", "queued", "in_progress", "accepted"})
_RETRYABLE = frozenset({408, 429})
_REFUSED = frozenset({401, 403})
_STATUS_URL_PLACEHOLDERS = (*PLACEHOLDERS, "id", "action")
_BODY_HEAD = 300


class _Outcome(Exception):
    """Internal: the step is decided (raised from inside the polling loop)."""

    def __init__(self, result: StepResult) -> None:
        super().__init__(result.error)
        self.result = result


class HttpDeployProvider:
    """Deploys through a deploy service's HTTP API; implements the DeployProvider protocol."""

    def __init__(
        self,
        config: HttpProvider,
        *,
        session: HttpSession,
        credentials: Credentials | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        request_timeout: float = 30.0,
    ) -> None:
        """``credentials`` resolves ``config.auth`` (CredentialsError when a variable is missing); default: the
        process environment, a relative ``ca_file`` read from the working directory."""
        if config.status_url is not None:
            check_placeholders([config.status_url], _STATUS_URL_PLACEHOLDERS, "status_url")
        self.config = config
        self._auth = (credentials or Credentials()).resolve(config.auth)
        self.request_timeout = request_timeout
        self._http = session
        self._sleep = sleep
        self._clock = clock

    def __repr__(self) -> str:
        return f"HttpDeployProvider(url={self.config.url!r})"

    async def deploy(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Ask the service to deploy ``ctx.version`` at ``ctx.weight``."""
        return await self._act("deploy", ctx, run)

    async def shift(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Ask the service to shift traffic to ``ctx.weight`` / switch to ``ctx.colour``."""
        return await self._act("shift", ctx, run)

    async def rollback(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Ask the service to roll back to ``ctx.version``."""
        return await self._act("rollback", ctx, run)

    async def _act(self, action: Action, ctx: DeployContext, run: RunRecord) -> StepResult:
        deadline = self._clock() + self.config.timeout.total_seconds()
        await run.starting(RunIdentity())
        return await self._run(self._http.get(), action, ctx, deadline, run)

    async def _run(
        self, session: aiohttp.ClientSession, action: Action, ctx: DeployContext, deadline: float, run: RunRecord
    ) -> StepResult:
        try:
            payload = await self._post(session, action, ctx)
            log = _log(payload, "")
            decided = _decide(payload, log)
            if decided is not None:
                return decided
            status_url = self._status_url(payload, action, ctx)
            if status_url is None:
                if _status(payload) in _RUNNING:
                    raise _Outcome(_fail(log, "deploy service said the deploy is running but gave no status_url"))
                return StepResult(ok=True, output_tail=log)
            url, trusted = status_url
            await run.identified(url)
            return await self._poll(session, url, trusted, deadline, log)
        except _Outcome as outcome:
            return outcome.result

    # --- steps a previous process of the bot left --------------------------------------------------
    async def inspect(self, left: LeftRun) -> StepResult | Unproven | None:
        """Ask the left step's status URL once: its outcome, or None while it runs (or cannot be asked now)."""
        if left.remote_id is None:
            return Unproven("the deploy service's answer was not recorded, so it cannot be asked how the deploy went")
        try:
            decided, _, _ = await self._look(self._http.get(), left.remote_id, self._trusted(left.remote_id), "")
        except _Outcome as outcome:
            return outcome.result
        return decided

    async def follow(self, left: LeftRun) -> StepResult | Unproven:
        """Poll the left step's status URL until it ends or its timeout (from its start) has passed."""
        if left.remote_id is None:
            return Unproven("the deploy service's answer was not recorded, so it cannot be asked how the deploy went")
        deadline = self._clock() + left.remaining
        try:
            return await self._poll(self._http.get(), left.remote_id, self._trusted(left.remote_id), deadline, "")
        except _Outcome as outcome:
            return outcome.result

    def _trusted(self, url: str) -> bool:
        """Whether the credentials go to a recorded status URL: it is on the origin of ``url`` or of the
        configured ``status_url`` (as when it was first polled)."""
        origins = {URL(self.config.url).origin()}
        if self.config.status_url is not None:
            origins.add(URL(self.config.status_url).origin())
        return URL(url).origin() in origins

    async def _post(self, session: aiohttp.ClientSession, action: Action, ctx: DeployContext) -> dict[str, Any]:
        body = {
            "action": action,
            "service": ctx.service,
            "version": ctx.version,
            "environment": ctx.environment,
            "weight": ctx.weight,
            "colour": ctx.colour,
            "previous_version": ctx.previous_version,
            "release_id": ctx.release_id,
        }
        headers = {**self._auth.headers, "Idempotency-Key": f"release-{ctx.release_id}-{action}-{ctx.weight}"}
        try:
            async with session.post(
                self.config.url,
                json=body,
                headers=headers,
                ssl=self._auth.ssl,
                allow_redirects=self._auth.follow_redirects,
                timeout=self._timeout(),
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise _Outcome(_fail("", f"deploy service unreachable: {reason}")) from exc
        if status in _REFUSED:
            # An answer about credentials is the one most likely to quote them: its body is not kept.
            raise _Outcome(
                _fail("", f"deploy service answered HTTP {status}: credentials refused or missing (see auth)")
            )
        if status not in _ACCEPTED:
            raise _Outcome(_fail(_head(text), f"deploy service answered HTTP {status}"))
        return _json_object(text)

    def _status_url(self, payload: dict[str, Any], action: Action, ctx: DeployContext) -> tuple[str, bool] | None:
        """The URL to poll, and whether the credentials go there (None: nothing to poll)."""
        given = payload.get("status_url")
        if isinstance(given, str) and given:
            base = URL(self.config.url)
            url = base.join(URL(given))
            return str(url), url.origin() == base.origin()
        if self.config.status_url is None:
            return None
        job_id = payload.get("id")
        if "{id}" in self.config.status_url and (job_id is None or job_id == ""):
            raise _Outcome(_fail(_log(payload, ""), "deploy service answered without an id for status_url"))
        values = {**placeholder_values(ctx, action), "id": "" if job_id is None else str(job_id)}
        return substitute(self.config.status_url, values), True

    async def _poll(
        self, session: aiohttp.ClientSession, url: str, trusted: bool, deadline: float, log: str
    ) -> StepResult:
        problem = ""
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                error = f"timed out after {format_duration(self.config.timeout)}"
                raise _Outcome(_fail(log, f"{error} (last status poll: {problem})" if problem else error))
            await self._sleep(min(self.config.poll_every.total_seconds(), remaining))
            decided, log, problem = await self._look(session, url, trusted, log)
            if decided is not None:
                return decided

    async def _look(
        self, session: aiohttp.ClientSession, url: str, trusted: bool, log: str
    ) -> tuple[StepResult | None, str, str]:
        """One GET of the status URL: (the outcome if decided, the log so far, the problem to retry past).

        Raises _Outcome for an answer polling again cannot change (4xx, an unknown status).
        """
        headers = self._auth.headers if trusted else {}
        try:
            async with session.get(
                url,
                headers=headers,
                ssl=self._auth.ssl,
                allow_redirects=self._auth.follow_redirects,
                timeout=self._timeout(),
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, log, str(exc) or type(exc).__name__
        if status >= 500 or status in _RETRYABLE:
            return None, log, f"HTTP {status}"
        if status != 200:
            raise _Outcome(_fail(log, f"status URL {url} answered HTTP {status}"))
        payload = _json_object(text)
        log = _log(payload, log)
        decided = _decide(payload, log)
        if decided is None and _status(payload) not in _RUNNING:
            raise _Outcome(_fail(log, f"deploy service reported an unknown status {payload.get('status')!r}"))
        return decided, log, ""

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.request_timeout)


def _status(payload: dict[str, Any]) -> str:
    status = payload.get("status")
    return status.strip().lower() if isinstance(status, str) else ""


def _decide(payload: dict[str, Any], log: str) -> StepResult | None:
    """A result when ``payload`` carries a terminal status, else None."""
    status = _status(payload)
    if status in _SUCCEEDED:
        return StepResult(ok=True, output_tail=log)
    if status in _FAILED:
        detail = payload.get("error") or payload.get("message")
        error = f"deploy {status}: {detail}" if isinstance(detail, str) and detail else f"deploy {status}"
        return _fail(log, error.splitlines()[0])
    return None


def _log(payload: dict[str, Any], previous: str) -> str:
    log = payload.get("log")
    return tail_text(log) if isinstance(log, str) else previous


def _fail(tail: str, error: str) -> StepResult:
    return StepResult(ok=False, output_tail=tail, error=error)


def _json_object(text: str) -> dict[str, Any]:
    """The body as a JSON object; an empty or non-object body reads as ``{}``."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _head(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _BODY_HEAD else text[:_BODY_HEAD] + "…"

"""GitHub Deployments for releases: the ``github`` target of the event worker (docs/events.md).

A service whose ``repo`` is ``github: owner/name`` gets a deployment per release, created when the release is
queued (or, if that event was missed, at its next state), with ``ref`` the candidate's commit, ``environment``
the bot's environment name, ``auto_merge: false``, ``required_contexts: []`` and a payload naming the release.
Each state change then posts a status: queued → ``queued``; deploying, verifying → ``in_progress``; succeeded →
``success``; failed → ``failure``; interrupted, cancelled → ``error``. ``log_url`` is the release's Slack thread.
A rollback is a release like any other, so it gets a deployment of the version it returns to.

``inactive``: success statuses are sent with ``auto_inactive: false`` and the bot marks the deployment a success
replaced (same service and environment) ``inactive`` itself. GitHub's automatic marking goes by repository and
environment only, so two services of one repository would make each other's deployments inactive.

Everything goes through the durable queue (bot/events/deliver.py): GitHub being down or rate-limited delays
statuses, never a release; a rate-limited request is queued again after the wait GitHub's answer named
(``GitHubError.retry_after``), or its advised minute when it named none. Creating a deployment is not idempotent,
so a create whose answer was lost (in doubt) is looked for first — the repository's deployments for that commit
and environment, every ``Link`` page — and re-created only when none carries this release's payload. Likewise a
status in doubt is not posted again when the deployment's newest status already is that one (same state and
description): a restart mid-request repeats nothing.

An answer that trying again cannot change — 400, 401, 403 that is not a rate limit (the token lacks the
deployments permission on that repository), 404, 409, 410, 422 — gives the event up at once, logged with the
repository and GitHub's reason: the ``github`` lane is shared by every service, so retrying it for a day would
hold back every other repository's statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from yarl import URL

from bot.config import Config
from bot.events.deliver import Failure
from bot.github_api import GitHubClient, GitHubError
from bot.store import AsyncStore
from bot.store.events import (
    GITHUB,
    Delivery,
    github_deployment,
    github_replaced,
    save_github_deployment,
    set_github_active,
)

__all__ = ["STATUS_OF", "GitHubDeployments"]

log = logging.getLogger("release_bot.events")

STATUS_OF = {
    "queued": "queued",
    "deploying": "in_progress",
    "verifying": "in_progress",
    "succeeded": "success",
    "failed": "failure",
    "interrupted": "error",
    "cancelled": "error",
}
# A release cancelled while awaiting approval never deployed: it gets no deployment (and no status).
_CREATES = frozenset({"queued", "deploying", "verifying", "succeeded", "failed", "interrupted"})
# Answers that will not change by trying again: a bad request, repository or ref (400, 404, 409, 422), a token
# that is refused (401) or lacks the deployments permission on this repository (403, "Resource not accessible by
# integration"), a repository gone (410). Retrying them would hold the one `github` lane, shared by every service,
# for the 24 hours a delivery is retried. A rate-limited 403 never gets here as a "status" answer: the client makes
# it a "gave_up" (bot/github_api.py), which is retried after GitHub's wait.
_FINAL = frozenset({400, 401, 403, 404, 409, 410, 422})
_SECONDARY_LIMIT_WAIT = 60.0  # GitHub's advice when a rate limit names no time

Permalink = Callable[[str, str], Awaitable[str | None]]


def _final(exc: GitHubError) -> bool:
    """Whether GitHub refused the request for good: an answer in ``_FINAL``. Only a "status" error counts: the
    client (bot/github_api.py) makes a 403 or 429 with ``retry-after`` or ``x-ratelimit-remaining: 0`` a rate
    limit ("gave_up"), so a 403 here is a refusal (no such permission), never a limit to wait out."""
    return exc.kind == "status" and exc.status in _FINAL


def _failure(exc: GitHubError, repo: str, *, in_doubt: bool) -> Failure:
    """The queue's view of a failed request to ``repo`` (named in the reason, so the log says which repository's
    permission is missing): given up when trying again cannot help; otherwise retried after the wait GitHub named
    (``retry_after``), or its advised minute for a rate limit that named none."""
    reason = f"{repo}: {exc.reason}"
    if _final(exc):
        return Failure(reason, fatal=True, in_doubt=False)
    wait = exc.retry_after
    if wait is None and exc.kind == "gave_up" and exc.status in (403, 429):
        wait = _SECONDARY_LIMIT_WAIT
    return Failure(reason, retry_after=wait or 0.0, in_doubt=in_doubt)


def _in_doubt(exc: GitHubError) -> bool:
    """Whether the request may have had its effect: no answer, or a 5xx (a gateway may have lost GitHub's)."""
    return exc.kind == "unreachable" or (exc.status or 0) >= 500


class GitHubDeployments:
    """Turns ``release.*`` events into GitHub deployments and deployment statuses."""

    target = GITHUB

    def __init__(
        self, client: GitHubClient, db: AsyncStore, config: Config, *, permalink: Permalink, now: Callable[[], datetime]
    ) -> None:
        self.client = client
        self.db = db
        self.config = config
        self._permalink = permalink
        self._now = now

    def _repo(self, service: str) -> str | None:
        svc = self.config.services.get(service)
        return svc.repo.github if svc is not None and svc.repo is not None else None

    def _url(self, repo: str, *parts: str | int) -> str:
        return "/".join([self.client.api_url, "repos", repo, *(str(p) for p in parts)])

    async def send(self, delivery: Delivery) -> str | None:
        data = delivery.event.data
        state = str(data.get("state"))
        repo = self._repo(str(data.get("service")))
        status = STATUS_OF.get(state)
        if repo is None or status is None:
            return f"nothing to post to GitHub for {state}"
        release_id = int(data["release_id"])
        deployment = await self.db.run(github_deployment, self.db.sync, release_id)
        if deployment is None:
            if state not in _CREATES:
                return f"no deployment: the release was {state} before it was queued"
            deployment = await self._create(repo, delivery)
        doubt = delivery.in_doubt  # an earlier attempt may have posted some of these statuses already
        await self._status(repo, deployment, status, data, await self._log_url(release_id), in_doubt=doubt)
        if status == "success":
            await self.db.run(set_github_active, self.db.sync, release_id, True)
            for replaced_id, replaced_repo, replaced in await self.db.run(github_replaced, self.db.sync, release_id):
                await self._status(replaced_repo, replaced, "inactive", data, None, in_doubt=doubt)
                await self.db.run(set_github_active, self.db.sync, replaced_id, False)
        return None

    async def _create(self, repo: str, delivery: Delivery) -> int:
        """The release's deployment: found (after an attempt in doubt) or created, and recorded."""
        data = delivery.event.data
        release_id = int(data["release_id"])
        instance = delivery.event.id.rpartition("-")[0]
        ref = str(data.get("commit") or data["version"])
        env = str(data["env"])
        found = await self._find(repo, ref, env, release_id, instance) if delivery.in_doubt else None
        if found is None:
            body = {
                "ref": ref,
                "task": "deploy",
                "auto_merge": False,
                "required_contexts": [],
                "environment": env,
                "payload": {
                    "release_id": release_id,
                    "service": data["service"],
                    "version": data["version"],
                    "release_bot": instance,
                },
                "description": f"{data['kind']} {data['version']} by release-bot"[:140],
                "production_environment": self.config.environments[env].production
                if env in self.config.environments
                else False,
                "transient_environment": False,
            }
            try:
                # No retries in the client: a create retried blindly after a 5xx could make two deployments.
                answer = await self.client.request("POST", self._url(repo, "deployments"), body=body, retries=0)
            except GitHubError as exc:
                # Rate-limited (not created) is queued again after the wait GitHub named; a 5xx or no answer may
                # have created it: in doubt, so the next attempt looks for it first.
                raise _failure(exc, repo, in_doubt=_in_doubt(exc)) from None
            if answer.status != 201 or not isinstance(answer.payload, dict) or "id" not in answer.payload:
                message = answer.payload.get("message") if isinstance(answer.payload, dict) else None
                raise Failure(f"{repo}: GitHub did not create a deployment ({answer.status}: {message})", fatal=True)
            found = int(answer.payload["id"])
        await self.db.run(
            save_github_deployment,
            self.db.sync,
            release_id,
            repo=repo,
            service=str(data["service"]),
            env=env,
            deployment_id=found,
            now=self._now(),
        )
        return found

    async def _find(self, repo: str, ref: str, env: str, release_id: int, instance: str) -> int | None:
        """A deployment an earlier attempt in doubt created for this release, looked up on every page."""
        url = URL(self._url(repo, "deployments")).with_query(sha=ref, environment=env, per_page=100)
        try:
            async for page in self.client.pages(url):
                for item in page.payload if isinstance(page.payload, list) else []:
                    payload = item.get("payload") if isinstance(item, dict) else None
                    if (
                        isinstance(payload, dict)
                        and payload.get("release_id") == release_id
                        and payload.get("release_bot") == instance
                    ):
                        return int(item["id"])
        except GitHubError as exc:
            raise _failure(exc, repo, in_doubt=True) from None  # still in doubt: nothing was learnt
        return None

    async def _status(
        self, repo: str, deployment: int, state: str, data: dict[str, Any], log_url: str | None, *, in_doubt: bool
    ) -> None:
        body: dict[str, Any] = {
            "state": state,
            "description": f"{data.get('kind')} {data.get('version')}: {data.get('state')}"[:140],
            "auto_inactive": False,
        }
        if log_url:
            body["log_url"] = log_url
        url = self._url(repo, "deployments", deployment, "statuses")
        if in_doubt and await self._newest_is(repo, url, state, body["description"]):
            return  # the earlier attempt landed; its answer was lost
        try:
            await self.client.request("POST", url, body=body)
        except GitHubError as exc:
            raise _failure(exc, repo, in_doubt=_in_doubt(exc)) from None

    async def _newest_is(self, repo: str, url: str, state: str, description: str) -> bool:
        """Whether the deployment's newest status is this one. The lane posts in order, so only the newest can
        be a lost answer's; two events never make the same (state, description) in a row (the description names
        the release state, and a state is not entered twice running)."""
        try:
            answer = await self.client.request("GET", URL(url).with_query(per_page=1))
        except GitHubError as exc:
            raise _failure(exc, repo, in_doubt=True) from None  # still in doubt: nothing was learnt
        newest = answer.payload[0] if isinstance(answer.payload, list) and answer.payload else None
        return isinstance(newest, dict) and newest.get("state") == state and newest.get("description") == description

    async def _log_url(self, release_id: int) -> str | None:
        """The Slack thread of the release, when it has been posted (a placeholder has no permalink yet)."""
        release = await self.db.get_release(release_id)
        if release is None or release.channel is None or release.thread_ts is None:
            return None
        try:
            return await self._permalink(release.channel, release.thread_ts)
        except Exception as exc:  # a status without its link beats no status
            log.info("events: no permalink for release %s yet (%s)", release_id, exc)
            return None

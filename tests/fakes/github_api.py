"""A fake GitHub REST API: a real aiohttp server on 127.0.0.1, port 0, with GitHub's JSON shapes.

It serves one linear history per repository (oldest first) through:

- `GET /repos/{o}/{r}/compare/{base}...{head}` — `commits[]` oldest first, `total_commits`, `status`,
  `ahead_by`, …, paginated by `page`/`per_page` with a `Link: <…>; rel="next"` header;
- `GET /repos/{o}/{r}/commits?sha=&page=&per_page=` — head's history, newest first, paginated;
- `GET /repos/{o}/{r}/commits/{ref}` and `GET /repos/{o}/{r}/commits/{sha}/pulls`;
- `POST`/`GET /repos/{o}/{r}/deployments` (`sha`, `environment`, `task` filters, newest first, paginated) and
  `POST`/`GET /repos/{o}/{r}/deployments/{id}/statuses`, validated as GitHub does (404 unknown repository or
  deployment, 422 unknown ref or state).

Unknown repositories and refs answer 404 `{"message": "Not Found", …}` like GitHub. Tests queue
rate-limit answers with `rate_limit(...)` (served before the next real answer) and read `requests` (with
each JSON body). `refuse(repo, status)` answers every request about one repository as GitHub does when the token
may not touch it — 403 "Resource not accessible by integration" (a rate-limit header showing calls to spare, so
it is plainly no limit), 401 "Bad credentials", 410 — until `refusals` is cleared. While `down` is set every
request is answered 503; `lose_next_creates` makes the next creates of a deployment happen but answer 502, as
a gateway that lost GitHub's answer does. `hold(method, path_end)` lets the next matching request take effect
and then keeps its answer back (`arrived` is set) until `release()`, so a test can stop the bot while a request
that has already landed waits for its answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from aiohttp import web

DOCS = "https://docs.github.com/rest"


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class _RateLimit:
    status: int
    headers: dict[str, str]


def commit_item(
    repo: str,
    sha: str,
    message: str,
    *,
    name: str = "Ada Lovelace",
    email: str = "ada@example.com",
    login: str | None = "ada",
    date: datetime,
    parents: list[str],
    base_url: str = "https://api.github.com",
) -> dict[str, Any]:
    """One element of GitHub's `commits[]`, with the fields GitHub sends (trimmed of avatars)."""
    stamp = date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    person = {"name": name, "email": email, "date": stamp}
    user = (
        {
            "login": login,
            "id": abs(hash(login)) % 10**7,
            "type": "User",
            "html_url": f"https://github.com/{login}",
        }
        if login
        else None
    )
    return {
        "sha": sha,
        "node_id": "C_" + sha[:12],
        "commit": {
            "author": person,
            "committer": {"name": "GitHub", "email": "noreply@github.com", "date": stamp},
            "message": message,
            "tree": {"sha": hashlib.sha1(sha.encode(), usedforsecurity=False).hexdigest(), "url": ""},
            "url": f"{base_url}/repos/{repo}/git/commits/{sha}",
            "comment_count": 0,
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        },
        "url": f"{base_url}/repos/{repo}/commits/{sha}",
        "html_url": f"https://github.com/{repo}/commit/{sha}",
        "author": user,
        "committer": None,
        "parents": [{"sha": p, "url": f"{base_url}/repos/{repo}/commits/{p}"} for p in parents],
    }


def fake_sha(n: int) -> str:
    """A stable 40-hex sha for the n-th commit of a test history."""
    return hashlib.sha1(f"commit-{n}".encode(), usedforsecurity=False).hexdigest()


@dataclass
class _Repo:
    commits: list[dict[str, Any]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class FakeGitHub:
    """Start with `async with FakeGitHub() as gh:`; `gh.url` is the API base to give the client."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[RecordedRequest] = []
        self._rate_limits: list[_RateLimit] = []
        self.deployments: dict[str, list[dict[str, Any]]] = {}  # per repository, oldest first
        self.statuses: dict[int, list[dict[str, Any]]] = {}  # per deployment id, oldest first
        self.down = False  # answer 503 to everything
        self.refusals: dict[str, int] = {}  # repository → the status every request about it is refused with
        self.lose_next_creates = 0  # create the deployment, then answer 502
        self.arrived = asyncio.Event()  # a held request has taken effect and waits for release()
        self._hold: tuple[str, str] | None = None
        self._held: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- test set-up -------------------------------------------------------------------------------

    def add_history(
        self,
        repo: str,
        messages: list[str],
        *,
        start: datetime | None = None,
        authors: list[tuple[str, str]] = (),
    ) -> list[str]:
        """Append a linear history of commits with these messages; returns their shas, oldest first."""
        state = self.repos.setdefault(repo, _Repo())
        when = start or datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        shas = []
        for i, message in enumerate(messages):
            n = len(state.commits)
            sha = fake_sha(n + 1000 * len(self.repos))
            parents = [state.commits[-1]["sha"]] if state.commits else []
            name, email = authors[i % len(authors)] if authors else ("Ada Lovelace", "ada@example.com")
            login = email.split("@")[0]
            state.commits.append(
                commit_item(
                    repo,
                    sha,
                    message,
                    name=name,
                    email=email,
                    login=login,
                    date=when + timedelta(minutes=n),
                    parents=parents,
                    base_url=self.url or "https://api.github.com",
                )
            )
            shas.append(sha)
        return shas

    def tag(self, repo: str, name: str, sha: str) -> None:
        """Make `name` resolve to `sha` (a tag or branch)."""
        self.repos[repo].refs[name] = sha

    def add_pull(self, repo: str, sha: str, number: int, *, merged: bool = True) -> None:
        """Associate a pull request with a commit (what `/commits/{sha}/pulls` returns)."""
        self.repos[repo].pulls.setdefault(sha, []).append(
            {
                "number": number,
                "state": "closed",
                "title": f"PR {number}",
                "html_url": f"https://github.com/{repo}/pull/{number}",
                "merged_at": "2024-05-01T10:00:00Z" if merged else None,
                "user": {"login": "ada"},
            }
        )

    def rate_limit(self, *, status: int = 403, retry_after: int | None = None, reset_at: int | None = None) -> None:
        """Answer the next request with a rate-limit response (retry-after or x-ratelimit-reset)."""
        headers = {"x-ratelimit-limit": "60", "x-ratelimit-used": "60", "x-ratelimit-resource": "core"}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        if reset_at is not None:
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(reset_at)
        self._rate_limits.append(_RateLimit(status, headers))

    def refuse(self, repo: str, status: int = 403) -> None:
        """Refuse every request about ``repo`` with ``status`` (401, 403 or 410), as GitHub refuses a token that
        lacks the permission on that one repository."""
        self.refusals[repo] = status

    def hold(self, method: str, path_end: str) -> None:
        """Let the next ``method`` request whose path ends with ``path_end`` take effect, then keep its answer
        back until ``release()`` (``arrived`` is set once it has taken effect)."""
        self._hold = (method, path_end)
        self._held = asyncio.Event()
        self.arrived.clear()

    def release(self) -> None:
        if self._held is not None:
            self._held.set()
        self._hold = self._held = None

    # -- server ------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/repos/{owner}/{name}/compare/{basehead:.+}", self._compare)
        app.router.add_get("/repos/{owner}/{name}/commits", self._list_commits)
        app.router.add_get("/repos/{owner}/{name}/commits/{sha}/pulls", self._pulls)
        app.router.add_get("/repos/{owner}/{name}/commits/{ref:.+}", self._get_commit)
        app.router.add_post("/repos/{owner}/{name}/deployments", self._create_deployment)
        app.router.add_get("/repos/{owner}/{name}/deployments", self._list_deployments)
        app.router.add_post("/repos/{owner}/{name}/deployments/{id}/statuses", self._create_status)
        app.router.add_get("/repos/{owner}/{name}/deployments/{id}/statuses", self._list_statuses)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        text = await request.text() if request.can_read_body else ""
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        if self.down:
            return web.json_response({"message": "Service Unavailable"}, status=503)
        if self._rate_limits:
            limit = self._rate_limits.pop(0)
            return web.json_response(
                {
                    "message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: "
                    "Authenticated requests get a higher rate limit.)",
                    "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
                },
                status=limit.status,
                headers=limit.headers,
            )
        refused = self._refusal(request)
        if refused is not None:
            return refused
        response: web.StreamResponse = await handler(request)
        held, wanted = self._held, self._hold
        if held is not None and wanted is not None and request.method == wanted[0] and request.path.endswith(wanted[1]):
            self._hold = None  # only this one
            self.arrived.set()  # it has taken effect; its answer waits
            await held.wait()
        return response

    def _refusal(self, request: web.Request) -> web.Response | None:
        """GitHub's answer to a request about a repository the token may not touch, or None."""
        parts = request.path.split("/")
        repo = "/".join(parts[2:4]) if len(parts) > 3 and parts[1] == "repos" else None
        status = self.refusals.get(repo) if repo is not None else None
        if status is None:
            return None
        message = {
            401: "Bad credentials",
            403: "Resource not accessible by integration",
            410: "Gone",
        }.get(status, "Forbidden")
        headers = {  # a refusal, not a limit: calls to spare, no retry-after
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4987",
            "x-ratelimit-used": "13",
            "x-ratelimit-resource": "core",
        }
        return web.json_response(
            {"message": message, "documentation_url": f"{DOCS}/deployments/deployments", "status": str(status)},
            status=status,
            headers=headers,
        )

    def _not_found(self, message: str = "Not Found") -> web.Response:
        return web.json_response({"message": message, "documentation_url": DOCS, "status": "404"}, status=404)

    def _repo(self, request: web.Request) -> _Repo | None:
        return self.repos.get(f"{request.match_info['owner']}/{request.match_info['name']}")

    def _index(self, repo: _Repo, ref: str) -> int | None:
        sha = repo.refs.get(ref, ref)
        for i, item in enumerate(repo.commits):
            if item["sha"] == sha or (len(sha) >= 7 and item["sha"].startswith(sha)):
                return i
        return None

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        per_page = min(int(request.query.get("per_page", "30")), 100)
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        links = []
        last = max(1, -(-len(items) // per_page))
        if page < last:
            links.append(f'<{request.url.update_query(page=page + 1)}>; rel="next"')
            links.append(f'<{request.url.update_query(page=last)}>; rel="last"')
        if page > 1:
            links.append(f'<{request.url.update_query(page=1)}>; rel="first"')
            links.append(f'<{request.url.update_query(page=page - 1)}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return chunk, headers

    async def _compare(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        base, sep, head = request.match_info["basehead"].partition("...")
        if repo is None or not sep:
            return self._not_found()
        lo, hi = self._index(repo, base), self._index(repo, head)
        if lo is None or hi is None:
            return self._not_found(f"No commit found for SHA: {base if lo is None else head}")
        ahead = repo.commits[lo + 1 : hi + 1]
        chunk, headers = self._page(request, ahead)
        full = f"{request.match_info['owner']}/{request.match_info['name']}"
        body = {
            "url": f"{self.url}/repos/{full}/compare/{base}...{head}",
            "html_url": f"https://github.com/{full}/compare/{base}...{head}",
            "base_commit": repo.commits[lo],
            "merge_base_commit": repo.commits[lo],
            "status": "ahead" if ahead else "identical",
            "ahead_by": len(ahead),
            "behind_by": 0,
            "total_commits": len(ahead),
            "commits": chunk,
            "files": [],
        }
        return web.json_response(body, headers=headers)

    async def _list_commits(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        if repo is None:
            return self._not_found()
        hi = self._index(repo, request.query.get("sha", "main")) if repo.commits else None
        if hi is None:
            return self._not_found("No commit found for SHA: " + request.query.get("sha", ""))
        chunk, headers = self._page(request, list(reversed(repo.commits[: hi + 1])))
        return web.json_response(chunk, headers=headers)

    async def _get_commit(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        i = self._index(repo, request.match_info["ref"]) if repo else None
        if repo is None or i is None:
            return web.json_response(
                {
                    "message": f"No commit found for SHA: {request.match_info['ref']}",
                    "documentation_url": DOCS,
                },
                status=422,
            )
        return web.json_response({**repo.commits[i], "stats": {"total": 0}, "files": []})

    async def _pulls(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        if repo is None:
            return self._not_found()
        return web.json_response(repo.pulls.get(request.match_info["sha"], []))

    # -- deployments ---------------------------------------------------------------------------------

    def statuses_of(self, deployment_id: int) -> list[str]:
        """The states posted for a deployment, oldest first."""
        return [status["state"] for status in self.statuses.get(deployment_id, [])]

    def _stamp(self) -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def _create_deployment(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        if repo is None:
            return self._not_found()
        full = f"{request.match_info['owner']}/{request.match_info['name']}"
        body = await request.json()
        ref = str(body.get("ref", ""))
        i = self._index(repo, ref)
        if i is None:
            return web.json_response(
                {"message": f"No ref found for: {ref}", "documentation_url": f"{DOCS}/deployments/deployments"},
                status=422,
            )
        deployment_id = sum(len(items) for items in self.deployments.values()) + 1
        environment = body.get("environment", "production")
        item = {
            "url": f"{self.url}/repos/{full}/deployments/{deployment_id}",
            "id": deployment_id,
            "node_id": f"DE_{deployment_id}",
            "sha": repo.commits[i]["sha"],
            "ref": ref,
            "task": body.get("task", "deploy"),
            "payload": body.get("payload", {}),
            "original_environment": environment,
            "environment": environment,
            "description": body.get("description"),
            "creator": {"login": "release-bot[bot]", "type": "Bot"},
            "created_at": self._stamp(),
            "updated_at": self._stamp(),
            "statuses_url": f"{self.url}/repos/{full}/deployments/{deployment_id}/statuses",
            "repository_url": f"{self.url}/repos/{full}",
            "transient_environment": body.get("transient_environment", False),
            "production_environment": body.get("production_environment", environment == "production"),
        }
        self.deployments.setdefault(full, []).append(item)
        if self.lose_next_creates:
            self.lose_next_creates -= 1
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return web.json_response(item, status=201)

    async def _list_deployments(self, request: web.Request) -> web.Response:
        if self._repo(request) is None:
            return self._not_found()
        full = f"{request.match_info['owner']}/{request.match_info['name']}"
        found = [
            item
            for item in reversed(self.deployments.get(full, []))
            if all(request.query.get(key) in (None, item[key]) for key in ("sha", "ref", "task", "environment"))
        ]
        chunk, headers = self._page(request, found)
        return web.json_response(chunk, headers=headers)

    def _deployment(self, request: web.Request) -> dict[str, Any] | None:
        full = f"{request.match_info['owner']}/{request.match_info['name']}"
        wanted = request.match_info["id"]
        return next((d for d in self.deployments.get(full, []) if str(d["id"]) == wanted), None)

    async def _create_status(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        if deployment is None:
            return self._not_found()
        body = await request.json()
        states = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
        if body.get("state") not in states:
            return web.json_response(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "DeploymentStatus", "field": "state", "code": "invalid"}],
                    "documentation_url": f"{DOCS}/deployments/statuses",
                },
                status=422,
            )
        items = self.statuses.setdefault(deployment["id"], [])
        status = {
            "url": f"{deployment['url']}/statuses/{len(items) + 1}",
            "id": len(items) + 1,
            "state": body["state"],
            "description": body.get("description", ""),
            "environment": body.get("environment", deployment["environment"]),
            "log_url": body.get("log_url", ""),
            "target_url": body.get("log_url", ""),
            "environment_url": body.get("environment_url", ""),
            "created_at": self._stamp(),
            "deployment_url": deployment["url"],
        }
        items.append(status)
        return web.json_response(status, status=201)

    async def _list_statuses(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        if deployment is None:
            return self._not_found()
        chunk, headers = self._page(request, list(reversed(self.statuses.get(deployment["id"], []))))
        return web.json_response(chunk, headers=headers)

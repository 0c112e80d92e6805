"""The HTTP API for CI, mounted at ``/api/v1`` as an aiohttp sub-application.

Every route needs ``Authorization: Bearer <RELEASEBOT_API_TOKEN>``; without a configured token the
API is not mounted at all (:func:`mount_api` returns False), so a missing secret can never mean an
open API. Every error is JSON ``{"error": "<field>: <what is wrong>", "field": "<path>"}``, and a
rejected request stores nothing: validation happens before the store is touched, and each accepted
write runs with its audit row in one transaction on the store's thread.

Bodies are capped at 5 MiB by reading ``request.content`` with a counter (and refusing up front on
``Content-Length``), because aiohttp takes ``client_max_size`` from the *root* application, not
from a sub-app: the cap must hold whatever the root app allows.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from bot.alerts_models import CheckedAlert, alerts_request
from bot.api_models import (
    ApiError,
    FieldProblem,
    InvalidBody,
    audit_json,
    env_param,
    limit_param,
    release_json,
    service_param,
    since_param,
    version_param,
)
from bot.candidates import (
    Origin,
    candidate_request,
    json_document,
    register_candidate,
    report_scan,
    report_test,
    result_request,
    scan_request,
)
from bot.config import Config
from bot.core.manifest import manifest_document
from bot.core.models import EnvState, Release
from bot.core.notes import ReleaseNotes, notes_title
from bot.core.trivy import MAX_REPORT_BYTES
from bot.events.cloudevents import envelope
from bot.logcontext import log_context
from bot.store import AsyncStore, Store

__all__ = [
    "ALERTS_PATH",
    "API",
    "API_PREFIX",
    "MAX_BODY_BYTES",
    "AlertIntake",
    "ApiContext",
    "alerts_token",
    "build_alerts_app",
    "build_api_app",
    "mount_alerts",
    "mount_api",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = MAX_REPORT_BYTES  # 5 MiB: a Trivy report of a large image fits, a runaway upload does not
_READ_CHUNK = 64 * 1024
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_DEFAULT_LIMIT, _MAX_LIMIT, _MAX_AUDIT = 20, 200, 1000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiContext:
    """What the handlers need, kept on the sub-app under :data:`API`."""

    db: AsyncStore
    config: Config
    token: bytes
    clock: Callable[[], datetime]


API: web.AppKey[ApiContext] = web.AppKey("api", ApiContext)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)


def _error(status: int, field: str, text: str, problems: tuple[FieldProblem, ...] = ()) -> web.Response:
    body: dict[str, Any] = {"error": text, "field": field}
    if len(problems) > 1:
        body["errors"] = [{"field": p.field, "error": str(p)} for p in problems]
    return web.json_response(body, status=status)


def _http_error(exc: web.HTTPException) -> web.Response:
    if exc.status == 413:
        limit = MAX_BODY_BYTES // (1024 * 1024)
        response = _error(413, "body", f"body: request body is over the {limit} MiB limit")
    else:
        field = "path" if exc.status in {404, 405} else "request"
        response = _error(exc.status, field, f"{field}: {exc.reason.lower()}")
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the API's JSON error shape, and tag the response with its request id."""
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    response: web.StreamResponse
    try:
        with log_context(request_id=request_id):
            response = await handler(request)
    except ApiError as exc:
        response = _error(exc.status, exc.field, str(exc))
    except InvalidBody as exc:
        first = exc.problems[0]
        response = _error(422, first.field, str(first), exc.problems)
    except web.HTTPException as exc:
        response = _http_error(exc)
    except Exception:
        log.exception("API request %s %s failed (request id %s)", request.method, request.path, request_id)
        response = web.json_response(
            {"error": f"internal error, see logs (request id {request_id})", "field": "request"}, status=500
        )
    response.headers["X-Request-Id"] = request_id
    return response


def _authorized(header: str | None, token: bytes) -> bool:
    if header is None:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    # Compare in constant time so response timing does not leak how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode("utf-8", "replace"), token)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse before reading the body when the bearer token is missing or wrong."""
    if not _authorized(request.headers.get("Authorization"), request.config_dict[API].token):
        return web.json_response(
            {"error": "unauthorized", "field": "Authorization"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="release-bot"'},
        )
    return await handler(request)


async def _read_body(request: web.Request) -> bytes:
    """The body, at most MAX_BODY_BYTES: refused on Content-Length, or as soon as the count passes it."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_BODY_BYTES:  # chunked uploads give no Content-Length to refuse on
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: web.Request) -> object:
    return json_document(await _read_body(request))


# --- writes: the checks and the store work are bot.candidates', shared with `release-bot candidate`


def _origin(request: web.Request) -> Origin:
    return Origin(actor="api", request_id=request[REQUEST_ID])


async def _post_candidate(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    checked = candidate_request(ctx.config, await _json_body(request))
    answer = await ctx.db.run(register_candidate, ctx.db.sync, checked, ctx.clock(), _origin(request))
    if answer.status == 201:
        body = checked.body
        log.info("candidate %s %s registered (request %s)", body.service, body.version, request[REQUEST_ID])
    return web.json_response(answer.body, status=answer.status)


async def _post_tests(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    service, version = request.match_info["service"], request.match_info["version"]
    checked = result_request(service, version, await _json_body(request))
    answer = await ctx.db.run(report_test, ctx.db.sync, checked, ctx.clock(), _origin(request))
    return web.json_response(answer.body, status=answer.status)


async def _post_scan(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    service, version = request.match_info["service"], request.match_info["version"]
    checked = scan_request(service, version, await _json_body(request))
    answer = await ctx.db.run(report_scan, ctx.db.sync, checked, ctx.clock(), _origin(request))
    return web.json_response(answer.body, status=answer.status)


# --- reads


async def _get_releases(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    service = service_param(request.query, ctx.config, required=False)
    env = env_param(request.query, ctx.config, required=False)
    limit = limit_param(request.query, _DEFAULT_LIMIT, _MAX_LIMIT)
    found: list[Release] = []
    for name in [service] if service else sorted(ctx.config.services):
        found += await ctx.db.history(name, env, limit)
    found.sort(key=lambda r: r.id, reverse=True)  # ids grow with time: newest first across services too
    return web.json_response({"releases": [release_json(r) for r in found[:limit]]})


def _manifest_of(store: Store, state: EnvState) -> dict[str, Any]:
    candidate = store.get_candidate(state.service, state.version)
    return manifest_document(
        service=state.service,
        env=state.env,
        version=state.version,
        commit=candidate.commit if candidate else None,
        released_at=state.since,
        released_by=state.by,
        release_id=state.release_id,
        components=candidate.components if candidate else {},
    )


def _manifests(store: Store, services: list[str], envs: list[str]) -> list[dict[str, Any]]:
    """The manifest of each of ``services`` in each of ``envs`` that has had a release, in that order; one read."""
    live = {(s.service, s.env): s for s in store.all_env_states()}
    return [_manifest_of(store, live[s, e]) for s in services for e in envs if (s, e) in live]


async def _get_manifest(request: web.Request) -> web.Response:
    """Both ``service`` and ``env``: that one manifest (404 when nothing was released there). Either or neither:
    ``{"manifests": [...]}``, one per service and environment that has had a release (maybe none)."""
    ctx = request.config_dict[API]
    service = service_param(request.query, ctx.config, required=False)
    env = env_param(request.query, ctx.config, required=False)
    services = [service] if service else sorted(ctx.config.services)
    envs = [env] if env else list(ctx.config.environments)
    found = await ctx.db.run(_manifests, ctx.db.sync, services, envs)
    if service is None or env is None:
        return web.json_response({"manifests": found})
    if not found:
        raise ApiError(404, "env", f"nothing has been released to {service} {env} yet")
    return web.json_response(found[0])


async def _get_audit(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    since = since_param(request.query)
    limit = limit_param(request.query, _MAX_AUDIT, _MAX_AUDIT)
    entries = await ctx.db.audit_since(since, limit)
    return web.json_response({"entries": [audit_json(e) for e in entries]})


async def _get_notes(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    service = service_param(request.query, ctx.config, required=True)
    to = version_param(request.query, "to", required=True)
    previous = version_param(request.query, "from", required=False)
    assert service is not None and to is not None
    release = await ctx.db.release_with_notes(service, to, previous)
    if release is None or release.notes is None:
        since = f" since {previous}" if previous else ""
        raise ApiError(404, "to", f"no release notes stored for {service} {to}{since}")
    stored = release.notes.get("markdown")
    if isinstance(stored, str):
        text = stored
    else:
        start = release.previous_version
        text = ReleaseNotes.from_dict(release.notes).to_markdown(notes_title(service, start, to))
    return web.Response(text=text, content_type="text/markdown", charset="utf-8")


_DEFAULT_EVENTS, _MAX_EVENTS = 100, 1000


async def _get_events(request: web.Request) -> web.Response:
    """The outbound events after sequence number ``since`` (default 0: from the first), oldest first, as the
    CloudEvents the webhooks get (docs/events.md); ``next`` is the ``since`` of the following page."""
    ctx = request.config_dict[API]
    text = request.query.get("since", "0")
    if not text.isdigit() or len(text) > 18:
        raise ApiError(400, "since", f"expected an event sequence number (releasebotseq), got {text[:20]!r}")
    limit = limit_param(request.query, _DEFAULT_EVENTS, _MAX_EVENTS)
    replay = await ctx.db.event_replay(int(text), limit)
    found = replay.events
    return web.json_response(
        {
            "events": [envelope(event) for event in found],
            "next": found[-1].seq if found else int(text),
            # Events after `since` were pruned past events.retention: this replay cannot be complete.
            "truncated": replay.truncated,
        }
    )


def build_api_app(*, db: AsyncStore, config: Config, token: str, clock: Callable[[], datetime]) -> web.Application:
    """The ``/api/v1`` sub-application; mount it with ``app.add_subapp(API_PREFIX, ...)``."""
    if not token:
        raise ValueError("the CI API needs a token (RELEASEBOT_API_TOKEN); without one do not mount it")
    # client_max_size only documents intent here: aiohttp applies the root app's; _read_body enforces it.
    app = web.Application(client_max_size=MAX_BODY_BYTES + 1, middlewares=[_errors, _auth])
    app[API] = ApiContext(db=db, config=config, token=token.encode(), clock=clock)
    app.router.add_post("/candidates", _post_candidate)
    app.router.add_post("/candidates/{service}/{version}/tests", _post_tests)
    app.router.add_post("/candidates/{service}/{version}/scan", _post_scan)
    app.router.add_get("/releases", _get_releases)
    app.router.add_get("/manifest", _get_manifest)
    app.router.add_get("/audit", _get_audit)
    app.router.add_get("/notes", _get_notes)
    app.router.add_get("/events", _get_events)
    return app


def mount_api(
    app: web.Application, *, db: AsyncStore, config: Config, token: str | None, clock: Callable[[], datetime]
) -> bool:
    """Mount the CI API at ``/api/v1`` when a token is configured; False (nothing mounted) otherwise."""
    if not token:
        log.info("RELEASEBOT_API_TOKEN is not set: the CI API (%s) is disabled", API_PREFIX)
        return False
    app.add_subapp(API_PREFIX, build_api_app(db=db, config=config, token=token, clock=clock))
    return True


# --- Alertmanager's webhook: POST /api/v1/alerts, with its own token (``alerts.token_env``), served whenever
# ``alerts:`` is configured, CI token or not. A sub-app of its own at the longer prefix: aiohttp resolves the most
# specific prefix first, so it answers /api/v1/alerts while the CI API keeps the rest of /api/v1.

ALERTS_PATH = "/alerts"


class AlertIntake(Protocol):
    """What acts on accepted alerts (bot.engine.alerts.Alerts)."""

    async def receive(self, alerts: Sequence[CheckedAlert], request_id: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AlertsContext:
    config: Config
    intake: AlertIntake
    token: bytes


ALERTS: web.AppKey[AlertsContext] = web.AppKey("alerts", AlertsContext)


@web.middleware
async def _alerts_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Alertmanager's ``http_config.authorization`` (``Authorization: Bearer <token>``), checked before the body."""
    if not _authorized(request.headers.get("Authorization"), request.config_dict[ALERTS].token):
        return web.json_response(
            {"error": "unauthorized", "field": "Authorization"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="release-bot alerts"'},
        )
    return await handler(request)


async def _post_alerts(request: web.Request) -> web.Response:
    ctx = request.config_dict[ALERTS]
    checked = alerts_request(ctx.config, await _json_body(request))  # all checked (unknown ones skipped), then stored
    answer = await ctx.intake.receive(checked, request[REQUEST_ID])
    return web.json_response(answer)


def build_alerts_app(*, config: Config, intake: AlertIntake, token: str) -> web.Application:
    """The ``/api/v1/alerts`` sub-application; mount it with :func:`mount_alerts`."""
    if not token:
        raise ValueError("the alerts webhook needs a token (alerts.token_env); without one do not mount it")
    app = web.Application(client_max_size=MAX_BODY_BYTES + 1, middlewares=[_errors, _alerts_auth])
    app[ALERTS] = AlertsContext(config=config, intake=intake, token=token.encode())
    app.router.add_post("", _post_alerts)
    return app


def alerts_token(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """The alerts token from the variable ``alerts.token_env`` names (None: no ``alerts:``, or it is unset).

    Start-up checks the variable with every other credential (``Config.http_auths``), so a configured route
    never runs without its token."""
    if config.alerts is None:
        return None
    return (os.environ if environ is None else environ).get(config.alerts.token_env) or None


def mount_alerts(app: web.Application, *, config: Config, intake: AlertIntake, token: str | None) -> bool:
    """Mount ``POST /api/v1/alerts`` when ``alerts:`` is configured and its token is set; False otherwise."""
    if config.alerts is None:
        return False
    if not token:
        log.warning("%s is not set: the alerts webhook (%s) is disabled", config.alerts.token_env, ALERTS_PATH)
        return False
    app.add_subapp(API_PREFIX + ALERTS_PATH, build_alerts_app(config=config, intake=intake, token=token))
    return True

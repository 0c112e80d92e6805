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
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.api_models import (
    ApiError,
    CandidateBody,
    FieldProblem,
    InvalidBody,
    TestReportBody,
    audit_json,
    env_param,
    iso,
    limit_param,
    parse_body,
    release_json,
    resolve_components,
    scan_digests,
    service_param,
    since_param,
    version_param,
    version_segment,
)
from bot.config import Config
from bot.core.imageref import ImageMatch, components_with_digests, match_scanned_image, report_digests
from bot.core.manifest import manifest_document
from bot.core.models import Candidate, Release
from bot.core.notes import ReleaseNotes, notes_title
from bot.core.trivy import MAX_REPORT_BYTES, ScanReportError, parse_trivy_report
from bot.logcontext import log_context
from bot.store import AsyncStore, Store

__all__ = ["API", "API_PREFIX", "MAX_BODY_BYTES", "ApiContext", "build_api_app", "mount_api"]

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


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


async def _json_body(request: web.Request) -> object:
    raw = await _read_body(request)
    if not raw.strip():
        raise ApiError(400, "body", "empty body; expected a JSON object")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "body", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "body", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "body", f"not valid JSON: {exc}") from None


# --- writes: each runs whole on the store thread, the change and its audit row in one transaction


def _register_candidate(
    store: Store, body: CandidateBody, components: dict[str, str], now: datetime, request_id: str
) -> str:
    with store.sql.transaction():
        outcome = store.put_candidate(
            service=body.service,
            version=body.version,
            commit=body.commit,
            committed_at=body.committed_at,
            components=components,
            tests={suite: status for suite, status in body.tests.items()},
            now=now,
        )
        if outcome == "created":
            detail = {"commit": body.commit, "components": components, "tests": dict(body.tests)}
            store.audit(
                actor="api",
                action="candidate.created",
                subject=f"{body.service}/{body.version}",
                now=now,
                detail=detail,
                request_id=request_id,
            )
    return outcome


def _report_test(
    store: Store, service: str, version: str, body: TestReportBody, now: datetime, request_id: str
) -> bool | None:
    with store.sql.transaction():
        candidate = store.get_candidate(service, version)
        if candidate is None:
            return None
        if body.commit is not None and body.commit != candidate.commit.lower():
            # A result for another build is no evidence about this one, whatever it says.
            raise ApiError(
                409,
                "commit",
                f"the {body.suite} result is for commit {body.commit}, but {service} {version} is commit "
                f"{candidate.commit}; report it against the candidate built from {body.commit}",
            )
        changed = store.put_test(service, version, body.suite, body.status, body.url, now)
        if changed:
            detail = {"suite": body.suite, "status": body.status, "url": body.url}
            if body.commit is not None:
                detail["commit"] = body.commit
            store.audit(
                actor="api",
                action="tests.reported",
                subject=f"{service}/{version}",
                now=now,
                detail=detail,
                request_id=request_id,
            )
    return changed


def _class_counts(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Secrets and failed misconfiguration checks, beside the vulnerability ``counts`` CI scripts already read."""
    return {c: {"counts": summary[c]["counts"], "total": summary[c]["total"]} for c in ("secrets", "misconfigurations")}


def _foreign_scan(service: str, version: str, artifact: str, digests: frozenset[str], images: dict[str, str]) -> str:
    scanned = repr(artifact[:200]) + (f" (digests {', '.join(sorted(digests))})" if digests else " (no digest)")
    if not images:
        return f"the report is of {scanned}, but {service} {version} has no component images to scan"
    listed = "; ".join(f"{name} = {ref}" for name, ref in sorted(images.items()))
    return (
        f"the report is of {scanned}, which is none of {service} {version}'s images: {listed}. "
        "Scan one of them; a pinned image matches when the report's Metadata.RepoDigests include its digest"
    )


def _report_scan(
    store: Store,
    service: str,
    version: str,
    summary: dict[str, Any],
    digests: frozenset[str],
    now: datetime,
    request_id: str,
) -> tuple[bool, ImageMatch] | None:
    with store.sql.transaction():
        candidate = store.get_candidate(service, version)
        if candidate is None:
            return None
        match = match_scanned_image(summary["artifact"], digests, candidate.components)
        if match is None:
            # A scan of another image says nothing about what this candidate ships: it must not
            # satisfy the checklist, nor replace a scan that was about the candidate.
            raise ApiError(
                409,
                "ArtifactName",
                _foreign_scan(service, version, summary["artifact"], digests, candidate.components),
            )
        if store.scans(service, version).get(match.component) == summary:
            return False, match  # a re-sent report changes nothing and is not a new event
        store.put_scan(service, version, match.component, summary, now)
        detail = {
            "artifact": summary["artifact"],
            "component": match.component,
            "matched_by": match.by,
            "counts": summary["counts"],
            **_class_counts(summary),
        }
        store.audit(
            actor="api",
            action="scan.reported",
            subject=f"{service}/{version}",
            now=now,
            detail=detail,
            request_id=request_id,
        )
    return True, match


def _conflicts(existing: Candidate, body: CandidateBody, components: dict[str, str]) -> list[str]:
    fields = [] if existing.commit == body.commit else ["commit"]
    if existing.committed_at != body.committed_at:
        fields.append("committed_at")
    names = sorted(set(existing.components) | set(components))
    fields += [f"components.{n}" for n in names if existing.components.get(n) != components.get(n)]
    return fields or ["tests"]  # only the initial test results can differ then


async def _post_candidate(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    body = parse_body(CandidateBody, await _json_body(request))
    service = ctx.config.services.get(body.service)
    if service is None:
        known = ", ".join(sorted(ctx.config.services))
        raise InvalidBody([FieldProblem("service", f"unknown service {body.service[:80]!r} (known: {known})")])
    components = resolve_components(body.components, body.service, service)
    outcome = await ctx.db.run(_register_candidate, ctx.db.sync, body, components, ctx.clock(), request[REQUEST_ID])
    if outcome == "conflict":
        existing = await ctx.db.get_candidate(body.service, body.version)
        differing = _conflicts(existing, body, components) if existing else ["version"]
        raise ApiError(
            409,
            differing[0],
            f"{body.service} {body.version} is already registered with a different "
            f"{', '.join(differing)}; a version is immutable, publish a new one",
        )
    if outcome == "created":
        log.info("candidate %s %s registered (request %s)", body.service, body.version, request[REQUEST_ID])
    answer = {
        "status": outcome,
        "service": body.service,
        "version": body.version,
        "commit": body.commit,
        "committed_at": iso(body.committed_at),
        "components": components_with_digests(components),
        "tests": dict(body.tests),
    }
    return web.json_response(answer, status=201 if outcome == "created" else 200)


def _no_candidate(service: str, version: str) -> ApiError:
    return ApiError(404, "version", f"no candidate {service} {version}; POST /api/v1/candidates first")


async def _post_tests(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    service, version = request.match_info["service"], version_segment(request.match_info["version"])
    body = parse_body(TestReportBody, await _json_body(request))
    changed = await ctx.db.run(_report_test, ctx.db.sync, service, version, body, ctx.clock(), request[REQUEST_ID])
    if changed is None:
        raise _no_candidate(service, version)
    answer = {
        "service": service,
        "version": version,
        "suite": body.suite,
        "status": body.status,
        "changed": changed,
    }
    return web.json_response(answer)


async def _post_scan(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    service, version = request.match_info["service"], version_segment(request.match_info["version"])
    data = await _json_body(request)
    try:
        summary = parse_trivy_report(data).to_dict()
    except ScanReportError as exc:
        path, _, problem = str(exc).partition(": ")
        raise ApiError(422, "body" if path == "(report)" else path, problem) from None
    digests = report_digests(summary["artifact"], scan_digests(data) if isinstance(data, dict) else [])
    outcome = await ctx.db.run(
        _report_scan, ctx.db.sync, service, version, summary, digests, ctx.clock(), request[REQUEST_ID]
    )
    if outcome is None:
        raise _no_candidate(service, version)
    changed, match = outcome
    answer = {
        "service": service,
        "version": version,
        "changed": changed,
        "artifact": summary["artifact"],
        "component": match.component,
        "matched_by": match.by,
        "counts": summary["counts"],
        "total": summary["total"],
        **_class_counts(summary),
    }
    return web.json_response(answer)


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


async def _get_manifest(request: web.Request) -> web.Response:
    ctx = request.config_dict[API]
    service = service_param(request.query, ctx.config, required=True)
    env = env_param(request.query, ctx.config, required=True)
    assert service is not None and env is not None
    state = await ctx.db.env_state(service, env)
    if state is None:
        raise ApiError(404, "env", f"nothing has been released to {service} {env} yet")
    candidate = await ctx.db.get_candidate(service, state.version)
    answer = manifest_document(
        service=service,
        env=env,
        version=state.version,
        commit=candidate.commit if candidate else None,
        released_at=state.since,
        released_by=state.by,
        release_id=state.release_id,
        components=candidate.components if candidate else {},
    )
    return web.json_response(answer)


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

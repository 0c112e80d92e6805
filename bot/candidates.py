"""Registering candidates and their evidence, one way for every entry point.

The CI API (``POST /api/v1/candidates``, ``…/tests``, ``…/scan``), the command line (``release-bot candidate
add | tests | scan``) and the console's ``candidate …`` all come here: the same checks, the same rows, the same
audit entries and the same answer (the JSON the API returns). Each takes the JSON document its caller has (the
API's request body, or the one the command line built from its arguments) and either answers or raises
:class:`ApiError` / :class:`InvalidBody` naming the field to fix.

Checking is split from storing so callers do it before the store is touched: ``*_request`` functions are
pure; ``register_candidate``, ``report_test`` and ``report_scan`` run whole on the store's thread, each change
and its audit row in one transaction, so a rejected request stores nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.api_models import (
    ApiError,
    CandidateBody,
    FieldProblem,
    InvalidBody,
    TestReportBody,
    iso,
    parse_body,
    resolve_components,
    scan_digests,
    version_segment,
)
from bot.config import Config
from bot.core.imageref import ImageMatch, components_with_digests, match_scanned_image, report_digests
from bot.core.models import Candidate
from bot.core.trivy import ScanReportError, parse_trivy_report
from bot.store import Store

__all__ = [
    "Answer",
    "CandidateRequest",
    "Origin",
    "ScanRequest",
    "ResultRequest",
    "candidate_request",
    "json_document",
    "register_candidate",
    "report_scan",
    "report_test",
    "result_request",
    "scan_request",
]


@dataclass(frozen=True)
class Answer:
    """What a registration answers: the API's HTTP status and JSON; the command line prints the same."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Origin:
    """Who registered it, for the audit trail: ``api`` with the request's id, ``cli``, or a console user."""

    actor: str
    request_id: str


@dataclass(frozen=True)
class CandidateRequest:
    """A checked candidate: its body, and its component images canonical by component name."""

    body: CandidateBody
    components: dict[str, str]


@dataclass(frozen=True)
class ResultRequest:
    """A checked test result for the candidate ``service`` ``version``."""

    service: str
    version: str
    body: TestReportBody


@dataclass(frozen=True)
class ScanRequest:
    """A checked Trivy report for the candidate ``service`` ``version``: the summary stored as evidence, and
    the digests that tie it to one of the candidate's images."""

    service: str
    version: str
    summary: dict[str, Any]
    digests: frozenset[str]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_document(raw: bytes) -> object:
    """A JSON document read from bytes, or an ApiError on ``body`` saying what is wrong with it."""
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


# --- candidates


def candidate_request(config: Config, data: object) -> CandidateRequest:
    """Check a candidate body against its shape and the config: a known service, each of its components."""
    body = parse_body(CandidateBody, data)
    service = config.services.get(body.service)
    if service is None:
        known = ", ".join(sorted(config.services))
        raise InvalidBody([FieldProblem("service", f"unknown service {body.service[:80]!r} (known: {known})")])
    return CandidateRequest(body, resolve_components(body.components, body.service, service))


def register_candidate(store: Store, request: CandidateRequest, now: datetime, origin: Origin) -> Answer:
    """Register the candidate once (201), an identical re-post is ``unchanged`` (200); a different body for a
    registered version is refused (409) naming what differs. On the store thread."""
    body, components = request.body, request.components
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
                actor=origin.actor,
                action="candidate.created",
                subject=f"{body.service}/{body.version}",
                now=now,
                detail=detail,
                request_id=origin.request_id,
            )
        existing = store.get_candidate(body.service, body.version) if outcome == "conflict" else None
    if outcome == "conflict":
        differing = _conflicts(existing, request) if existing else ["version"]
        raise ApiError(
            409,
            differing[0],
            f"{body.service} {body.version} is already registered with a different "
            f"{', '.join(differing)}; a version is immutable, publish a new one",
        )
    answer = {
        "status": outcome,
        "service": body.service,
        "version": body.version,
        "commit": body.commit,
        "committed_at": iso(body.committed_at),
        "components": components_with_digests(components),
        "tests": dict(body.tests),
    }
    return Answer(201 if outcome == "created" else 200, answer)


def _conflicts(existing: Candidate, request: CandidateRequest) -> list[str]:
    body, components = request.body, request.components
    fields = [] if existing.commit == body.commit else ["commit"]
    if existing.committed_at != body.committed_at:
        fields.append("committed_at")
    names = sorted(set(existing.components) | set(components))
    fields += [f"components.{n}" for n in names if existing.components.get(n) != components.get(n)]
    return fields or ["tests"]  # only the initial test results can differ then


def _no_candidate(service: str, version: str) -> ApiError:
    return ApiError(
        404,
        "version",
        f"no candidate {service} {version}; register it first "
        "(POST /api/v1/candidates, or `release-bot candidate add`)",
    )


# --- test results


def result_request(service: str, version: str, data: object) -> ResultRequest:
    """Check one suite's result (``suite``, ``status``, optional ``url`` and ``commit``) for a version."""
    version = version_segment(version)
    return ResultRequest(service, version, parse_body(TestReportBody, data))


def report_test(store: Store, request: ResultRequest, now: datetime, origin: Origin) -> Answer:
    """Record a suite's result for a registered candidate (``changed`` False for a re-post). On the store thread."""
    service, version, body = request.service, request.version, request.body
    with store.sql.transaction():
        candidate = store.get_candidate(service, version)
        if candidate is None:
            raise _no_candidate(service, version)
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
                actor=origin.actor,
                action="tests.reported",
                subject=f"{service}/{version}",
                now=now,
                detail=detail,
                request_id=origin.request_id,
            )
    answer = {"service": service, "version": version, "suite": body.suite, "status": body.status, "changed": changed}
    return Answer(200, answer)


# --- vulnerability scans


def scan_request(service: str, version: str, data: object) -> ScanRequest:
    """Check a Trivy JSON report (``trivy image --format json``) and read its summary and image digests."""
    version = version_segment(version)
    try:
        summary = parse_trivy_report(data).to_dict()
    except ScanReportError as exc:
        path, _, problem = str(exc).partition(": ")
        raise ApiError(422, "body" if path == "(report)" else path, problem) from None
    digests = report_digests(summary["artifact"], scan_digests(data) if isinstance(data, dict) else [])
    return ScanRequest(service, version, summary, digests)


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


def report_scan(store: Store, scan: ScanRequest, now: datetime, origin: Origin) -> Answer:
    """Store the scan of one of a registered candidate's images (``changed`` False for a re-sent report).
    On the store thread."""
    service, version, summary = scan.service, scan.version, scan.summary
    with store.sql.transaction():
        candidate = store.get_candidate(service, version)
        if candidate is None:
            raise _no_candidate(service, version)
        match = match_scanned_image(summary["artifact"], scan.digests, candidate.components)
        if match is None:
            # A scan of another image says nothing about what this candidate ships: it must not
            # satisfy the checklist, nor replace a scan that was about the candidate.
            raise ApiError(
                409,
                "ArtifactName",
                _foreign_scan(service, version, summary["artifact"], scan.digests, candidate.components),
            )
        changed = store.scans(service, version).get(match.component) != summary  # a re-sent report is no event
        if changed:
            store.put_scan(service, version, match.component, summary, now)
            store.audit(
                actor=origin.actor,
                action="scan.reported",
                subject=f"{service}/{version}",
                now=now,
                detail=_scan_detail(summary, match),
                request_id=origin.request_id,
            )
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
    return Answer(200, answer)


def _scan_detail(summary: dict[str, Any], match: ImageMatch) -> dict[str, Any]:
    return {
        "artifact": summary["artifact"],
        "component": match.component,
        "matched_by": match.by,
        "counts": summary["counts"],
        **_class_counts(summary),
    }

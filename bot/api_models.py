"""What the CI API (``/api/v1``) accepts and answers: bodies, query parameters, JSON views, errors.

Pure (no aiohttp, no store): the HTTP layer in ``bot.api`` only moves these in and out.

Pydantic checks the shape (``extra="forbid"``: an unknown field is an error naming it); the checks
that need the configuration — is the service known, are these its components, does every image
reference parse — live in :func:`resolve_components`. Every problem becomes a :class:`FieldProblem`
whose ``field`` is the JSON path CI has to fix (``components.api``, ``tests.smoke``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr, ValidationError, field_validator

from bot.config import Config, Service
from bot.core.imageref import ImageRefError, parse_image_ref
from bot.core.models import AuditEntry, Release, version_problem

__all__ = [
    "COMMIT_RE",
    "ApiError",
    "CandidateBody",
    "FieldProblem",
    "InvalidBody",
    "Suite",
    "TestReportBody",
    "TestStatus",
    "audit_json",
    "env_param",
    "iso",
    "limit_param",
    "parse_body",
    "parse_instant",
    "release_json",
    "resolve_components",
    "scan_digests",
    "service_param",
    "since_param",
    "version_param",
    "version_segment",
]

Suite = Literal["unit", "integration", "performance"]
TestStatus = Literal["passed", "failed"]

# A full object id, SHA-1 or SHA-256: a short id could name two objects, or a tag of that name, as the repo grows.
COMMIT_RE = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})\Z")
_MAX_URL = 2048
M = TypeVar("M", bound=BaseModel)


def full_commit(value: str) -> str:
    """A full object id, lowercased (one spelling: re-posts and comparisons see the same id); else ValueError."""
    if not COMMIT_RE.match(value):
        raise ValueError(f"{value[:80]!r} is not a commit: use the full id, 40 or 64 hexadecimal characters")
    return value.lower()


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a request: the JSON path and what is wrong there."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ApiError(Exception):
    """A refusal with its HTTP status; ``field`` is the offending input's path and starts the message."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field


class InvalidBody(ValueError):
    """A body that does not validate; ``problems`` lists every problem found, most relevant first."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        if not problems:
            raise ValueError("InvalidBody needs at least one problem")
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


def parse_instant(value: object) -> datetime:
    """An ISO-8601 instant with a UTC offset (``2026-03-02T14:05:00Z``); ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 date-time string with an offset, e.g. 2026-03-02T14:05:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date-time, e.g. 2026-03-02T14:05:00Z") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; add one, e.g. Z or +00:00")
    return parsed


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else parse_instant(value)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CandidateBody(_Body):
    """``POST /api/v1/candidates``: a build CI wants the bot to know about."""

    service: StrictStr
    version: StrictStr
    commit: StrictStr
    committed_at: Annotated[datetime | None, BeforeValidator(_optional_instant)] = None
    components: dict[str, StrictStr] = {}
    tests: dict[Suite, TestStatus] = {}

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        problem = version_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str) -> str:
        return full_commit(value)


class TestReportBody(_Body):
    """``POST /api/v1/candidates/{service}/{version}/tests``: one suite's result."""

    __test__ = False  # not a pytest test class, despite the name

    suite: Suite
    status: TestStatus
    url: StrictStr | None = None
    commit: StrictStr | None = None  # the commit tested; when given it must be the candidate's

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        return None if value is None else full_commit(value)  # compared with the candidate's

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if len(value) > _MAX_URL or parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"expected an http(s) URL of at most {_MAX_URL} characters")
        return value


def scan_digests(data: Mapping[str, object]) -> list[str]:
    """``Metadata.RepoDigests`` and ``Metadata.ImageID`` of a Trivy report that already parsed.

    Trivy's parser ignores Metadata's contents; these two are read here because they tie the report
    to the candidate's bytes, so a wrong type is an error naming its path rather than silently no digest.
    """
    metadata = data.get("Metadata")
    if not isinstance(metadata, Mapping):
        return []
    found: list[str] = []
    repo_digests = metadata.get("RepoDigests")
    if repo_digests is not None:
        if not isinstance(repo_digests, list):
            raise ApiError(422, "Metadata.RepoDigests", "expected an array of strings")
        for i, item in enumerate(repo_digests):
            if not isinstance(item, str):
                raise ApiError(422, f"Metadata.RepoDigests[{i}]", "expected a string")
            found.append(item)
    image_id = metadata.get("ImageID")
    if image_id is not None:
        if not isinstance(image_id, str):
            raise ApiError(422, "Metadata.ImageID", "expected a string")
        found.append(image_id)
    return found


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic marks a bad dict key this way; the path already names the key
            continue
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)[:80]
    return out or "body"


def _message(item: Any) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    if kind == "string_type":
        return "expected a string"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "expected a JSON object"
    if kind == "literal_error":
        return f"must be one of {item['ctx']['expected']}"
    return str(item["msg"]).removeprefix("Value error, ")


def parse_body(model: type[M], data: object) -> M:
    """Validate decoded JSON against ``model``; InvalidBody naming each bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidBody([FieldProblem(_path(e["loc"]), _message(e)) for e in exc.errors()]) from None


def resolve_components(components: dict[str, str], service_name: str, service: Service) -> dict[str, str]:
    """Check components against the service's configured ones; canonical image refs by name.

    Every configured component must be given: the candidate is what a release ships, and a
    manifest with a hole in it would not say what runs. Refs are stored canonical
    (``docker.io/library/nginx:1.27``) so two spellings of one image are one candidate.
    """
    problems: list[FieldProblem] = []
    configured = service.components
    for name in components:
        if name not in configured:
            known = ", ".join(configured) or "none configured"
            problems.append(FieldProblem(f"components.{name}", f"not a component of {service_name} (known: {known})"))
    for name in configured:
        if name not in components:
            problems.append(FieldProblem(f"components.{name}", f"missing: {service_name} needs an image for {name}"))
    canonical: dict[str, str] = {}
    for name, text in components.items():
        if name not in configured:
            continue
        try:
            canonical[name] = str(parse_image_ref(text))
        except ImageRefError as exc:
            problems.append(FieldProblem(f"components.{name}", f"bad image reference {exc}"))
    if problems:
        raise InvalidBody(problems)
    return canonical


# --- query parameters (``request.query`` is a Mapping[str, str]); a bad one is a 400 naming it


def _choice_param(
    query: Mapping[str, str], name: str, noun: str, choices: Sequence[str], *, required: bool
) -> str | None:
    """Parameter ``name``: one of ``choices`` (listed, in that order, when it is missing or unknown)."""
    known = ", ".join(choices)
    value = query.get(name)
    if not value:
        if required:
            raise ApiError(400, name, f"required (one of {known})")
        return None
    if value not in choices:
        raise ApiError(400, name, f"unknown {noun} {value[:80]!r} (known: {known})")
    return value


def service_param(query: Mapping[str, str], config: Config, *, required: bool) -> str | None:
    """``service``: a configured service name."""
    return _choice_param(query, "service", "service", sorted(config.services), required=required)


def env_param(query: Mapping[str, str], config: Config, *, required: bool) -> str | None:
    """``env``: a configured environment name."""
    return _choice_param(query, "env", "environment", list(config.environments), required=required)


def limit_param(query: Mapping[str, str], default: int, maximum: int) -> int:
    """``limit``: a whole number from 1 to ``maximum``."""
    text = query.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise ApiError(400, "limit", f"expected a whole number from 1 to {maximum}, got {text[:20]!r}")
    return int(text)


def version_param(query: Mapping[str, str], name: str, *, required: bool) -> str | None:
    """A version in parameter ``name`` (``to``, ``from``)."""
    value = query.get(name)
    if not value:
        if required:
            raise ApiError(400, name, "required (a version, e.g. 1.4.0)")
        return None
    problem = version_problem(value)
    if problem is not None:
        raise ApiError(400, name, problem)
    return value


def version_segment(value: str) -> str:
    """A version from a URL path (``/candidates/{service}/{version}/…``): 422 naming ``version`` otherwise."""
    problem = version_problem(value)
    if problem is not None:
        raise ApiError(422, "version", problem)
    return value


def since_param(query: Mapping[str, str]) -> datetime | None:
    """``since``: an ISO-8601 instant with an offset."""
    text = query.get("since")
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise ApiError(400, "since", str(exc)) from None


# --- JSON views


def iso(value: datetime | None) -> str | None:
    """ISO-8601 text of an aware datetime (None stays None)."""
    return value.isoformat() if value is not None else None


def release_json(r: Release) -> dict[str, Any]:
    """A release as ``GET /api/v1/releases`` lists it."""
    return {
        "id": r.id,
        "service": r.service,
        "env": r.env,
        "version": r.version,
        "kind": r.kind.value,
        "state": r.state.value,
        "requested_by": r.requested_by,
        "requested_at": iso(r.requested_at),
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "verdict": r.verdict,
        "change_failure": r.change_failure,
        "rollback_of": r.rollback_of,
        "error": r.error,
    }


def audit_json(e: AuditEntry) -> dict[str, Any]:
    """An audit entry as ``GET /api/v1/audit`` lists it."""
    return {
        "id": e.id,
        "at": iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "subject": e.subject,
        "detail": e.detail,
        "request_id": e.request_id,
    }

"""The CI API (/api/v1) over a real aiohttp server and a real SQLite store.

Every rejection is checked twice: the JSON error names the field, and nothing reached the store.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api import API_PREFIX, MAX_BODY_BYTES, build_api_app, mount_api
from bot.config import Config, load_config, parse_config
from bot.core.checklist import Evidence, evaluate_checklist
from bot.core.commits import Person
from bot.core.models import ReleaseKind, ReleaseState
from bot.core.notes import NoteEntry, NoteSection, ReleaseNotes
from bot.core.scan_summary import ScanSummary
from bot.store import AsyncStore

TOKEN = "ci-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_C = "sha256:" + "c" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"
EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "releasebot.yml"
TABLES = ("candidates", "candidate_tests", "candidate_scans", "audit")

CONFIG: dict[str, Any] = {
    "timezone": "America/Toronto",
    "services": {
        "notify": {
            "channel": "C01RELEASES",
            "components": ["api", "admin", "worker"],
            "pipeline": ["staging", "prod"],
        },
        "billing": {"channel": "C02BILLING", "components": ["api"], "pipeline": ["staging", "prod"]},
    },
    "environments": {
        "staging": {"window": "always", "deploy": {"provider": "command", "run": ["true"]}},
        "prod": {"window": "always", "deploy": {"provider": "command", "run": ["true"]}},
    },
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config() -> Config:
    return parse_config(CONFIG)


async def _client(app: web.Application) -> TestClient[web.Request, web.Application]:
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(
    db: AsyncStore, config: Config, clock: Clock
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()  # the root keeps aiohttp's default 1 MiB client_max_size: the API must not rely on it
    assert mount_api(app, db=db, config=config, token=TOKEN, clock=clock)
    client = await _client(app)
    yield client
    await client.close()


Client = TestClient[web.Request, web.Application]


def candidate(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": "notify",
        "version": "1.4.0",
        "commit": COMMIT,
        "committed_at": "2026-03-02T14:05:00Z",
        "components": {
            "api": f"ghcr.io/cds-snc/notify-api@{DIGEST_A}",
            "admin": "ghcr.io/cds-snc/notify-admin:1.4.0",
            "worker": f"nginx:1.27@{DIGEST_B}",
        },
        "tests": {"unit": "passed"},
    }
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


_DROP = object()


def with_component(name: str, ref: Any) -> dict[str, Any]:
    body = candidate()
    body["components"] = {**body["components"], name: ref}
    return body


def without_component(name: str) -> dict[str, Any]:
    body = candidate()
    body["components"] = {k: v for k, v in body["components"].items() if k != name}
    return body


def trivy_report(
    *severities: str,
    artifact: str = "ghcr.io/cds-snc/notify-api:1.4.0",
    repo_digests: tuple[str, ...] = (f"ghcr.io/cds-snc/notify-api@{DIGEST_A}",),
) -> dict[str, Any]:
    """A report of the candidate's pinned api image by default: its RepoDigests name the pinned digest."""
    vulns = [
        {
            "VulnerabilityID": f"CVE-2026-{i:04d}",
            "PkgName": "openssl",
            "InstalledVersion": "3.0.1",
            "Severity": s,
        }
        for i, s in enumerate(severities)
    ]
    return {
        "SchemaVersion": 2,
        "ArtifactName": artifact,
        "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.5"}, "RepoDigests": list(repo_digests)},
        "Results": [{"Target": "debian 12.5", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": vulns}],
    }


def counts(db: AsyncStore) -> dict[str, int]:
    return {t: db.sync.sql.query(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in TABLES}  # noqa: S608


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


async def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    response = await client.post(API_PREFIX + path, data=encode(body), headers=AUTH if headers is None else headers)
    assert response.content_type == "application/json"
    return response.status, await response.json()


async def get(client: Client, path: str, **params: str) -> tuple[int, Any]:
    response = await client.get(API_PREFIX + path, params=params, headers=AUTH)
    assert response.content_type == "application/json"
    return response.status, await response.json()


def over_limit() -> bytes:
    """A valid candidate padded with JSON whitespace to one byte over the limit."""
    raw = encode(candidate())
    return raw + b" " * (MAX_BODY_BYTES + 1 - len(raw))


async def chunked_over_limit() -> AsyncIterator[bytes]:
    """The same amount sent chunked: no Content-Length for the server to refuse on."""
    raw = over_limit()
    for start in range(0, len(raw), 256 * 1024):
        yield raw[start : start + 256 * 1024]


BASIC = "Basic " + base64.b64encode(f"ci:{TOKEN}".encode()).decode()

CANDIDATE_REJECTIONS = [
    # id, headers, body, status, field, words in the error
    ("no-token", {}, candidate(), 401, "Authorization", "unauthorized"),
    ("wrong-token", {"Authorization": "Bearer nope"}, candidate(), 401, "Authorization", "unauthorized"),
    (
        "token-prefix",
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        candidate(),
        401,
        "Authorization",
        "unauthorized",
    ),
    (
        "token-suffix",
        {"Authorization": f"Bearer {TOKEN}0"},
        candidate(),
        401,
        "Authorization",
        "unauthorized",
    ),
    ("empty-bearer", {"Authorization": "Bearer "}, candidate(), 401, "Authorization", "unauthorized"),
    ("wrong-scheme", {"Authorization": BASIC}, candidate(), 401, "Authorization", "unauthorized"),
    ("bare-token", {"Authorization": TOKEN}, candidate(), 401, "Authorization", "unauthorized"),
    ("bad-json", None, b'{"service": "notify",', 400, "body", "not valid JSON"),
    ("empty-body", None, b"", 400, "body", "empty body"),
    ("nan", None, b'{"service": NaN}', 400, "body", "NaN is not JSON"),
    ("not-utf8", None, b'{"service": "\xff"}', 400, "body", "UTF-8"),
    ("json-array", None, [candidate()], 422, "body", "expected a JSON object"),
    ("unknown-field", None, candidate(branch="main"), 422, "branch", "branch: unknown field"),
    ("unknown-service", None, candidate(service="payroll"), 422, "service", "unknown service 'payroll'"),
    ("service-not-string", None, candidate(service=7), 422, "service", "expected a string"),
    ("missing-version", None, candidate(version=_DROP), 422, "version", "version: required"),
    ("version-space", None, candidate(version="1.4 beta"), 422, "version", "not a version"),
    ("version-too-long", None, candidate(version="1" * 129), 422, "version", "not a version"),
    ("version-slash", None, candidate(version="../etc"), 422, "version", "not a version"),
    ("commit-not-hex", None, candidate(commit="xyz1234"), 422, "commit", "not a commit"),
    ("commit-too-short", None, candidate(commit="abcdef1"), 422, "commit", "40 or 64 hexadecimal"),
    ("commit-too-long", None, candidate(commit="a" * 41), 422, "commit", "40 or 64 hexadecimal"),
    (
        "committed-naive",
        None,
        candidate(committed_at="2026-03-02T14:05:00"),
        422,
        "committed_at",
        "no UTC offset",
    ),
    ("committed-words", None, candidate(committed_at="yesterday"), 422, "committed_at", "not an ISO-8601"),
    ("committed-number", None, candidate(committed_at=1772460300), 422, "committed_at", "ISO-8601"),
    ("unknown-component", None, with_component("db", "postgres:16"), 422, "components.db", "not a component"),
    ("missing-component", None, without_component("worker"), 422, "components.worker", "missing"),
    ("image-uppercase", None, with_component("api", "ghcr.io/CDS/api:1"), 422, "components.api", "lowercase"),
    ("digest-short", None, with_component("api", "ghcr.io/x/api@sha256:abc"), 422, "components.api", "64"),
    (
        "digest-md5",
        None,
        with_component("admin", "x/admin@md5:" + "a" * 32),
        422,
        "components.admin",
        "sha256",
    ),
    ("image-empty", None, with_component("api", ""), 422, "components.api", "empty image reference"),
    ("image-number", None, with_component("api", 5), 422, "components.api", "expected a string"),
    ("components-list", None, candidate(components=["api"]), 422, "components", "expected a JSON object"),
    ("unknown-suite", None, candidate(tests={"smoke": "passed"}), 422, "tests.smoke", "unit"),
    (
        "bad-test-status",
        None,
        candidate(tests={"unit": "skipped"}),
        422,
        "tests.unit",
        "'passed' or 'failed'",
    ),
    ("over-5-mib", None, over_limit(), 413, "body", "5 MiB"),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CANDIDATE_REJECTIONS],
)
async def test_candidate_rejections_store_nothing(
    client: Client,
    db: AsyncStore,
    headers: dict[str, str] | None,
    body: Any,
    status: int,
    field: str,
    words: str,
) -> None:
    got_status, answer = await post(client, "/candidates", body, headers)

    assert (got_status, answer["field"]) == (status, field), answer
    assert words in answer["error"]
    if status != 401:
        assert answer["error"].startswith(field)
    assert counts(db) == dict.fromkeys(TABLES, 0)


async def test_unauthorized_answer_challenges_for_a_bearer_token(client: Client) -> None:
    response = await client.get(f"{API_PREFIX}/releases", headers={"Authorization": "Bearer wrong"})

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await response.json() == {"error": "unauthorized", "field": "Authorization"}


async def test_chunked_body_over_the_limit_is_refused_while_reading(client: Client, db: AsyncStore) -> None:
    response = await client.post(f"{API_PREFIX}/candidates", data=chunked_over_limit(), headers=AUTH)

    assert response.status == 413
    assert (await response.json())["field"] == "body"
    assert counts(db) == dict.fromkeys(TABLES, 0)


async def test_a_body_of_exactly_5_mib_is_accepted(client: Client, db: AsyncStore) -> None:
    raw = encode(candidate())
    status, answer = await post(client, "/candidates", raw + b" " * (MAX_BODY_BYTES - len(raw)))

    assert (status, answer["status"]) == (201, "created")
    assert counts(db)["candidates"] == 1


async def test_all_problems_are_listed_when_there_are_several(client: Client) -> None:
    status, answer = await post(client, "/candidates", candidate(version="a b", commit="zz", extra=1))

    assert status == 422
    assert sorted(e["field"] for e in answer["errors"]) == ["commit", "extra", "version"]


async def test_candidate_is_created_with_digests_tests_and_an_audit_row(
    client: Client, db: AsyncStore, clock: Clock
) -> None:
    response = await client.post(
        f"{API_PREFIX}/candidates", json=candidate(), headers={**AUTH, "X-Request-Id": "ci-run-42"}
    )

    assert response.status == 201
    assert response.headers["X-Request-Id"] == "ci-run-42"
    answer = await response.json()
    assert answer["status"] == "created"
    assert answer["components"] == {
        "admin": {"image": "ghcr.io/cds-snc/notify-admin:1.4.0", "digest": None},
        "api": {"image": f"ghcr.io/cds-snc/notify-api@{DIGEST_A}", "digest": DIGEST_A},
        "worker": {"image": f"docker.io/library/nginx:1.27@{DIGEST_B}", "digest": DIGEST_B},
    }
    stored = db.sync.get_candidate("notify", "1.4.0")
    assert stored is not None
    assert stored.commit == COMMIT
    assert stored.committed_at == datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
    assert stored.components["worker"] == f"docker.io/library/nginx:1.27@{DIGEST_B}"
    assert db.sync.tests("notify", "1.4.0") == {"unit": {"status": "passed", "url": None}}
    [entry] = db.sync.audit_since(None)
    assert (entry.actor, entry.action, entry.subject, entry.request_id) == (
        "api",
        "candidate.created",
        "notify/1.4.0",
        "ci-run-42",
    )
    assert entry.at == clock.now


async def test_identical_repost_is_unchanged_even_spelled_differently(client: Client, db: AsyncStore) -> None:
    first, _ = await post(client, "/candidates", candidate())
    # The same instant in another zone, the same image in its fully qualified form, the commit in capitals.
    same = candidate(committed_at="2026-03-02T09:05:00-05:00", commit=COMMIT.upper())
    same["components"]["worker"] = f"docker.io/library/nginx:1.27@{DIGEST_B}"
    second, answer = await post(client, "/candidates", same)

    assert (first, second, answer["status"]) == (201, 200, "unchanged")
    assert counts(db) == {"candidates": 1, "candidate_tests": 1, "candidate_scans": 0, "audit": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"commit": "f" * 40}, "commit", id="commit"),
        pytest.param({"committed_at": "2026-03-01T00:00:00Z"}, "committed_at", id="committed_at"),
        pytest.param(
            {"components": candidate()["components"] | {"api": "ghcr.io/x/api:2"}},
            "components.api",
            id="image",
        ),
        pytest.param({"tests": {"unit": "failed"}}, "tests", id="tests"),
    ],
)
async def test_same_version_with_a_different_body_is_a_conflict(
    client: Client, db: AsyncStore, change: dict[str, Any], field: str
) -> None:
    await post(client, "/candidates", candidate())
    before = counts(db)

    status, answer = await post(client, "/candidates", candidate(**change))

    assert (status, answer["field"]) == (409, field)
    assert f"notify 1.4.0 is already registered with a different {field}" in answer["error"]
    assert counts(db) == before
    stored = db.sync.get_candidate("notify", "1.4.0")
    assert stored is not None and stored.commit == COMMIT


async def test_concurrent_identical_posts_create_once(client: Client, db: AsyncStore) -> None:
    results = await asyncio.gather(*(post(client, "/candidates", candidate()) for _ in range(6)))

    assert sorted(status for status, _ in results) == [200] * 5 + [201]
    assert counts(db)["candidates"] == counts(db)["audit"] == 1


async def test_the_example_config_accepts_its_service(db: AsyncStore, clock: Clock) -> None:
    app = web.Application()
    mount_api(app, db=db, config=load_config(EXAMPLE_CONFIG), token=TOKEN, clock=clock)
    client = await _client(app)
    try:
        status, _ = await post(client, "/candidates", candidate())
    finally:
        await client.close()
    assert status == 201


async def test_without_a_token_the_api_is_not_mounted(db: AsyncStore, config: Config, clock: Clock) -> None:
    app = web.Application()
    assert mount_api(app, db=db, config=config, token=None, clock=clock) is False
    assert mount_api(app, db=db, config=config, token="", clock=clock) is False
    with pytest.raises(ValueError, match="needs a token"):
        build_api_app(db=db, config=config, token="", clock=clock)
    client = await _client(app)
    try:
        response = await client.post(f"{API_PREFIX}/candidates", json=candidate(), headers={"Authorization": "Bearer "})
        assert response.status == 404
    finally:
        await client.close()
    assert counts(db) == dict.fromkeys(TABLES, 0)


async def test_unknown_routes_and_methods_answer_json(client: Client) -> None:
    missing = await client.get(f"{API_PREFIX}/nothing-here", headers=AUTH)
    wrong_method = await client.delete(f"{API_PREFIX}/releases", headers=AUTH)

    assert (missing.status, (await missing.json())["field"]) == (404, "path")
    assert (wrong_method.status, (await wrong_method.json())["field"]) == (405, "path")
    assert "GET" in wrong_method.headers["Allow"]


# --- test results -------------------------------------------------------------------------------------------


@pytest.fixture
async def registered(client: Client) -> Client:
    status, _ = await post(client, "/candidates", candidate())
    assert status == 201
    return client


async def test_test_results_are_recorded_once_and_replaced_on_change(registered: Client, db: AsyncStore) -> None:
    path = "/candidates/notify/1.4.0/tests"
    url = "https://ci.example/runs/7"
    first = await post(registered, path, {"suite": "integration", "status": "failed", "url": url})
    again = await post(registered, path, {"suite": "integration", "status": "failed", "url": url})
    fixed = await post(registered, path, {"suite": "integration", "status": "passed"})

    assert [(s, a["changed"]) for s, a in (first, again, fixed)] == [(200, True), (200, False), (200, True)]
    assert db.sync.tests("notify", "1.4.0")["integration"] == {"status": "passed", "url": None}
    actions = [e.action for e in db.sync.audit_since(None)]
    assert actions == ["candidate.created", "tests.reported", "tests.reported"]


TEST_REJECTIONS = [
    (
        "unknown-version",
        "/candidates/notify/9.9.9/tests",
        {"suite": "unit", "status": "passed"},
        404,
        "version",
    ),
    (
        "unknown-service",
        "/candidates/payroll/1.4.0/tests",
        {"suite": "unit", "status": "passed"},
        404,
        "version",
    ),
    ("bad-suite", "/candidates/notify/1.4.0/tests", {"suite": "smoke", "status": "passed"}, 422, "suite"),
    ("bad-status", "/candidates/notify/1.4.0/tests", {"suite": "unit", "status": "ok"}, 422, "status"),
    ("missing-status", "/candidates/notify/1.4.0/tests", {"suite": "unit"}, 422, "status"),
    (
        "unknown-field",
        "/candidates/notify/1.4.0/tests",
        {"suite": "unit", "status": "passed", "x": 1},
        422,
        "x",
    ),
    (
        "ftp-url",
        "/candidates/notify/1.4.0/tests",
        {"suite": "unit", "status": "failed", "url": "ftp://h/x"},
        422,
        "url",
    ),
    ("bad-json", "/candidates/notify/1.4.0/tests", b"{suite: unit}", 400, "body"),
    ("over-5-mib", "/candidates/notify/1.4.0/tests", b" " * (MAX_BODY_BYTES + 1), 413, "body"),
    (
        "short-commit",
        "/candidates/notify/1.4.0/tests",
        {"suite": "unit", "status": "failed", "commit": "0123456"},
        422,
        "commit",
    ),
    (
        "commit-number",
        "/candidates/notify/1.4.0/tests",
        {"suite": "unit", "status": "failed", "commit": 7},
        422,
        "commit",
    ),
    (
        "other-commit",
        "/candidates/notify/1.4.0/tests",
        {"suite": "unit", "status": "failed", "commit": "f" * 40},
        409,
        "commit",
    ),
    (
        "other-sha256-commit",
        "/candidates/notify/1.4.0/tests",
        {"suite": "unit", "status": "failed", "commit": "0" * 64},
        409,
        "commit",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"), [pytest.param(*case[1:], id=case[0]) for case in TEST_REJECTIONS]
)
async def test_test_result_rejections_store_nothing(
    registered: Client, db: AsyncStore, path: str, body: Any, status: int, field: str
) -> None:
    before = (counts(db), db.sync.tests("notify", "1.4.0"))

    got_status, answer = await post(registered, path, body)

    assert (got_status, answer["field"]) == (status, field), answer
    assert (counts(db), db.sync.tests("notify", "1.4.0")) == before


async def test_a_test_report_for_another_commit_is_refused_naming_both(registered: Client, db: AsyncStore) -> None:
    before = (counts(db), db.sync.tests("notify", "1.4.0"))
    other = "fedcba9876543210fedcba9876543210fedcba98"

    status, answer = await post(
        registered, "/candidates/notify/1.4.0/tests", {"suite": "integration", "status": "passed", "commit": other}
    )

    assert (status, answer["field"]) == (409, "commit"), answer
    assert other in answer["error"] and COMMIT in answer["error"]
    assert (counts(db), db.sync.tests("notify", "1.4.0")) == before


async def test_a_test_report_for_the_candidates_commit_is_accepted_in_any_case(
    registered: Client, db: AsyncStore
) -> None:
    body = {"suite": "integration", "status": "passed", "commit": COMMIT.upper()}

    status, answer = await post(registered, "/candidates/notify/1.4.0/tests", body)

    assert (status, answer["changed"]) == (200, True), answer
    assert db.sync.tests("notify", "1.4.0")["integration"]["status"] == "passed"
    [audit] = [e for e in db.sync.audit_since(None) if e.action == "tests.reported"]
    assert audit.detail["commit"] == COMMIT


async def test_test_results_need_the_token(registered: Client, db: AsyncStore) -> None:
    status, _ = await post(registered, "/candidates/notify/1.4.0/tests", {"suite": "unit", "status": "failed"}, {})

    assert status == 401
    assert db.sync.tests("notify", "1.4.0")["unit"]["status"] == "passed"


# --- vulnerability scans ------------------------------------------------------------------------------------


async def test_scan_stores_severity_counts_once(registered: Client, db: AsyncStore) -> None:
    report = trivy_report("CRITICAL", "HIGH", "HIGH", "LOW")
    status, answer = await post(registered, "/candidates/notify/1.4.0/scan", report)
    _, again = await post(registered, "/candidates/notify/1.4.0/scan", report)

    assert status == 200
    assert answer["counts"] == {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0}
    assert (answer["total"], answer["changed"], again["changed"]) == (4, True, False)
    stored = db.sync.scans("notify", "1.4.0").get("api")
    assert stored is not None and stored["counts"] == answer["counts"]
    assert [e.action for e in db.sync.audit_since(None)] == ["candidate.created", "scan.reported"]


async def test_a_new_scan_replaces_the_old_one(registered: Client, db: AsyncStore) -> None:
    await post(registered, "/candidates/notify/1.4.0/scan", trivy_report("CRITICAL"))
    status, answer = await post(registered, "/candidates/notify/1.4.0/scan", trivy_report())

    assert (status, answer["changed"], answer["total"]) == (200, True, 0)
    stored = db.sync.scans("notify", "1.4.0").get("api")
    assert stored is not None and stored["counts"]["CRITICAL"] == 0


DATA = Path(__file__).resolve().parent / "data"
ZERO = {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}


def real_report(name: str, artifact: str | None = "ghcr.io/cds-snc/notify-admin:1.4.0") -> dict[str, Any]:
    """A `trivy image -f json` report from tests/data (trivy_java.json is Trivy's own golden output).

    Renamed by default to the candidate's unpinned admin image, so that it is evidence about 1.4.0.
    """
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    if artifact is not None:
        data["ArtifactName"] = artifact
    return data


@pytest.mark.parametrize(
    ("name", "vulnerabilities", "secrets", "misconfigurations"),
    [
        # its third result is the "custom" class, whose Target is "" (refused with 422 before)
        ("trivy_java.json", ZERO | {"CRITICAL": 1}, ZERO, ZERO),
        ("trivy_secrets.json", ZERO | {"LOW": 1}, ZERO | {"CRITICAL": 2, "HIGH": 1}, ZERO),
        ("trivy_misconfig.json", ZERO | {"LOW": 1}, ZERO, ZERO | {"HIGH": 4, "LOW": 1}),
    ],
)
async def test_real_reports_are_read_and_every_class_is_counted(
    registered: Client,
    db: AsyncStore,
    name: str,
    vulnerabilities: dict[str, int],
    secrets: dict[str, int],
    misconfigurations: dict[str, int],
) -> None:
    status, answer = await post(registered, "/candidates/notify/1.4.0/scan", real_report(name))

    assert status == 200, answer
    assert answer["counts"] == vulnerabilities
    assert answer["secrets"] == {"counts": secrets, "total": sum(secrets.values())}
    assert answer["misconfigurations"] == {"counts": misconfigurations, "total": sum(misconfigurations.values())}
    stored = db.sync.scans("notify", "1.4.0").get("admin")
    assert stored is not None
    assert (stored["counts"], stored["secrets"]["counts"], stored["misconfigurations"]["counts"]) == (
        vulnerabilities,
        secrets,
        misconfigurations,
    )
    [audit] = [e for e in db.sync.audit_since(None) if e.action == "scan.reported"]
    assert audit.detail["secrets"]["counts"] == secrets


async def test_a_leaked_key_is_stored_by_rule_and_file_never_by_its_text(registered: Client, db: AsyncStore) -> None:
    status, _ = await post(registered, "/candidates/notify/1.4.0/scan", real_report("trivy_secrets.json"))

    assert status == 200
    stored = db.sync.scans("notify", "1.4.0").get("admin")
    assert stored is not None
    assert [(s["rule"], s["file"], s["line"]) for s in stored["secrets"]["top"]] == [
        ("aws-access-key-id", "/app/config.env", 3),
        ("aws-secret-access-key", "/app/config.env", 4),
        ("private-key", "/app/tests/fixtures/dev-signing.pem", 2),
    ]
    rows = db.sync.sql.query("SELECT summary AS text FROM candidate_scans UNION ALL SELECT detail FROM audit")
    everything = "\n".join(str(row["text"]) for row in rows)
    for text in ("****", "AWS_ACCESS_KEY_ID=", "n0tify-db-pa55", "BEGIN RSA"):
        assert text not in everything


def _bad_secret() -> dict[str, Any]:
    report = real_report("trivy_secrets.json")
    report["Results"][2]["Secrets"][1]["Severity"] = "SEVERE"
    return report


def _bad_severity() -> dict[str, Any]:
    report = trivy_report("HIGH")
    report["Results"][0]["Vulnerabilities"][0]["Severity"] = "SEVERE"
    return report


SCAN_REJECTIONS = [
    ("wrong-severity", "1.4.0", _bad_severity(), 422, "Results[0].Vulnerabilities[0].Severity"),
    (
        "no-schema-version",
        "1.4.0",
        {k: v for k, v in trivy_report().items() if k != "SchemaVersion"},
        422,
        "SchemaVersion",
    ),
    ("results-not-list", "1.4.0", trivy_report() | {"Results": {"Target": "x"}}, 422, "Results"),
    ("secret-severity", "1.4.0", _bad_secret(), 422, "Results[2].Secrets[1].Severity"),
    ("target-not-text", "1.4.0", trivy_report() | {"Results": [{"Target": None}]}, 422, "Results[0].Target"),
    ("json-array", "1.4.0", [trivy_report()], 422, "body"),
    ("not-json", "1.4.0", b"<html>trivy</html>", 400, "body"),
    ("over-5-mib", "1.4.0", encode(trivy_report()) + b" " * MAX_BODY_BYTES, 413, "body"),
    ("unknown-candidate", "9.9.9", trivy_report("LOW"), 404, "version"),
    (
        "repo-digests-not-list",
        "1.4.0",
        trivy_report() | {"Metadata": {"RepoDigests": "x"}},
        422,
        "Metadata.RepoDigests",
    ),
    (
        "repo-digest-number",
        "1.4.0",
        trivy_report() | {"Metadata": {"RepoDigests": [7]}},
        422,
        "Metadata.RepoDigests[0]",
    ),
    ("image-id-number", "1.4.0", trivy_report() | {"Metadata": {"ImageID": 7}}, 422, "Metadata.ImageID"),
    # evidence about another image: 409 naming the report's artifact and the candidate's images
    (
        "another-service",
        "1.4.0",
        trivy_report("LOW", artifact="checkout-api:2.0.0", repo_digests=()),
        409,
        "ArtifactName",
    ),
    (
        "pinned-other-digest",
        "1.4.0",
        trivy_report(repo_digests=(f"ghcr.io/cds-snc/notify-api@{DIGEST_C}",)),
        409,
        "ArtifactName",
    ),
    ("pinned-tag-only", "1.4.0", trivy_report(repo_digests=()), 409, "ArtifactName"),
    (
        "other-tag",
        "1.4.0",
        trivy_report(artifact="ghcr.io/cds-snc/notify-admin:1.3.9", repo_digests=()),
        409,
        "ArtifactName",
    ),
    (
        "other-registry",
        "1.4.0",
        trivy_report(artifact="docker.io/cds-snc/notify-admin:1.4.0", repo_digests=()),
        409,
        "ArtifactName",
    ),
    (
        "hub-tag-other-digest",
        "1.4.0",
        trivy_report(artifact="nginx:1.27", repo_digests=(f"nginx@{DIGEST_C}",)),
        409,
        "ArtifactName",
    ),
    ("tarball", "1.4.0", real_report("trivy_java.json", artifact=None), 409, "ArtifactName"),
]


@pytest.mark.parametrize(
    ("version", "body", "status", "field"), [pytest.param(*case[1:], id=case[0]) for case in SCAN_REJECTIONS]
)
async def test_scan_rejections_store_nothing(
    registered: Client, db: AsyncStore, version: str, body: Any, status: int, field: str
) -> None:
    before = counts(db)

    got_status, answer = await post(registered, f"/candidates/notify/{version}/scan", body)

    assert (got_status, answer["field"]) == (status, field), answer
    assert answer["error"].startswith(field)
    assert counts(db) == before


def scan_checklist(db: AsyncStore) -> list[tuple[str, bool, str]]:
    """The vulnerability_scan item of notify 1.4.0's checklist, judged on what the store holds, as the engine does."""
    env = parse_config(
        CONFIG | {"environments": CONFIG["environments"] | {"prod": CONFIG["environments"]["prod"] | _SCAN_ITEM}}
    ).environments["prod"]
    candidate = db.sync.get_candidate("notify", "1.4.0")
    assert candidate is not None
    scans = {name: ScanSummary.from_dict(summary) for name, summary in db.sync.scans("notify", "1.4.0").items()}
    result = evaluate_checklist(env, Evidence(scans=scans, components=candidate.components))
    return [(item.item, item.ok, item.reason) for item in result.items]


_SCAN_ITEM: dict[str, Any] = {"checklist": ["vulnerability_scan"]}


async def test_a_scan_of_another_image_is_refused_naming_both_and_is_no_evidence(
    registered: Client, db: AsyncStore
) -> None:
    before = counts(db)

    status, answer = await post(
        registered, "/candidates/notify/1.4.0/scan", trivy_report(artifact="checkout-api:2.0.0", repo_digests=())
    )

    assert (status, answer["field"]) == (409, "ArtifactName"), answer
    for named in (
        "'checkout-api:2.0.0'",
        f"api = ghcr.io/cds-snc/notify-api@{DIGEST_A}",
        "admin = ghcr.io/cds-snc/notify-admin:1.4.0",
        f"worker = docker.io/library/nginx:1.27@{DIGEST_B}",
    ):
        assert named in answer["error"]
    assert counts(db) == before and db.sync.scans("notify", "1.4.0") == {}
    assert scan_checklist(db) == [("vulnerability_scan", False, "no vulnerability scan reported")]


async def test_a_foreign_scan_does_not_replace_the_candidates_own(registered: Client, db: AsyncStore) -> None:
    assert (await post(registered, "/candidates/notify/1.4.0/scan", trivy_report("CRITICAL")))[0] == 200
    before = (counts(db), db.sync.scans("notify", "1.4.0"))

    clean_elsewhere = trivy_report(artifact="ghcr.io/cds-snc/checkout-api:2.0.0", repo_digests=())
    status, _ = await post(registered, "/candidates/notify/1.4.0/scan", clean_elsewhere)

    assert status == 409
    assert (counts(db), db.sync.scans("notify", "1.4.0")) == before
    [(_, ok, reason)] = scan_checklist(db)
    assert not ok and "1 CRITICAL" in reason


@pytest.mark.parametrize(
    ("artifact", "repo_digests", "image_id", "component", "matched_by"),
    [
        # the pinned api image under any tag or name: its digest is what counts
        ("ghcr.io/cds-snc/notify-api:1.4.0", (f"ghcr.io/cds-snc/notify-api@{DIGEST_A}",), None, "api", "digest"),
        ("notify-api-build:ci-77", (f"ghcr.io/cds-snc/notify-api@{DIGEST_A}",), None, "api", "digest"),
        (f"ghcr.io/cds-snc/notify-api@{DIGEST_A}", (), None, "api", "digest"),
        ("ghcr.io/cds-snc/notify-api:1.4.0", (), DIGEST_A, "api", "digest"),
        # the unpinned admin image by repository and tag, whatever digest it was built as
        ("ghcr.io/cds-snc/notify-admin:1.4.0", (f"ghcr.io/cds-snc/notify-admin@{DIGEST_C}",), None, "admin", "tag"),
        # Docker Hub defaults: nginx:1.27 is docker.io/library/nginx:1.27
        ("docker.io/library/nginx:1.27", (f"nginx@{DIGEST_B}",), None, "worker", "digest"),
        ("nginx:1.27", (), None, "worker", "tag"),  # pinned with a tag, and the report names no digest at all
    ],
)
async def test_a_scan_of_one_of_the_candidates_images_is_accepted(
    registered: Client,
    db: AsyncStore,
    artifact: str,
    repo_digests: tuple[str, ...],
    image_id: str | None,
    component: str,
    matched_by: str,
) -> None:
    report = trivy_report("HIGH", artifact=artifact, repo_digests=repo_digests)
    if image_id is not None:
        report["Metadata"]["ImageID"] = image_id

    status, answer = await post(registered, "/candidates/notify/1.4.0/scan", report)

    assert status == 200, answer
    assert (answer["component"], answer["matched_by"], answer["artifact"]) == (component, matched_by, artifact)
    [audit] = [e for e in db.sync.audit_since(None) if e.action == "scan.reported"]
    assert (audit.detail["component"], audit.detail["matched_by"]) == (component, matched_by)
    assert set(db.sync.scans("notify", "1.4.0")) == {component}, "kept as that image's scan"
    # Evidence about that image only: the candidate's other images still need their own scans.
    [(item, ok, reason)] = scan_checklist(db)
    others = sorted({"api", "admin", "worker"} - {component})
    assert (item, ok) == ("vulnerability_scan", False)
    assert all(f"no vulnerability scan reported for {name}" in reason for name in others), reason


async def test_every_image_scanned_satisfies_the_checklist_and_each_scan_is_kept(
    registered: Client, db: AsyncStore
) -> None:
    reports = {
        "api": trivy_report("HIGH"),
        "admin": trivy_report("LOW", artifact="ghcr.io/cds-snc/notify-admin:1.4.0", repo_digests=()),
        "worker": trivy_report(artifact="nginx:1.27", repo_digests=(f"nginx@{DIGEST_B}",)),
    }
    for name, report in reports.items():
        status, answer = await post(registered, "/candidates/notify/1.4.0/scan", report)
        assert (status, answer["component"]) == (200, name), answer

    assert set(db.sync.scans("notify", "1.4.0")) == {"api", "admin", "worker"}, "no scan replaced another's"
    [(item, ok, reason)] = scan_checklist(db)
    assert (item, ok) == ("vulnerability_scan", True), reason


async def test_scan_needs_the_token(registered: Client, db: AsyncStore) -> None:
    status, _ = await post(registered, "/candidates/notify/1.4.0/scan", trivy_report(), {"Authorization": "Bearer x"})

    assert status == 401
    assert db.sync.scans("notify", "1.4.0") == {}


# --- reads: releases, manifest, audit, notes


def release(
    db: AsyncStore, clock: Clock, service: str, env: str, version: str, outcome: ReleaseState, **fields: Any
) -> int:
    store = db.sync
    created = store.create_release(
        service=service,
        env=env,
        version=version,
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=clock.advance(minutes=1),
        take_lock=True,
    )
    store.transition(
        created.id,
        ReleaseState.DEPLOYING,
        actor="release-bot",
        detail="deploying",
        now=clock.advance(minutes=1),
    )
    store.transition(created.id, outcome, actor="U01RELEASE", detail="done", now=clock.advance(minutes=5), **fields)
    return created.id


async def test_releases_newest_first_filtered_and_limited(client: Client, db: AsyncStore, clock: Clock) -> None:
    staging = release(db, clock, "notify", "staging", "1.3.0", ReleaseState.SUCCEEDED)
    other = release(db, clock, "billing", "prod", "7.0.0", ReleaseState.SUCCEEDED)
    prod = release(db, clock, "notify", "prod", "1.3.0", ReleaseState.SUCCEEDED)
    failed = release(db, clock, "notify", "staging", "1.4.0", ReleaseState.FAILED, error="deploy exited 1")

    _, everything = await get(client, "/releases")
    _, notify = await get(client, "/releases", service="notify")
    _, notify_staging = await get(client, "/releases", service="notify", env="staging")
    _, newest_two = await get(client, "/releases", limit="2")

    assert [r["id"] for r in everything["releases"]] == [failed, prod, other, staging]
    assert [r["id"] for r in notify["releases"]] == [failed, prod, staging]
    assert [r["id"] for r in notify_staging["releases"]] == [failed, staging]
    assert [r["id"] for r in newest_two["releases"]] == [failed, prod]
    latest = notify["releases"][0]
    assert latest == {
        "id": failed,
        "service": "notify",
        "env": "staging",
        "version": "1.4.0",
        "kind": "deploy",
        "state": "failed",
        "requested_by": "U01RELEASE",
        "requested_at": (clock.now - timedelta(minutes=6)).isoformat(),
        "started_at": (clock.now - timedelta(minutes=5)).isoformat(),
        "finished_at": clock.now.isoformat(),
        "verdict": None,
        "change_failure": False,
        "rollback_of": None,
        "error": "deploy exited 1",
    }


async def test_releases_default_limit_is_20(client: Client, db: AsyncStore, clock: Clock) -> None:
    for i in range(21):
        release(db, clock, "notify", "staging", f"1.0.{i}", ReleaseState.SUCCEEDED)

    _, answer = await get(client, "/releases", service="notify")

    assert [r["version"] for r in answer["releases"]] == [f"1.0.{i}" for i in range(20, 0, -1)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"limit": "0"}, "limit", id="limit-0"),
        pytest.param({"limit": "201"}, "limit", id="limit-201"),
        pytest.param({"limit": "ten"}, "limit", id="limit-word"),
        pytest.param({"limit": "-1"}, "limit", id="limit-negative"),
        pytest.param({"service": "payroll"}, "service", id="unknown-service"),
        pytest.param({"env": "qa"}, "env", id="unknown-env"),
    ],
)
async def test_releases_bad_query(client: Client, params: dict[str, str], field: str) -> None:
    status, answer = await get(client, "/releases", **params)

    assert (status, answer["field"]) == (400, field)
    assert answer["error"].startswith(f"{field}: ")


async def test_manifest_of_what_runs_in_an_environment(registered: Client, db: AsyncStore, clock: Clock) -> None:
    release_id = release(db, clock, "notify", "prod", "1.4.0", ReleaseState.SUCCEEDED)
    release(db, clock, "notify", "prod", "1.5.0", ReleaseState.FAILED)  # a failed release changes nothing there

    status, manifest = await get(registered, "/manifest", service="notify", env="prod")

    assert status == 200
    assert manifest == {
        "service": "notify",
        "env": "prod",
        "version": "1.4.0",
        "commit": COMMIT,
        "released_at": (clock.now - timedelta(minutes=7)).isoformat(),
        "released_by": "U01RELEASE",
        "release_id": release_id,
        "components": {
            "admin": {"image": "ghcr.io/cds-snc/notify-admin:1.4.0", "digest": None},
            "api": {"image": f"ghcr.io/cds-snc/notify-api@{DIGEST_A}", "digest": DIGEST_A},
            "worker": {"image": f"docker.io/library/nginx:1.27@{DIGEST_B}", "digest": DIGEST_B},
        },
    }


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        pytest.param({"service": "notify", "env": "staging"}, 404, "env", id="nothing-released"),
        pytest.param({"service": "payroll", "env": "prod"}, 400, "service", id="unknown-service"),
        pytest.param({"service": "notify", "env": "qa"}, 400, "env", id="unknown-env"),
    ],
)
async def test_manifest_errors(
    registered: Client, db: AsyncStore, clock: Clock, params: dict[str, str], status: int, field: str
) -> None:
    release(db, clock, "notify", "prod", "1.4.0", ReleaseState.SUCCEEDED)

    got_status, answer = await get(registered, "/manifest", **params)

    assert (got_status, answer["field"]) == (status, field)


async def test_audit_since(client: Client, db: AsyncStore, clock: Clock) -> None:
    await post(client, "/candidates", candidate())
    cutoff = clock.advance(hours=1)
    await client.post(
        f"{API_PREFIX}/candidates/notify/1.4.0/tests",
        json={"suite": "unit", "status": "failed"},
        headers={**AUTH, "X-Request-Id": "run-9"},
    )

    _, everything = await get(client, "/audit")
    status, recent = await get(client, "/audit", since=cutoff.astimezone(UTC).isoformat())

    assert [e["action"] for e in everything["entries"]] == ["candidate.created", "tests.reported"]
    assert status == 200
    [entry] = recent["entries"]
    assert entry == {
        "id": everything["entries"][1]["id"],
        "at": cutoff.isoformat(),
        "actor": "api",
        "action": "tests.reported",
        "subject": "notify/1.4.0",
        "detail": {"suite": "unit", "status": "failed", "url": None},
        "request_id": "run-9",
    }


@pytest.mark.parametrize("since", ["2026-03-02", "2026-03-02T10:00:00", "last week"])
async def test_audit_since_must_be_an_instant_with_offset(client: Client, since: str) -> None:
    status, answer = await get(client, "/audit", since=since)

    assert (status, answer["field"]) == (400, "since")


def sample_notes() -> ReleaseNotes:
    ada = Person("Ada Lovelace", "ada@example.org")
    entry = NoteEntry(
        sha="c0ffee1" + "0" * 33,
        type="feat",
        scope="api",
        description="send SMS in French",
        breaking=False,
        breaking_note=None,
        pr_numbers=(42,),
        authors=(ada,),
    )
    return ReleaseNotes(
        sections=(NoteSection("features", "Features", (entry,)),),
        contributors=(ada,),
        commit_count=1,
        merge_count=0,
        reverted_count=0,
    )


async def test_notes_of_a_version_as_markdown(client: Client, db: AsyncStore, clock: Clock) -> None:
    release(db, clock, "notify", "staging", "1.3.0", ReleaseState.SUCCEEDED)
    release(db, clock, "notify", "staging", "1.4.0", ReleaseState.SUCCEEDED, notes=sample_notes().to_dict())

    response = await client.get(f"{API_PREFIX}/notes", params={"service": "notify", "to": "1.4.0"}, headers=AUTH)

    assert response.status == 200
    assert response.content_type == "text/markdown"
    text = await response.text()
    assert text.startswith("# notify 1.3.0..1.4.0\n")
    assert "**api:** send SMS in French (#42, `c0ffee1`) — Ada Lovelace" in text


async def test_notes_stored_as_markdown_are_served_as_is(client: Client, db: AsyncStore, clock: Clock) -> None:
    release(db, clock, "notify", "prod", "1.4.0", ReleaseState.SUCCEEDED, notes={"markdown": "# 1.4.0\n\n- fix\n"})

    response = await client.get(
        f"{API_PREFIX}/notes", params={"service": "notify", "from": "", "to": "1.4.0"}, headers=AUTH
    )

    assert (response.status, await response.text()) == (200, "# 1.4.0\n\n- fix\n")


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        pytest.param({"service": "notify", "to": "1.9.0"}, 404, "to", id="no-release"),
        pytest.param({"service": "notify", "to": "1.3.0"}, 404, "to", id="release-without-notes"),
        pytest.param({"service": "notify", "from": "1.0.0", "to": "1.4.0"}, 404, "to", id="other-range"),
        pytest.param({"service": "notify", "to": "1 4"}, 400, "to", id="bad-version"),
        pytest.param({"service": "notify"}, 400, "to", id="no-to"),
        pytest.param({"to": "1.4.0"}, 400, "service", id="no-service"),
    ],
)
async def test_notes_errors(
    client: Client, db: AsyncStore, clock: Clock, params: dict[str, str], status: int, field: str
) -> None:
    release(db, clock, "notify", "staging", "1.3.0", ReleaseState.SUCCEEDED)
    release(db, clock, "notify", "staging", "1.4.0", ReleaseState.SUCCEEDED, notes=sample_notes().to_dict())

    got_status, answer = await get(client, "/notes", **params)

    assert (got_status, answer["field"]) == (status, field)


# --- the releases `limit` cap, as the README documents it


@pytest.mark.parametrize("limit", ["201", "1000", "99999999999999999999"])
async def test_a_limit_over_the_cap_is_refused_naming_the_cap(
    client: Client, db: AsyncStore, clock: Clock, limit: str
) -> None:
    release(db, clock, "notify", "staging", "1.4.0", ReleaseState.SUCCEEDED)
    before = counts(db)

    status, answer = await get(client, "/releases", limit=limit)

    assert (status, answer) == (
        400,
        {"error": f"limit: expected a whole number from 1 to 200, got {limit[:20]!r}", "field": "limit"},
    )
    assert counts(db) == before


async def test_the_cap_itself_is_accepted(client: Client, db: AsyncStore, clock: Clock) -> None:
    for i in range(3):
        release(db, clock, "notify", "staging", f"1.0.{i}", ReleaseState.SUCCEEDED)

    status, answer = await get(client, "/releases", limit="200")

    assert status == 200
    assert [r["version"] for r in answer["releases"]] == ["1.0.2", "1.0.1", "1.0.0"]


async def test_notes_of_a_version_with_build_metadata_through_the_bearer_api(
    client: Client, db: AsyncStore, clock: Clock
) -> None:
    release(db, clock, "notify", "staging", "1.2.3+build.7", ReleaseState.SUCCEEDED, notes={"markdown": "# ok\n"})

    encoded = await client.get(f"{API_PREFIX}/notes?service=notify&to=1.2.3%2Bbuild.7", headers=AUTH)
    unencoded = await client.get(f"{API_PREFIX}/notes?service=notify&to=1.2.3+build.7", headers=AUTH)

    assert (encoded.status, await encoded.text()) == (200, "# ok\n")
    # A raw `+` in a query means a space: that is what the old, unencoded Slack link sent.
    assert unencoded.status == 400
    assert (await unencoded.json())["error"].startswith("to: '1.2.3 build.7' is not a version: use 1-128 of")

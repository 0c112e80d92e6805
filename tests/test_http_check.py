"""HTTP checks against a real aiohttp endpoint on port 0: status, JSON fields, and unreachable endpoints."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from bot.config import Check
from bot.core.verdicts import Measurement, Verdict
from bot.http_auth import Credentials
from bot.metrics.base import MeasureError
from bot.metrics.http_check import HttpChecker, extract_field
from bot.metrics.run import measure_with_retries
from tests.fakes.auth import Gate
from tests.fakes.tls import SelfSigned
from tests.prometheus_harness import free_port

AT = datetime(2024, 11, 5, 15, 30, tzinfo=UTC)


class Endpoint:
    """A service's health endpoint whose status and body the test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.body = '{"status": "ok"}'
        self.content_type = "application/json"
        self.hang = False
        self.release = asyncio.Event()
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.gate = Gate()  # credentials every request must carry (none by default)
        self.redirects: dict[str, str] = {}  # path -> where a 302 sends it
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        self.headers.append(dict(request.headers))
        if self.hang:
            await self.release.wait()
        if request.path == "/old-health":
            raise web.HTTPMovedPermanently("/health")
        if request.path in self.redirects:
            raise web.HTTPFound(self.redirects[request.path])
        return web.Response(status=self.status, text=self.body, content_type=self.content_type)


@asynccontextmanager
async def serving(context: ssl.SSLContext | None = None) -> AsyncIterator[Endpoint]:
    """An Endpoint on a free port; HTTPS with ``context``."""
    server = Endpoint()
    app = web.Application(middlewares=[server.gate.middleware()])
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server.url = f"{'https' if context else 'http'}://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    server.release.set()
    await runner.cleanup()


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    async with serving() as server:
        yield server


def check(url: str, **fields: Any) -> Check:
    return Check.model_validate({"name": "health", "http": url, **fields})


async def run(
    target: Check,
    *,
    retries: int = 2,
    errors: list[Measurement] | None = None,
    credentials: Credentials | None = None,
) -> Measurement:
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    async def record(measurement: Measurement) -> None:
        if errors is not None:
            errors.append(measurement)

    async with HttpChecker(timeout=0.5, credentials=credentials) as checker:
        return await measure_with_retries(
            checker,
            target,
            AT,
            service="notify",
            environment="prod",
            version="1.4.2",
            retries=retries,
            delay=timedelta(seconds=1),
            sleep=no_wait,
            on_error=record,
        )


async def test_expected_status_passes(endpoint: Endpoint) -> None:
    result = await run(check(endpoint.url + "/health"))
    assert result.verdict is Verdict.PASS
    assert result.summary == "health = 200 (pass if == 200)"
    assert result.query == endpoint.url + "/health"


async def test_wrong_status_from_a_reachable_endpoint_fails(endpoint: Endpoint) -> None:
    endpoint.status = 503
    result = await run(check(endpoint.url + "/health"))
    assert result.verdict is Verdict.FAIL
    assert result.summary == "health = 503 (pass if == 200)"


async def test_expect_status(endpoint: Endpoint) -> None:
    endpoint.status = 204
    endpoint.body = ""
    assert (await run(check(endpoint.url + "/health", expect_status=204))).verdict is Verdict.PASS
    assert (await run(check(endpoint.url + "/health"))).verdict is Verdict.FAIL


async def test_expected_redirect_is_observed_not_followed(endpoint: Endpoint) -> None:
    result = await run(check(endpoint.url + "/old-health", expect_status=301))
    assert result.verdict is Verdict.PASS
    assert endpoint.paths == ["/old-health"]


async def test_url_placeholders_are_rendered(endpoint: Endpoint) -> None:
    await run(check(endpoint.url + "/{service}/{environment}/health"))
    assert endpoint.paths == ["/notify/prod/health"]


async def test_json_field_is_judged(endpoint: Endpoint) -> None:
    endpoint.body = '{"checks": {"db": {"latency_ms": 12.5}}}'
    target = check(endpoint.url + "/health", json_field="checks.db.latency_ms", pass_if="< 50", fail_if=">= 200")
    result = await run(target)
    assert result.verdict is Verdict.PASS
    assert result.summary == "health = 12.5 (pass if < 50, fail if >= 200)"

    endpoint.body = '{"checks": {"db": {"latency_ms": 250}}}'
    assert (await run(target)).verdict is Verdict.FAIL


async def test_json_field_with_wrong_status_fails_without_retry(endpoint: Endpoint) -> None:
    endpoint.status = 500
    endpoint.body = '{"checks": {"db": {"latency_ms": 1}}}'
    target = check(endpoint.url + "/health", json_field="checks.db.latency_ms", pass_if="< 50")
    result = await run(target)
    assert result.verdict is Verdict.FAIL
    assert result.summary.startswith(f"health: HTTP 500 from {endpoint.url}/health (expected 200)")
    assert len(endpoint.paths) == 1


async def test_missing_json_field_is_empty(endpoint: Endpoint) -> None:
    target = check(endpoint.url + "/health", json_field="checks.db.latency_ms", pass_if="< 50")
    result = await run(target)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.detail == "empty result; on_empty: inconclusive"


async def test_body_that_is_not_json_is_unavailable(endpoint: Endpoint) -> None:
    endpoint.body = "<html>ok</html>"
    endpoint.content_type = "text/html"
    errors: list[Measurement] = []
    target = check(endpoint.url + "/health", json_field="status", pass_if="== 1")
    result = await run(target, errors=errors)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary.startswith("metrics unavailable: ")
    assert "did not answer JSON: <html>ok</html>" in result.summary
    assert len(errors) == 3


async def test_connection_refused_is_error_then_inconclusive_never_fail() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    errors: list[Measurement] = []
    result = await run(check(url), errors=errors)
    assert [e.verdict for e in errors] == [Verdict.ERROR] * 3
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary.startswith(f"metrics unavailable: cannot connect to {url}")
    assert result.attempts == 3


async def test_hanging_endpoint_times_out(endpoint: Endpoint) -> None:
    endpoint.hang = True
    result = await run(check(endpoint.url + "/health"), retries=0)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary == f"metrics unavailable: GET {endpoint.url}/health timed out after 0.5s"


# --- credentials ---------------------------------------------------------------------------------------------

SECRET = "s3cret-health-token"
ENV = {"HEALTH_TOKEN": SECRET, "HEALTH_PASSWORD": SECRET, "TENANT": "team-a"}
AUTHS = [
    ({"token_env": "HEALTH_TOKEN"}, {"Authorization": f"Bearer {SECRET}"}),
    (
        {"username": "probe", "password_env": "HEALTH_PASSWORD"},
        {"Authorization": "Basic cHJvYmU6czNjcmV0LWhlYWx0aC10b2tlbg=="},
    ),
    (
        {"headers_env": {"X-Scope-OrgID": "TENANT"}, "headers": {"X-Probe": "release-bot"}},
        {"X-Scope-OrgID": "team-a", "X-Probe": "release-bot"},
    ),
]


@pytest.mark.parametrize(("auth", "sent"), AUTHS, ids=["bearer", "basic", "headers"])
async def test_the_check_sends_its_credentials(endpoint: Endpoint, auth: dict[str, Any], sent: dict[str, str]) -> None:
    endpoint.gate.required = sent

    result = await run(check(endpoint.url + "/health", auth=auth), credentials=Credentials(environ=ENV))

    assert result.verdict is Verdict.PASS, result
    assert endpoint.gate.refused == 0


async def test_refused_credentials_are_inconclusive_at_once_never_fail(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint.gate.required = {"Authorization": "Bearer the-right-one"}
    errors: list[Measurement] = []
    wrong = check(endpoint.url + "/health", auth={"token_env": "HEALTH_TOKEN"})

    refused = await run(wrong, errors=errors, credentials=Credentials(environ=ENV))
    missing = await run(check(endpoint.url + "/health"))

    url = endpoint.url + "/health"
    assert refused.verdict is Verdict.INCONCLUSIVE and missing.verdict is Verdict.INCONCLUSIVE
    assert (
        refused.summary
        == f"metrics unavailable: GET {url} answered HTTP 401: credentials refused or missing (see auth)"
    )
    assert refused.attempts == 1 and len(errors) == 1  # the same credentials would be refused again
    # The 401 quoted the token it was sent; no summary, detail or log line passes that on.
    shown = [caplog.text, *(m.summary for m in [refused, *errors]), *(m.detail or "" for m in [refused, *errors])]
    assert all(SECRET not in text for text in shown), shown


async def test_an_expected_401_is_observed(endpoint: Endpoint) -> None:
    endpoint.gate.required = {"Authorization": "Bearer x"}
    assert (await run(check(endpoint.url + "/health", expect_status=401))).verdict is Verdict.PASS


async def test_an_https_endpoint_is_trusted_only_with_its_ca_file(tls: SelfSigned) -> None:
    async with serving(tls.server_context()) as secure:
        untrusted = await run(check(secure.url + "/health"), retries=0)
        trusted = await run(
            check(secure.url + "/health", auth={"ca_file": tls.cert.name}),
            credentials=Credentials(tls.cert.parent, environ={}),
        )

    assert untrusted.verdict is Verdict.INCONCLUSIVE
    assert "certificate verify failed" in untrusted.summary
    assert trusted.verdict is Verdict.PASS, trusted
    assert secure.paths == ["/health"]


async def test_a_missing_variable_is_named_and_nothing_is_sent(endpoint: Endpoint) -> None:
    result = await run(
        check(endpoint.url + "/health", auth={"token_env": "HEALTH_TOKEN"}), credentials=Credentials(environ={})
    )

    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary == "metrics unavailable: auth: token_env: environment variable HEALTH_TOKEN is not set"
    assert result.attempts == 1
    assert endpoint.paths == []


async def test_headers_from_the_environment_are_not_carried_through_a_redirect(endpoint: Endpoint) -> None:
    async with serving() as elsewhere:
        endpoint.body = ""
        target = check(f"{endpoint.url}/moved", auth={"headers_env": {"X-Scope-OrgID": "TENANT"}})
        endpoint.redirects["/moved"] = f"{elsewhere.url}/health"  # another origin

        result = await run(target, credentials=Credentials(environ=ENV))

    assert result.summary == "health = 302 (pass if == 200)"  # the redirect is the answer, not followed
    assert endpoint.headers[0]["X-Scope-OrgID"] == "team-a"
    assert elsewhere.paths == []


@pytest.mark.parametrize(
    ("body", "path", "value"),
    [
        ({"a": {"b": 3}}, "a.b", 3.0),
        ({"a": [{"b": 1}, {"b": 2}]}, "a.1.b", 2.0),
        ({"ok": True}, "ok", 1.0),
        ({"ok": False}, "ok", 0.0),
        ({"v": "0.25"}, "v", 0.25),
        ({"a": {}}, "a.b", None),
        ({"a": None}, "a.b", None),
        ({"a": [1]}, "a.5", None),
        ([5, 6], "1", 6.0),
    ],
)
def test_extract_field(body: Any, path: str, value: float | None) -> None:
    assert extract_field(body, path) == value


@pytest.mark.parametrize("body", [{"v": "fast"}, {"v": {"nested": 1}}, {"v": [1, 2]}])
def test_extract_field_refuses_non_numbers(body: Any) -> None:
    with pytest.raises(MeasureError, match="json_field 'v' is .*, not a number") as info:
        extract_field(body, "v")
    assert info.value.retryable is False

"""The Prometheus client against a fake Prometheus (a real aiohttp server on port 0) for every error shape,
and measure_with_retries turning backend errors into ERROR attempts and a final INCONCLUSIVE."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from bot.config import Check, Metrics
from bot.core.verdicts import Measurement, Verdict
from bot.http_auth import Credentials, CredentialsError
from bot.metrics.base import MeasureError
from bot.metrics.prometheus import PrometheusClient
from bot.metrics.run import CheckRunner, measure_with_retries
from tests.fakes.auth import Gate
from tests.fakes.tls import SelfSigned
from tests.prometheus_harness import free_port

AT = datetime(2024, 11, 5, 15, 30, tzinfo=UTC)


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [AT.timestamp(), value]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class FakePrometheus:
    """Answers ``/api/v1/query`` (GET or POST form) with queued (status, body) replies; records queries."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, str]] = []
        self.requests: list[dict[str, str]] = []
        self.hang = False
        self.release = asyncio.Event()
        self.gate = Gate()  # credentials every query must carry (none by default)
        self.url = ""

    def reply(self, body: Any, status: int = 200) -> None:
        self.replies.append((status, body if isinstance(body, str) else json.dumps(body)))

    async def query(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        params.update({k: str(v) for k, v in (await request.post()).items()})
        params["method"] = request.method
        self.requests.append(params)
        if self.hang:
            await self.release.wait()  # held open until the test ends: the client must time out
        status, body = self.replies.pop(0)
        return web.Response(status=status, text=body, content_type="application/json")


@asynccontextmanager
async def serving(context: ssl.SSLContext | None = None) -> AsyncIterator[FakePrometheus]:
    """A FakePrometheus on a free port; HTTPS with ``context``."""
    server = FakePrometheus()
    app = web.Application(middlewares=[server.gate.middleware()])
    app.router.add_route("*", "/api/v1/query", server.query)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server.url = f"{'https' if context else 'http'}://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    server.release.set()
    await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakePrometheus]:
    async with serving() as server:
        yield server


@pytest.fixture
async def client(fake: FakePrometheus) -> AsyncIterator[PrometheusClient]:
    async with PrometheusClient(fake.url + "/", timeout=0.5) as prometheus:
        yield prometheus


CHECK = Check.model_validate(
    {
        "name": "error rate",
        "prometheus": 'sum(rate(http_requests_total{service="{service}",code=~"5.."}[5m]))',
        "pass_if": "< 0.01",
        "fail_if": ">= 0.05",
    }
)


async def measure(client: PrometheusClient, check: Check = CHECK) -> float | None:
    return await client.measure(check, AT, service="notify", environment="prod", version="1.4.2")


async def test_instant_query_sends_query_and_time(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply(vector(({"service": "notify"}, "0.0031")))

    assert await measure(client) == 0.0031
    [sent] = fake.requests
    assert sent["query"] == 'sum(rate(http_requests_total{service="notify",code=~"5.."}[5m]))'
    assert float(sent["time"]) == AT.timestamp()


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("NaN", lambda v: v != v),
        ("+Inf", lambda v: v == float("inf")),
        ("-Inf", lambda v: v == float("-inf")),
    ],
)
async def test_special_values(fake: FakePrometheus, client: PrometheusClient, text: str, check: Any) -> None:
    fake.reply(vector(({}, text)))
    assert check(await measure(client))


async def test_scalar_result(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply({"status": "success", "data": {"resultType": "scalar", "result": [AT.timestamp(), "42"]}})
    assert await client.instant_query("scalar(1)", AT) == [({}, 42.0)]


async def test_no_series_is_empty(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply(vector())
    assert await measure(client) is None


async def test_several_series_must_be_aggregated(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply(vector(({"pod": "a"}, "1"), ({"pod": "b"}, "2")))
    with pytest.raises(MeasureError, match=r"query returned 2 series; aggregate it to one with sum\(\)") as info:
        await measure(client)
    assert info.value.retryable is False


async def test_matrix_is_refused(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply({"status": "success", "data": {"resultType": "matrix", "result": []}})
    with pytest.raises(MeasureError, match="query returned a matrix result; checks need an instant vector"):
        await measure(client)


async def test_status_error_names_type_and_message(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply({"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}, status=400)
    with pytest.raises(MeasureError) as info:
        await measure(client)
    assert str(info.value) == "Prometheus query error (bad_data, HTTP 400): 1:5: parse error"
    assert info.value.retryable is False


async def test_execution_error_is_retryable(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply({"status": "error", "errorType": "timeout", "error": "query timed out"}, status=503)
    with pytest.raises(MeasureError, match=r"\(timeout, HTTP 503\): query timed out") as info:
        await measure(client)
    assert info.value.retryable is True


async def test_http_500_with_text_body(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply("upstream connect error", status=500)
    with pytest.raises(MeasureError, match="Prometheus answered HTTP 500: upstream connect error"):
        await measure(client)


async def test_malformed_json(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply('{"status": "success", "data": ')
    with pytest.raises(MeasureError, match="malformed JSON"):
        await measure(client)


async def test_wrong_shape(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}})
    with pytest.raises(MeasureError, match="unexpected Prometheus response shape"):
        await measure(client)


async def test_hanging_response_times_out(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.hang = True
    with pytest.raises(MeasureError, match=r"timed out after 0\.5s"):
        await measure(client)


async def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with PrometheusClient(url, timeout=2) as closed:
        with pytest.raises(MeasureError, match=f"cannot connect to Prometheus at {url}"):
            await measure(closed)


async def test_naive_time_is_refused(client: PrometheusClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.instant_query("up", datetime(2024, 1, 1))


class Recorder:
    def __init__(self) -> None:
        self.errors: list[Measurement] = []
        self.sleeps: list[float] = []

    async def on_error(self, measurement: Measurement) -> None:
        self.errors.append(measurement)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


async def retried(client: PrometheusClient, recorder: Recorder, retries: int = 3) -> Measurement:
    return await measure_with_retries(
        client,
        CHECK,
        AT,
        service="notify",
        environment="prod",
        version="1.4.2",
        retries=retries,
        delay=timedelta(seconds=2),
        sleep=recorder.sleep,
        on_error=recorder.on_error,
    )


async def test_errors_are_retried_then_unavailable_never_fail(fake: FakePrometheus, client: PrometheusClient) -> None:
    for _ in range(4):
        fake.reply("bad gateway", status=502)
    recorder = Recorder()

    result = await retried(client, recorder)

    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary == "metrics unavailable: Prometheus answered HTTP 502: bad gateway"
    assert result.attempts == 4
    assert result.query == 'sum(rate(http_requests_total{service="notify",code=~"5.."}[5m]))'
    assert [e.verdict for e in recorder.errors] == [Verdict.ERROR] * 4
    assert [e.summary.split(":")[1].strip() for e in recorder.errors] == [f"attempt {i}/4 failed" for i in range(1, 5)]
    assert recorder.sleeps == [2.0, 2.0, 2.0]
    assert len(fake.requests) == 4


async def test_recovery_on_a_retry_judges_the_value(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply({"status": "error", "errorType": "unavailable", "error": "starting"}, status=503)
    fake.reply(vector(({}, "0.2")))
    recorder = Recorder()

    result = await retried(client, recorder)

    assert result.verdict is Verdict.FAIL
    assert result.summary == "error rate = 0.2 (pass if < 0.01, fail if >= 0.05)"
    assert result.attempts == 2
    assert len(recorder.errors) == 1
    assert recorder.sleeps == [2.0]


async def test_a_rejected_query_is_not_retried(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply({"status": "error", "errorType": "bad_data", "error": "parse error"}, status=400)
    recorder = Recorder()

    result = await retried(client, recorder)

    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.attempts == 1
    assert recorder.sleeps == []
    assert len(fake.requests) == 1


async def test_zero_retries_means_one_attempt(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.reply("oops", status=500)
    result = await retried(client, Recorder(), retries=0)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert len(fake.requests) == 1


async def test_check_runner_uses_configured_url_timeout_and_retries(fake: FakePrometheus) -> None:
    fake.reply("down", status=503)
    fake.reply(vector(({}, "0.001")))
    recorder = Recorder()
    metrics = Metrics.model_validate({"prometheus_url": fake.url, "timeout": "3s", "retries": 1, "retry_delay": "7s"})

    async with CheckRunner(metrics, sleep=recorder.sleep) as runner:
        result = await runner.run(CHECK, AT, service="notify", environment="prod", version="1.4.2")

    assert result.verdict is Verdict.PASS
    assert recorder.sleeps == [7.0]
    assert fake.requests[0]["timeout"] == "3s"


# --- credentials: a Prometheus behind a login (Thanos, Mimir, Grafana Cloud) ---------------------------------

SECRET = "glc_s3cret-grafana-cloud-token"
ENV = {"PROM_TOKEN": SECRET, "PROM_USER": "123456", "PROM_PASSWORD": SECRET, "MIMIR_TENANT": "team-a"}
AUTHS = [
    ({"token_env": "PROM_TOKEN"}, {"Authorization": f"Bearer {SECRET}"}),
    (
        {"username_env": "PROM_USER", "password_env": "PROM_PASSWORD"},
        {"Authorization": "Basic MTIzNDU2OmdsY19zM2NyZXQtZ3JhZmFuYS1jbG91ZC10b2tlbg=="},
    ),
    ({"headers_env": {"X-Scope-OrgID": "MIMIR_TENANT"}}, {"X-Scope-OrgID": "team-a"}),
]


def runner(url: str, auth: dict[str, Any] | None, credentials: Credentials, recorder: Recorder) -> CheckRunner:
    metrics = Metrics.model_validate({"prometheus_url": url, "prometheus_auth": auth, "retries": 2})
    return CheckRunner(metrics, sleep=recorder.sleep, credentials=credentials)


@pytest.mark.parametrize(("auth", "sent"), AUTHS, ids=["bearer", "basic", "mimir-tenant"])
async def test_prometheus_auth_is_sent_with_every_query(
    fake: FakePrometheus, auth: dict[str, Any], sent: dict[str, str]
) -> None:
    fake.gate.required = sent
    fake.reply(vector(({}, "0.001")))

    async with runner(fake.url, auth, Credentials(environ=ENV), Recorder()) as checks:
        result = await checks.run(CHECK, AT, service="notify", environment="prod", version="1.4.2")

    assert result.verdict is Verdict.PASS, result
    assert fake.gate.refused == 0


async def test_a_refusal_is_not_retried_and_its_body_not_shown(
    fake: FakePrometheus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.gate.required = {"Authorization": "Bearer the-right-one"}
    recorder = Recorder()

    async with runner(fake.url, {"token_env": "PROM_TOKEN"}, Credentials(environ=ENV), recorder) as checks:
        result = await checks.run(
            CHECK, AT, service="notify", environment="prod", version="1.4.2", on_error=recorder.on_error
        )

    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary == (
        f"metrics unavailable: Prometheus at {fake.url} answered HTTP 401: credentials refused or missing "
        "(see metrics.prometheus_auth)"
    )
    assert fake.gate.refused == 1 and recorder.sleeps == []
    # The 401 quoted the token it was sent; no summary, detail or log line passes that on.
    shown = [caplog.text, *(m.summary for m in [result, *recorder.errors]), *(m.detail or "" for m in [result])]
    assert all(SECRET not in text for text in shown), shown


async def test_without_prometheus_auth_a_guarded_prometheus_refuses(fake: FakePrometheus) -> None:
    fake.gate.required = {"X-Scope-OrgID": "team-a"}
    with pytest.raises(MeasureError, match=r"answered HTTP 401: credentials refused or missing") as info:
        async with PrometheusClient(fake.url, timeout=0.5) as client:
            await measure(client)
    assert info.value.retryable is False


async def test_an_https_prometheus_is_trusted_only_with_its_ca_file(tls: SelfSigned) -> None:
    async with serving(tls.server_context()) as secure:
        secure.reply(vector(({}, "0.001")))
        with pytest.raises(MeasureError, match="certificate verify failed"):
            async with PrometheusClient(secure.url, timeout=2) as untrusted:
                await measure(untrusted)
        async with runner(
            secure.url, {"ca_file": tls.cert.name}, Credentials(tls.cert.parent, {}), Recorder()
        ) as checks:
            result = await checks.run(CHECK, AT, service="notify", environment="prod", version="1.4.2")

    assert result.verdict is Verdict.PASS, result
    assert len(secure.requests) == 1


def test_a_missing_variable_stops_the_runner_being_built() -> None:
    with pytest.raises(
        CredentialsError, match=r"^headers_env\.X-Scope-OrgID: environment variable MIMIR_TENANT is not set$"
    ):
        runner(
            "http://prometheus.example",
            {"headers_env": {"X-Scope-OrgID": "MIMIR_TENANT"}},
            Credentials(environ={}),
            Recorder(),
        )

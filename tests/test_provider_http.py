"""The ``http`` deploy provider against a real local deploy service (tests/fakes/deploy_service.py)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import HttpProvider
from bot.github_api import GitHubClient
from bot.http_auth import Credentials, CredentialsError
from bot.http_session import HttpSession
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven
from bot.providers.factory import build_provider
from bot.providers.http import HttpDeployProvider
from tests.fakes.deploy_service import FakeDeployService
from tests.fakes.runs import DiesWhenIdentified, RecordedRun, remote
from tests.fakes.tls import SelfSigned

CTX = DeployContext(service="notify", version="1.2.3", environment="prod", release_id=42, weight=10)
RUNNING = {"status": "running", "log": "rolling out 1/3"}


class FakeTime:
    """A monotonic clock that only moves when the provider sleeps, so polling costs no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def service() -> AsyncIterator[FakeDeployService]:
    async with FakeDeployService() as fake:
        yield fake


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def provider(
    http: HttpSession, time: FakeTime, url: str, credentials: Credentials | None = None, **config: Any
) -> HttpDeployProvider:
    model = HttpProvider.model_validate({"provider": "http", "url": url, "poll_every": "5s", **config})
    return HttpDeployProvider(model, session=http, credentials=credentials, sleep=time.sleep, clock=time.clock)


async def test_deploy_posts_json_then_polls_until_succeeded(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.statuses = [RUNNING, RUNNING, {"status": "succeeded", "log": "rolled out\nall pods ready"}]

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result == StepResult(ok=True, output_tail="rolled out\nall pods ready")
    [post] = service.posts()
    assert post.body == {
        "action": "deploy",
        "service": "notify",
        "version": "1.2.3",
        "environment": "prod",
        "weight": 10,
        "colour": None,
        "previous_version": None,
        "release_id": 42,
    }
    assert post.headers["Idempotency-Key"] == "release-42-deploy-10"
    assert post.headers["Content-Type"].startswith("application/json")
    assert [poll.path for poll in service.polls()] == ["/jobs/job-1"] * 3
    assert time.sleeps == [5.0, 5.0, 5.0]


async def test_failed_status_fails_the_step_with_the_log_tail(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.statuses = [RUNNING, {"status": "failed", "log": "step 1 ok\nhealth check failed", "error": "unhealthy"}]

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result == StepResult(
        ok=False, output_tail="step 1 ok\nhealth check failed", error="deploy failed: unhealthy"
    )


async def test_times_out_when_the_deploy_never_finishes(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.statuses = [RUNNING]

    result = await provider(http, time, service.url, timeout="1m").deploy(CTX, remote())

    assert result == StepResult(ok=False, output_tail="rolling out 1/3", error="timed out after 1m")
    assert len(service.polls()) == 12  # every 5s for one minute
    assert time.now == 60.0


async def test_rejected_request_reports_status_and_body(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.accept_status = 409
    service.accept_body = {"error": "another deploy of notify is running"}

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert not result.ok
    assert result.error == "deploy service answered HTTP 409"
    assert "another deploy of notify is running" in result.output_tail
    assert service.polls() == []


async def test_transient_poll_errors_are_retried(service: FakeDeployService, http: HttpSession, time: FakeTime) -> None:
    service.poll_errors = [503, 502, 429]
    service.statuses = [{"status": "succeeded", "log": "done"}]

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result == StepResult(ok=True, output_tail="done")
    assert len(service.polls()) == 4


async def test_timeout_names_the_last_poll_problem(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.poll_errors = [503] * 100

    result = await provider(http, time, service.url, timeout="30s").deploy(CTX, remote())

    assert result.error == "timed out after 30s (last status poll: HTTP 503)"


async def test_status_url_that_is_gone_fails_at_once(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.accept_body = {"id": "x", "status": "running", "status_url": "/jobs/does-not-exist"}

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result.error == f"status URL {service.base_url}/jobs/does-not-exist answered HTTP 404"
    assert len(service.polls()) == 1


async def test_configured_status_url_gets_the_job_id(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.include_status_url = False
    service.statuses = [RUNNING, {"status": "succeeded"}]

    result = await provider(http, time, service.url, status_url=f"{service.base_url}/jobs/{{id}}").deploy(CTX, remote())

    assert result.ok
    assert [poll.path for poll in service.polls()] == ["/jobs/job-1", "/jobs/job-1"]


async def test_synchronous_service_needs_no_polling(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.accept_status = 200
    service.accept_body = {"status": "succeeded", "log": "deployed synchronously"}

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result == StepResult(ok=True, output_tail="deployed synchronously")
    assert service.polls() == []


async def test_running_without_any_status_url_is_an_error(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.include_status_url = False

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result.error == "deploy service said the deploy is running but gave no status_url"


async def test_unknown_status_is_an_error_not_an_endless_wait(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.statuses = [{"status": "exploded"}]

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result.error == "deploy service reported an unknown status 'exploded'"


async def test_shift_and_rollback_name_their_action(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    deploy = provider(http, time, service.url)

    shifted = await deploy.shift(DeployContext("notify", "1.2.3", "prod", 42, weight=50, colour="green"), remote())
    rolled = await deploy.rollback(DeployContext("notify", "1.2.2", "prod", 42, previous_version="1.2.3"), remote())

    assert shifted.ok and rolled.ok
    shift_post, rollback_post = service.posts()
    assert (shift_post.body["action"], shift_post.body["weight"], shift_post.body["colour"]) == ("shift", 50, "green")
    assert shift_post.headers["Idempotency-Key"] == "release-42-shift-50"
    assert (rollback_post.body["action"], rollback_post.body["version"]) == ("rollback", "1.2.2")
    assert rollback_post.body["previous_version"] == "1.2.3"
    assert rollback_post.headers["Idempotency-Key"] == "release-42-rollback-100"


async def test_retried_deploy_reuses_the_idempotency_key(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    deploy = provider(http, time, service.url)

    await deploy.deploy(CTX, remote())
    await deploy.deploy(CTX, remote())

    keys = {post.headers["Idempotency-Key"] for post in service.posts()}
    assert keys == {"release-42-deploy-10"}
    assert len(service.jobs) == 1  # the service saw the same key and did not deploy twice


async def test_unreachable_service(http: HttpSession, time: FakeTime) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = await provider(http, time, f"http://127.0.0.1:{port}/deploy").deploy(CTX, remote())

    assert not result.ok
    assert result.error is not None and result.error.startswith("deploy service unreachable: ")


def test_unknown_placeholder_in_status_url_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder \{job\}"):
        provider(
            HttpSession(), FakeTime(), "http://deploy.example/deploy", status_url="http://deploy.example/jobs/{job}"
        )


# --- credentials ---------------------------------------------------------------------------------------------

SECRET = "s3cret-deploy-token"
ENV = {"DEPLOY_TOKEN": SECRET, "DEPLOY_USER": "release-bot", "DEPLOY_PASSWORD": "pässwörd", "DEPLOY_KEY": SECRET}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


AUTHS = [
    ({"token_env": "DEPLOY_TOKEN"}, {"Authorization": f"Bearer {SECRET}"}),
    (
        {"username": "release-bot", "password_env": "DEPLOY_PASSWORD"},
        {"Authorization": basic("release-bot", "pässwörd")},
    ),
    (
        {"username_env": "DEPLOY_USER", "password_env": "DEPLOY_PASSWORD"},
        {"Authorization": basic("release-bot", "pässwörd")},
    ),
    (
        {"headers_env": {"X-Api-Key": "DEPLOY_KEY"}, "headers": {"X-Team": "payments"}},
        {"X-Api-Key": SECRET, "X-Team": "payments"},
    ),
]


@pytest.mark.parametrize(("auth", "sent"), AUTHS, ids=["bearer", "basic", "basic-env", "headers"])
async def test_every_request_carries_the_credentials(
    service: FakeDeployService, http: HttpSession, time: FakeTime, auth: dict[str, Any], sent: dict[str, str]
) -> None:
    service.gate.required = sent
    service.statuses = [RUNNING, {"status": "succeeded", "log": "done"}]

    result = await provider(http, time, service.url, Credentials(environ=ENV), auth=auth).deploy(CTX, remote())

    assert result == StepResult(ok=True, output_tail="done")
    assert len(service.posts()) == 1 and len(service.polls()) == 2  # the gate let the POST and both polls in
    assert service.posts()[0].headers["Idempotency-Key"] == "release-42-deploy-10"  # the bot's own header stays


async def test_a_service_that_demands_credentials_refuses_a_provider_without_them(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.gate.required = {"Authorization": f"Bearer {SECRET}"}

    result = await provider(http, time, service.url).deploy(CTX, remote())

    assert result == StepResult(
        ok=False, output_tail="", error="deploy service answered HTTP 401: credentials refused or missing (see auth)"
    )
    assert service.gate.refused == 1


async def test_a_status_url_on_another_origin_gets_no_credentials(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    async with FakeDeployService() as elsewhere:
        service.accept_body = {"id": "x", "status": "running", "status_url": f"{elsewhere.base_url}/jobs/x"}

        await provider(http, time, service.url, Credentials(environ=ENV), auth={"token_env": "DEPLOY_TOKEN"}).deploy(
            CTX, remote()
        )

        [post] = service.posts()
        assert post.headers["Authorization"] == f"Bearer {SECRET}"
        [poll] = elsewhere.polls()
        assert "Authorization" not in poll.headers


async def test_a_missing_variable_stops_the_provider_being_built(http: HttpSession, time: FakeTime) -> None:
    with pytest.raises(CredentialsError, match=r"^token_env: environment variable DEPLOY_TOKEN is not set$"):
        provider(
            http, time, "https://deploy.example/deploy", Credentials(environ={}), auth={"token_env": "DEPLOY_TOKEN"}
        )
    config = HttpProvider.model_validate(
        {"provider": "http", "url": "https://deploy.example/deploy", "auth": {"headers_env": {"X-Key": "NOPE"}}}
    )
    with pytest.raises(ValueError, match=r"headers_env\.X-Key: environment variable NOPE is not set"):
        build_provider(
            config, session=http, github=GitHubClient(session=http, token=None), credentials=Credentials(environ={})
        )


async def test_an_https_service_is_trusted_only_with_its_ca_file(
    http: HttpSession, time: FakeTime, tls: SelfSigned
) -> None:
    async with FakeDeployService(ssl=tls.server_context()) as secure:
        untrusted = await provider(http, time, secure.url).deploy(CTX, remote())
        # ca_file relative to the config file's directory, as Credentials(base_dir) is given at start-up.
        credentials = Credentials(tls.cert.parent, environ={})
        trusted = await provider(http, time, secure.url, credentials, auth={"ca_file": tls.cert.name}).deploy(
            CTX, remote()
        )

    assert untrusted.error is not None and untrusted.error.startswith("deploy service unreachable: ")
    assert "certificate verify failed" in untrusted.error
    assert trusted.ok, trusted
    assert len(secure.posts()) == 1  # only the trusted attempt got through the handshake


async def test_secrets_stay_out_of_logs_errors_and_reprs(
    service: FakeDeployService, http: HttpSession, time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = Credentials(environ=ENV)
    deploy = provider(http, time, service.url, credentials, auth={"token_env": "DEPLOY_TOKEN"})
    service.gate.required = {"Authorization": "Bearer another-token"}  # the service refuses, quoting what it got

    refused = await deploy.deploy(CTX, remote())

    assert service.gate.refused == 1
    shown = [
        caplog.text,
        refused.error,
        refused.output_tail,
        repr(deploy),
        repr(credentials.resolve(deploy.config.auth)),
    ]
    assert all(SECRET not in text for text in shown if text is not None), shown


# --- the fence, and a step whose bot died ------------------------------------------------------------------


async def left_running(deploy: HttpDeployProvider) -> LeftRun:
    """Start a deploy whose bot dies once the status URL is recorded; the step as a restarted bot finds it."""
    record = DiesWhenIdentified()
    step = asyncio.create_task(deploy.deploy(CTX, record))
    await record.known.wait()
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    [url] = record.remote_ids
    return LeftRun(action="deploy", identity=RunIdentity(), output=None, remote_id=url, remaining=60.0)


async def test_the_step_is_recorded_before_the_post_and_its_status_url_once_known(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    posted_before_record: list[int] = []

    class Watching(RecordedRun):
        async def starting(self, identity: RunIdentity) -> None:
            posted_before_record.append(len(service.posts()))
            await super().starting(identity)

    record = Watching(Path("/nonexistent/remote.log"))
    result = await provider(http, time, service.url).deploy(CTX, record)

    assert result.ok
    assert posted_before_record == [0], "recorded before anything was asked of the deploy service"
    assert record.remote_ids == [f"{service.base_url}/jobs/job-1"]


async def test_a_left_step_is_asked_at_its_recorded_status_url_and_followed_to_its_end(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.statuses = [RUNNING, RUNNING, RUNNING, {"status": "succeeded", "log": "rolled out"}]
    deploy = provider(http, time, service.url)
    left = await left_running(deploy)
    assert service.polls() == [], "its bot died before it polled"

    assert await deploy.inspect(left) is None, "still running at the service"
    assert await deploy.follow(left) == StepResult(ok=True, output_tail="rolled out")
    assert len(service.polls()) == 4, "asked once on start, then followed until it succeeded"


async def test_a_left_step_still_running_at_its_timeout_fails_as_timed_out(
    service: FakeDeployService, http: HttpSession, time: FakeTime
) -> None:
    service.statuses = [RUNNING]
    deploy = provider(http, time, service.url, timeout="10m")
    left = dataclasses.replace(await left_running(deploy), remaining=12.0)

    ended = await deploy.follow(left)

    assert isinstance(ended, StepResult) and (ended.ok, ended.error) == (False, "timed out after 10m")


async def test_a_left_step_whose_status_url_was_never_recorded_is_unproven(http: HttpSession, time: FakeTime) -> None:
    deploy = provider(http, time, "http://127.0.0.1:9/deploy")
    left = LeftRun(action="deploy", identity=RunIdentity(), output=None, remote_id=None, remaining=60.0)

    assert isinstance(await deploy.inspect(left), Unproven)
    assert isinstance(await deploy.follow(left), Unproven)

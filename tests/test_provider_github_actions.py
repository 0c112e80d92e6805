"""The ``github_actions`` deploy provider against a real local fake of GitHub's Actions API."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import CommandProvider, GithubActionsProvider, HttpProvider
from bot.github_api import GitHubClient
from bot.http_session import HttpSession
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven
from bot.providers.command import CommandDeployProvider
from bot.providers.factory import build_provider
from bot.providers.github_actions import GithubActionsDeployProvider
from bot.providers.http import HttpDeployProvider
from tests.fakes.github_actions import FakeGitHubActions, RunScript
from tests.fakes.runs import DiesWhenIdentified, RecordedRun, remote

CTX = DeployContext(service="notify", version="1.2.3", environment="prod", release_id=42, weight=10)
RUNS = "/repos/acme/notify/actions/runs/"


class FakeTime:
    """A monotonic clock that only moves when the provider sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHubActions]:
    async with FakeGitHubActions() as fake:
        yield fake


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def provider(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime, **config: Any
) -> GithubActionsDeployProvider:
    model = GithubActionsProvider.model_validate(
        {"provider": "github_actions", "repo": "acme/notify", "workflow": "deploy.yml", **config}
    )
    client = GitHubClient(session=http, token="ghp_test", api_url=github.api_url)
    return GithubActionsDeployProvider(model, client=client, poll_every=10.0, sleep=time.sleep, clock=time.clock)


def followed(github: FakeGitHubActions) -> set[str]:
    """Ids of the runs the provider polled."""
    return {r.path.removeprefix(RUNS) for r in github.calls("GET", "") if r.path.startswith(RUNS)} - {
        f"{run_id}/jobs" for run_id in github.runs
    }


async def test_dispatches_then_follows_the_run_to_success(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    result = await provider(github, http, time, ref="release").deploy(CTX, remote())

    [run_id] = github.runs
    url = f"https://github.com/acme/notify/actions/runs/{run_id}"
    assert result.ok, result
    assert result.output_tail == f"workflow run {url}: completed, success\njob deploy: success"
    [dispatch] = github.calls("POST", "/actions/workflows/deploy.yml/dispatches")
    assert dispatch.body == {
        "ref": "release",
        "inputs": {
            "service": "notify",
            "version": "1.2.3",
            "environment": "prod",
            "weight": "10",
            "action": "deploy",
            "release_id": "42",
        },
    }
    assert dispatch.headers["Authorization"] == "Bearer ghp_test"
    assert dispatch.headers["Accept"] == "application/vnd.github+json"
    assert dispatch.headers["X-GitHub-Api-Version"] == "2022-11-28"
    listing = github.calls("GET", "/actions/workflows/deploy.yml/runs")[0]
    assert listing.query["event"] == "workflow_dispatch"
    since = datetime.fromisoformat(listing.query["created"].removeprefix(">=").replace("Z", "+00:00"))
    assert timedelta(0) < datetime.now(UTC) - since < timedelta(minutes=3)
    assert len(github.calls("GET", f"/runs/{run_id}")) == 3  # queued → in_progress → completed


async def test_failed_run_reports_its_url_conclusion_and_failed_step(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.next_run = RunScript(
        conclusion="failure",
        jobs=[
            {"name": "build", "steps": [("Checkout", "success")]},
            {"name": "deploy", "steps": [("Checkout", "success"), ("kubectl apply", "failure"), ("Notify", "skipped")]},
        ],
    )

    result = await provider(github, http, time).deploy(CTX, remote())

    [run_id] = github.runs
    url = f"https://github.com/acme/notify/actions/runs/{run_id}"
    assert not result.ok
    assert result.error == f"workflow run {url} concluded failure"
    assert result.output_tail.splitlines() == [
        f"workflow run {url}: completed, failure",
        "job build: success",
        "job deploy: failure",
        "  step kubectl apply: failure",
    ]


async def test_ignores_runs_that_existed_before_the_dispatch(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    earlier = github.add_run(status="in_progress")  # someone else's deploy, still going
    github.next_run = RunScript(hidden_for_lists=1)  # ours shows up one listing late: only `earlier` is new-ish

    result = await provider(github, http, time).deploy(CTX, remote())

    assert result.ok
    [ours] = set(github.runs) - {earlier}
    assert followed(github) == {str(ours)}


async def test_run_name_tells_our_run_from_a_concurrent_one(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.run_name = "Deploy ${{ inputs.service }} ${{ inputs.version }} (release ${{ inputs.release_id }})"
    # Another release's run that GitHub lists only after our first listing, next to (and before) ours.
    other = github.add_run(display_title="Deploy billing 7.0 (release 41)", status="in_progress", hidden_for_lists=1)
    github.next_run = RunScript(hidden_for_lists=1)

    result = await provider(github, http, time).deploy(CTX, remote())

    assert result.ok
    [ours] = set(github.runs) - {other}
    assert github.runs[ours]["display_title"] == "Deploy notify 1.2.3 (release 42)"
    assert followed(github) == {str(ours)}


async def test_waits_for_a_run_github_lists_late(github: FakeGitHubActions, http: HttpSession, time: FakeTime) -> None:
    github.next_run = RunScript(hidden_for_lists=2)

    result = await provider(github, http, time).deploy(CTX, remote())

    assert result.ok
    assert len(github.calls("GET", "/actions/workflows/deploy.yml/runs")) == 1 + 3  # before + three after


async def test_undeclared_input_is_rejected_by_github(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.declared_inputs = ("service", "version", "environment", "action", "release_id")

    result = await provider(github, http, time).deploy(CTX, remote())

    assert result.error == 'workflow dispatch failed: HTTP 422: Unexpected inputs provided: ["weight"]'
    assert github.runs == {}


async def test_bad_token_says_to_check_it(github: FakeGitHubActions, http: HttpSession, time: FakeTime) -> None:
    github.token = "ghp_other"

    result = await provider(github, http, time).deploy(CTX, remote())

    assert result.error == "listing workflow runs failed: HTTP 401: Bad credentials (check GITHUB_TOKEN)"


async def test_unknown_workflow(github: FakeGitHubActions, http: HttpSession, time: FakeTime) -> None:
    result = await provider(github, http, time, workflow="nope.yml").deploy(CTX, remote())

    assert result.error is not None and result.error.startswith("listing workflow runs failed: HTTP 404: Not Found")


async def test_timeout_cancels_the_run(github: FakeGitHubActions, http: HttpSession, time: FakeTime) -> None:
    github.next_run = RunScript(progress=["queued", "in_progress"])

    result = await provider(github, http, time, timeout="30m").deploy(CTX, remote())

    [run_id] = github.runs
    assert result.error == "timed out after 30m"
    assert result.output_tail == f"workflow run https://github.com/acme/notify/actions/runs/{run_id} still in_progress"
    assert len(github.calls("POST", f"/runs/{run_id}/cancel")) == 1
    assert github.runs[run_id]["conclusion"] == "cancelled"
    assert time.now == 30 * 60


async def test_timeout_while_the_run_never_appears(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.next_run = RunScript(hidden_for_lists=10**6)

    result = await provider(github, http, time, timeout="5m").deploy(CTX, remote())

    assert result.error == "timed out after 5m"
    assert result.output_tail == "waiting for the workflow run to start"


async def test_server_errors_while_polling_are_retried(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.run_faults = [502, 503]

    result = await provider(github, http, time).deploy(CTX, remote())

    assert result.ok, result


async def test_shift_and_rollback_dispatch_their_action(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.declared_inputs = (*github.declared_inputs, "colour")
    deploy = provider(github, http, time)

    assert (await deploy.shift(DeployContext("notify", "1.2.3", "prod", 42, weight=100, colour="green"), remote())).ok
    assert (await deploy.rollback(DeployContext("notify", "1.2.2", "prod", 42), remote())).ok

    shift, rollback = (call.body["inputs"] for call in github.calls("POST", "/dispatches"))
    assert (shift["action"], shift["colour"]) == ("shift", "green")
    assert (rollback["action"], rollback["version"]) == ("rollback", "1.2.2")
    assert "colour" not in rollback


def test_requires_a_token() -> None:
    config = GithubActionsProvider(provider="github_actions", repo="acme/notify", workflow="deploy.yml")
    session = HttpSession()  # never opened: building sends nothing
    with pytest.raises(ValueError, match="needs GITHUB_TOKEN"):
        build_provider(config, session=session, github=GitHubClient(session=session, token=None))


def test_factory_builds_each_provider(tmp_path: Path) -> None:
    session = HttpSession()  # never opened: building sends nothing
    no_token = GitHubClient(session=session, token=None)
    enterprise = GitHubClient(session=session, token="t", api_url="https://ghe.example/api/v3")
    command = CommandProvider(provider="command", run=["./deploy.sh", "{version}"])
    http = HttpProvider(provider="http", url="http://deploy.example/deploy")
    actions = GithubActionsProvider(provider="github_actions", repo="acme/notify", workflow="deploy.yml")

    built_command = build_provider(command, session=session, github=no_token, base_dir=tmp_path)
    assert isinstance(built_command, CommandDeployProvider)
    assert built_command.workdir() == tmp_path
    assert isinstance(build_provider(http, session=session, github=no_token), HttpDeployProvider)
    built_actions = build_provider(actions, session=session, github=enterprise)
    assert isinstance(built_actions, GithubActionsDeployProvider)
    assert built_actions.api_url == "https://ghe.example/api/v3"
    with pytest.raises(ValueError, match="unknown placeholder"):
        build_provider(CommandProvider(provider="command", run=["x", "{oops}"]), session=session, github=no_token)


# --- the fence, and a step whose bot died ------------------------------------------------------------------


async def left_running(deploy: GithubActionsDeployProvider) -> LeftRun:
    """Dispatch a run whose bot dies once its id is recorded; the step as a restarted bot finds it."""
    record = DiesWhenIdentified()
    step = asyncio.create_task(deploy.deploy(CTX, record))
    await record.known.wait()
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    [run_id] = record.remote_ids
    return LeftRun(action="deploy", identity=RunIdentity(), output=None, remote_id=run_id, remaining=600.0)


async def test_the_step_is_recorded_before_the_dispatch_and_its_run_once_found(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    dispatched_before_record: list[int] = []

    class Watching(RecordedRun):
        async def starting(self, identity: RunIdentity) -> None:
            dispatched_before_record.append(len(github.calls("POST", "/dispatches")))
            await super().starting(identity)

    record = Watching(Path("/nonexistent/remote.log"))
    assert (await provider(github, http, time).deploy(CTX, record)).ok

    assert dispatched_before_record == [0], "recorded before the workflow was dispatched"
    assert record.remote_ids == [str(run_id) for run_id in github.runs]


async def test_a_left_run_is_asked_on_start_and_followed_to_its_conclusion(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.next_run = RunScript(progress=["queued", "in_progress", "in_progress", "completed"], conclusion="failure")
    deploy = provider(github, http, time)
    left = await left_running(deploy)

    assert await deploy.inspect(left) is None, "the workflow run is still going"
    ended = await deploy.follow(left)

    assert isinstance(ended, StepResult) and not ended.ok
    assert ended.error == f"workflow run https://github.com/acme/notify/actions/runs/{left.remote_id} concluded failure"


async def test_a_left_run_still_going_at_its_timeout_is_cancelled(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    github.next_run = RunScript(progress=["queued", "in_progress"])
    deploy = provider(github, http, time, timeout="30m")
    left = dataclasses.replace(await left_running(deploy), remaining=15.0)

    ended = await deploy.follow(left)

    assert isinstance(ended, StepResult) and (ended.ok, ended.error) == (False, "timed out after 30m")
    assert github.runs[int(str(left.remote_id))]["conclusion"] == "cancelled"


async def test_a_left_step_whose_run_was_never_found_is_unproven(
    github: FakeGitHubActions, http: HttpSession, time: FakeTime
) -> None:
    left = LeftRun(action="deploy", identity=RunIdentity(), output=None, remote_id=None, remaining=600.0)

    ended = await provider(github, http, time).inspect(left)

    assert isinstance(ended, Unproven) and "check the workflow's runs" in ended.reason

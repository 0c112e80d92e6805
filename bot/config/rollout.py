"""How releases roll out and are verified: strategies, deploy providers, checks, environments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from bot.config.auth import HttpAuth
from bot.config.policy import ApprovalPolicy, Images, RollbackPolicy, VulnerabilityScan
from bot.config.types import ChecklistItem, ConditionField, Duration, Model


class CanaryStrategy(Model):
    type: Literal["canary"]
    steps: list[Annotated[int, Field(gt=0, le=100)]] = Field(min_length=1)
    """Traffic weights in percent, strictly increasing, ending at 100."""
    pause: Duration = timedelta(minutes=5)
    """Wait at each step before its checks decide whether to go on."""

    @model_validator(mode="after")
    def _increasing(self) -> CanaryStrategy:
        if self.steps != sorted(set(self.steps)) or self.steps[-1] != 100:
            raise ValueError("steps must be strictly increasing and end at 100")
        return self


class BlueGreenStrategy(Model):
    type: Literal["blue_green"]
    pause: Duration = timedelta(0)
    """Wait after deploying to the idle colour before checking it."""


class AllAtOnceStrategy(Model):
    type: Literal["all_at_once"]


Strategy = Annotated[CanaryStrategy | BlueGreenStrategy | AllAtOnceStrategy, Field(discriminator="type")]


class CommandProvider(Model):
    provider: Literal["command"]
    run: list[str] = Field(min_length=1)
    """Deploy argv (never a shell); `{service}`, `{version}`, `{environment}`, `{weight}` substituted per argument."""
    rollback: list[str] | None = None
    """Rollback argv; omitted means `run` with the rollback target as the version."""
    shift: list[str] | None = None
    """Traffic-shift argv for canary steps; omitted means `run` with the new `{weight}`."""
    timeout: Duration = timedelta(minutes=15)
    """The command is killed (with its process group) after this long."""
    cwd: Path | None = None
    """Working directory of the command."""
    background: Literal["leave", "kill"] = "leave"
    """What the command leaves running when it exits (a daemon it started): `leave` it alone, or `kill` its
    process group. Either way the step ends when the command exits, with its exit status."""


class HttpProvider(Model):
    provider: Literal["http"]
    url: str
    """Deploy service endpoint that receives a JSON POST per action."""
    status_url: str | None = None
    """Status endpoint polled until the deploy finishes (when the POST answer has none)."""
    timeout: Duration = timedelta(minutes=15)
    """Give up (and fail the step) after this long."""
    poll_every: Duration = timedelta(seconds=5)
    """Status polling interval."""
    auth: HttpAuth | None = None
    """Credentials (from environment variables) and trusted CAs for the deploy service."""


class GithubActionsProvider(Model):
    provider: Literal["github_actions"]
    repo: str
    """`owner/name` of the repository holding the deploy workflow."""
    workflow: str
    """Workflow file name or ID, dispatched with `workflow_dispatch`."""
    ref: str = "main"
    """Git ref the workflow runs on."""
    timeout: Duration = timedelta(minutes=30)
    """Give up following the run after this long."""


DeployProvider = Annotated[CommandProvider | HttpProvider | GithubActionsProvider, Field(discriminator="provider")]

OnMissing = Literal["inconclusive", "pass", "fail"]


class Check(Model):
    name: str = Field(min_length=1, max_length=80)
    """Shown in the release thread with each measurement."""
    prometheus: str | None = None
    """PromQL instant query run at release time + each offset (`{service}`, `{environment}`, `{version}` filled)."""
    http: str | None = None
    """URL fetched with GET; judged by its status, or by `json_field` against the conditions."""
    json_field: str | None = None
    """Dotted path to a number in the JSON answer of an `http` check (e.g. `checks.db.latency_ms`)."""
    expect_status: int | None = Field(default=None, ge=100, le=599)
    """Status an `http` check expects (default 200)."""
    pass_if: ConditionField | None = None
    """Condition for PASS, e.g. `"< 0.01"` (operators `< <= > >= == !=`)."""
    fail_if: ConditionField | None = None
    """Condition for FAIL, checked first; between `pass_if` and `fail_if` is INCONCLUSIVE."""
    after: list[Duration] = Field(default_factory=lambda: [timedelta(minutes=5)], min_length=1)
    """Offsets after the release at which the check runs (e.g. `[5m, 15m, 30m]`)."""
    on_empty: OnMissing = "inconclusive"
    """Verdict when the query returns no series."""
    on_nan: OnMissing = "inconclusive"
    """Verdict when the value is NaN (e.g. 0/0 with no traffic)."""
    auth: HttpAuth | None = None
    """Credentials (from environment variables) and trusted CAs for an `http` check's URL."""

    @model_validator(mode="after")
    def _shape(self) -> Check:
        if (self.prometheus is None) == (self.http is None):
            raise ValueError("give exactly one of prometheus or http")
        if self.prometheus is not None and self.pass_if is None and self.fail_if is None:
            raise ValueError("a prometheus check needs pass_if and/or fail_if")
        if self.prometheus is not None and self.auth is not None:
            raise ValueError("auth is for http checks; Prometheus's credentials are metrics.prometheus_auth")
        if any(offset <= timedelta(0) for offset in self.after):
            raise ValueError("after offsets must be positive")
        return self


class Environment(Model):
    window: Literal["always", "business_hours"] = "always"
    """`business_hours`: business days and hours, holidays, cut-off and freezes apply; `always`: only ad-hoc freezes."""
    allowed: list[str] | None = None
    """Groups whose members may release here; omitted means anyone."""
    approvals: ApprovalPolicy = ApprovalPolicy()
    rollback: RollbackPolicy = RollbackPolicy()
    """How rollbacks are approved."""
    checklist: list[ChecklistItem] = Field(default_factory=list)
    """Items satisfied before a release starts: `unit`, `integration`, `performance`, `vulnerability_scan`,
    `release_notes`, `rollback_plan`, `images`."""
    vulnerability_scan: VulnerabilityScan = VulnerabilityScan()
    """What the `vulnerability_scan` item blocks on."""
    images: Images = Images()
    """Image pinning rules."""
    strategy: Strategy = AllAtOnceStrategy(type="all_at_once")
    """Rollout strategy: `all_at_once`, `canary` or `blue_green`."""
    deploy: DeployProvider
    """The deploy provider: `command`, `http` or `github_actions`."""
    checks: list[Check] = Field(default_factory=list)
    """Post-release metric checks."""
    on_check_failure: Literal["offer_rollback", "auto_rollback", "notify"] = "offer_rollback"
    """What a FAIL does: offer on-call a rollback, roll back at once, or only tell."""

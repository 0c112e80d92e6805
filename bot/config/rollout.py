"""How releases roll out and are verified: strategies, deploy providers, checks, environments."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from bot.config.auth import HttpAuth
from bot.config.paths import ConfigPath, base_dir, resolve_program
from bot.config.policy import Images, ReleaseApprovalPolicy, RollbackPolicy, VulnerabilityScan
from bot.config.types import ChecklistItem, ConditionField, Duration, Model
from bot.core.durations import format_duration

PLACEHOLDERS = ("service", "version", "environment", "weight", "colour", "previous_version", "release_id")
"""What every deploy action is told: the names a command's arguments and an HTTP status URL may use."""
COMMAND_PLACEHOLDERS = (*PLACEHOLDERS, "action")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
"""A ``{name}`` token; any other brace text (``{"json": 1}``, ``${HOME}``) is not a placeholder."""


def unknown_placeholder(template: str, known: tuple[str, ...]) -> str | None:
    """The error for the first ``{name}`` token of ``template`` not in ``known``, or None."""
    for match in PLACEHOLDER.finditer(template):
        if match.group(1) not in known:
            return f"unknown placeholder {match.group(0)} (known: {', '.join('{' + k + '}' for k in known)})"
    return None


def _argument(value: str) -> str:
    # Checked when the file is loaded, so a typo such as {verison} is a config error, not a deploy of it.
    error = unknown_placeholder(value, COMMAND_PLACEHOLDERS)
    if error is not None:
        raise ValueError(error)
    return value


Argument = Annotated[str, AfterValidator(_argument)]


class CanaryStrategy(Model):
    type: Literal["canary"]
    """`canary`: deploy at the first weight, then at each pause verify the checks and shift to the next."""
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
    """`blue_green`: deploy to the idle colour with no traffic, verify the checks, switch all traffic to it."""
    pause: Duration = timedelta(0)
    """Wait after deploying to the idle colour before checking it."""


class AllAtOnceStrategy(Model):
    type: Literal["all_at_once"]
    """`all_at_once`: one deploy to all traffic; the checks then run after it."""


Strategy = Annotated[CanaryStrategy | BlueGreenStrategy | AllAtOnceStrategy, Field(discriminator="type")]


class CommandProvider(Model):
    provider: Literal["command"]
    """`command`: run a program on the bot's host, once per action."""
    run: list[Argument] = Field(min_length=1)
    """The deploy command: an argv list, never a shell. A program path with a `/` is relative to the config file;
    a bare name (`kubectl`) is looked up on `PATH`; `check-config` checks that it exists and is executable. In
    each argument of every call (`run`, `shift`, `rollback`) the bot substitutes `{service}`, `{environment}`,
    `{release_id}`, `{action}` (`deploy`, `shift` or `rollback`), `{version}`, `{weight}` (the share of traffic
    `{version}` gets, 0-100), `{previous_version}` (what ran there before; empty before the first release there)
    and `{colour}` (blue/green, else empty); the same values are in `$RELEASEBOT_*`. The calls, with `{version}`
    / `{weight}` / `{previous_version}`: **deploy** (`run`): the new release / all_at_once 100, canary its first
    weight, blue/green 0 on the idle `{colour}` / what ran before; **each later canary weight** (`shift`): the
    new release / that weight / what ran before; **blue/green switch** (`shift`): the new release / 100 to
    `{colour}` / what ran before; **abort** when a canary step's checks fail (`shift`): the new release / 0 /
    the release traffic returns to (a blue/green release aborted before its switch moved no traffic: no call);
    **rollback**: canary (`shift`): the release rolled back / 0 / the target it returns to; blue/green
    (`shift`): the target / 100 to the old `{colour}` / the release rolled back; all_at_once, or a canary one to
    an older version than the release it undoes replaced (`rollback`): the target / 100 / the release rolled
    back."""
    rollback: list[Argument] | None = Field(default=None, min_length=1)
    """The rollback command (argv), run by an all_at_once rollback and by a canary one that redeploys an older
    version: `{version}` is the target at `{weight}` 100 (every call and its values: see `run`); omitted means
    `run`."""
    shift: list[Argument] | None = Field(default=None, min_length=1)
    """The traffic command (argv): each canary weight after the first, the blue/green switch, a canary abort, and
    a canary or blue/green rollback (every call and its values: see `run`); omitted means `run`."""
    timeout: Duration = timedelta(minutes=15)
    """The command is killed (with its process group) after this long."""
    cwd: ConfigPath | None = Field(default=None, validate_default=True)
    """Working directory of the command, relative to the config file; omitted means the config file's
    directory."""
    background: Literal["leave", "kill"] = "leave"
    """What the command leaves running when it exits (a daemon it started): `leave` it alone, or `kill` its
    process group. Either way the step ends when the command exits, with its exit status."""

    @field_validator("run", "rollback", "shift")
    @classmethod
    def _program(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if value is None else resolve_program(value, info)

    @field_validator("cwd")
    @classmethod
    def _workdir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return base_dir(info) if value is None else value


class HttpProvider(Model):
    provider: Literal["http"]
    """`http`: POST each action to a deploy service as JSON: `action` (`deploy`, `shift`, `rollback`) and the
    values the `command` provider's `run` lists for each call."""
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
    """`github_actions`: dispatch a workflow per action and follow its run (needs `GITHUB_TOKEN`)."""
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
    loki: str | None = None
    """LogQL metric query sent to Loki's instant-query API at release time + each offset, e.g.
    `sum(count_over_time({app="{service}"} |= "ERROR" [5m]))` (`{service}`, `{environment}`, `{version}` filled);
    needs `metrics.loki_url` (docs/log-checks.md)."""
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
    every: Duration | None = None
    """Watch window: measure this often (at least `1s`) for `for` after the release, instead of at `after`
    offsets; the check fails when more than `failure_limit` measurements fail (docs/checks.md)."""
    for_: Duration | None = Field(default=None, alias="for")
    """How long a watch window (`every`) lasts after the release, e.g. `every: 30s` with `for: 30m`."""
    failure_limit: int = Field(default=0, ge=0)
    """Failed measurements a watch window tolerates: it fails when failures exceed this (0: the first fails)."""
    compare: Literal["canary_to_stable"] | None = None
    """`canary_to_stable`: at each canary / blue-green verify step, run the query for the canary and for the
    stable (`{canary}` filled with each's version, or colour under blue_green) and judge `canary / stable`,
    e.g. `fail_if: "ratio > 1.5"`; only with a canary or blue_green strategy (docs/checks.md)."""
    min_value: float | None = Field(default=None, ge=0)
    """A `compare` check's floor: when both values are below it the check passes (tiny numbers are noise)."""

    @model_validator(mode="after")
    def _shape(self) -> Check:
        if sum(kind is not None for kind in (self.prometheus, self.http, self.loki)) != 1:
            raise ValueError("give exactly one of prometheus, http or loki")
        if self.loki is not None and self.pass_if is None and self.fail_if is None:
            raise ValueError("a loki check needs pass_if and/or fail_if")
        if self.loki is not None and self.auth is not None:
            raise ValueError("auth is for http checks; Loki's credentials are metrics.loki_auth")
        if self.prometheus is not None and self.pass_if is None and self.fail_if is None:
            raise ValueError("a prometheus check needs pass_if and/or fail_if")
        if self.prometheus is not None and self.auth is not None:
            raise ValueError("auth is for http checks; Prometheus's credentials are metrics.prometheus_auth")
        if any(offset <= timedelta(0) for offset in self.after):
            raise ValueError("after offsets must be positive")
        return self

    @model_validator(mode="after")
    def _watch_and_compare(self) -> Check:
        # Its own validator (not _shape): the watch window and the comparison are fields of their own.
        _watch_problems(self)
        _compare_problems(self)
        return self

    @property
    def watch_ticks(self) -> int:
        """How many measurements a watch window takes (0 for a check at ``after`` offsets)."""
        if self.every is None or self.for_ is None:
            return 0
        return int(self.for_.total_seconds() // self.every.total_seconds())


# Each tick is a stored measurement and a scheduler job: every 30s for 6h is 720 of them per check and release.
MAX_WATCH_TICKS = 720

COMPARE_PLACEHOLDERS = ("canary", "stable")
"""What a ``compare: canary_to_stable`` query may name besides ``{service}``, ``{environment}``, ``{version}``."""


def _watch_problems(check: Check) -> None:
    if check.every is None:
        if check.for_ is not None:
            raise ValueError("for needs every (the watch window measures every N seconds for that long)")
        if check.failure_limit:
            raise ValueError("failure_limit is for a watch window: give every and for")
        return
    if check.for_ is None:
        raise ValueError("every needs for: how long the watch window lasts after the release")
    if check.every < timedelta(seconds=1):
        raise ValueError("every must be at least 1s")
    if check.for_ < check.every:
        raise ValueError("for must be at least every")
    if check.watch_ticks > MAX_WATCH_TICKS:
        raise ValueError(
            f"a watch window of every {format_duration(check.every)} for {format_duration(check.for_)} is "
            f"{check.watch_ticks} measurements per release; at most {MAX_WATCH_TICKS} "
            "(measure less often, or for less long)"
        )
    if "after" in check.model_fields_set:
        raise ValueError("give after (fixed offsets) or every and for (a watch window), not both")
    if check.compare is not None:
        raise ValueError("a compare check runs at the canary / blue-green verify steps, not in a watch window")


def _compare_problems(check: Check) -> None:
    template = check.prometheus or check.http or check.loki or ""
    named = {match.group(1) for match in PLACEHOLDER.finditer(template)} & set(COMPARE_PLACEHOLDERS)
    ratio = any(c is not None and c.subject == "ratio" for c in (check.pass_if, check.fail_if))
    if check.compare is None:
        if named:
            raise ValueError("{canary} and {stable} are for compare: canary_to_stable checks")
        if ratio:
            raise ValueError('"ratio" conditions are for compare: canary_to_stable checks')
        if check.min_value is not None:
            raise ValueError("min_value is the floor of a compare: canary_to_stable check")
        return
    if check.prometheus is None:
        raise ValueError("compare: canary_to_stable needs a prometheus query")
    if "canary" not in named:
        raise ValueError("a compare query names the side it measures with {canary} (run again for the stable)")
    if "after" in check.model_fields_set:
        raise ValueError("a compare check runs at the canary / blue-green verify steps, not at after offsets")


def unique_check_names(checks: list[Check]) -> list[Check]:
    """A check's name identifies its measurements (per release, check and offset) and its reply in the thread:
    two checks of one name would overwrite each other's measurements, so a name appears once per list."""
    seen: dict[str, int] = {}
    for i, check in enumerate(checks):
        if check.name in seen:
            raise ValueError(
                f"check name {check.name!r} is used by checks[{seen[check.name]}] and checks[{i}]: "
                "each check of an environment needs its own name"
            )
        seen[check.name] = i
    return checks


CheckList = Annotated[list[Check], AfterValidator(unique_check_names)]


class Environment(Model):
    window: Literal["always", "business_hours"] = "always"
    """`business_hours`: business days and hours, holidays, cut-off and freezes apply; `always`: only ad-hoc freezes."""
    allowed: list[str] | None = None
    """Groups whose members may release here; omitted means anyone."""
    approvals: ReleaseApprovalPolicy = ReleaseApprovalPolicy()
    """Approvals a release here needs before it starts (a break-glass `--force` adds an on-call approval)."""
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
    """Rollout strategy: `all_at_once`, `canary` or `blue_green`; a service may have its own
    (`services.<name>.environments.<env>.strategy`)."""
    deploy: DeployProvider
    """The deploy provider: `command`, `http` or `github_actions`."""
    checks: CheckList = Field(default_factory=list)
    """Post-release metric checks (and the checks between canary and blue/green steps); a service may have its
    own (`services.<name>.environments.<env>.checks`)."""
    on_check_failure: Literal["offer_rollback", "auto_rollback", "notify"] = "offer_rollback"
    """What a FAIL does: offer on-call a rollback, roll back at once, or only tell."""
    production: bool = False
    """A production environment: what DORA, the summaries and the release manifest count. A pipeline has at
    most one; when none of its stages says `production: true`, its last stage is production."""
    on_alert: Literal["offer_rollback", "auto_rollback", "notify"] = "offer_rollback"
    """What an Alertmanager alert firing in a release's watch window does (`POST /api/v1/alerts`, docs/alerts.md):
    post in the release's thread, ping on-call and offer **Roll back now** / **Acknowledge**; roll back at once
    (as the bot, through the same rollback path); or only tell (post and ping, with **Acknowledge**)."""
    watch: Duration = Field(default=timedelta(minutes=30), gt=timedelta(0))
    """How long after a release here finishes an alert is taken to be about it (the watch window): a firing
    alert that started in it goes to the release's thread and counts against the release in DORA."""

"""Pydantic models of ``releasebot.yml`` ("environments as code"), and loading with path-named errors.

Every key of SPEC §3 is modelled and validated here, including the ones later features act on, so a
typo is reported when the file is loaded rather than when the feature first runs.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.core.conditions import Condition, parse_condition
from bot.core.durations import parse_duration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
_WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
_BLOCKING: tuple[Severity, ...] = ("CRITICAL",)
ChecklistItem = Literal[
    "unit", "integration", "performance", "vulnerability_scan", "release_notes", "rollback_plan", "images"
]
SLACK_ID = re.compile(r"^[USWB][A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


def _condition(value: Any) -> Any:
    if isinstance(value, str):
        return parse_condition(value)
    return value


def _hhmm(value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            raise ValueError(f"bad time {value!r}: use HH:MM, e.g. 09:00")
        hours, minutes = (int(x) for x in value.strip().split(":"))
        return time(hours, minutes)
    if isinstance(value, int):  # YAML 1.1 reads 09:00 unquoted as sexagesimal minutes
        return time(value // 60, value % 60)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
ConditionField = Annotated[Condition, BeforeValidator(_condition)]
ClockTime = Annotated[time, BeforeValidator(_hhmm)]


class Model(BaseModel):
    """Base: unknown keys are errors, models are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True)


class Calendar(Model):
    country: str
    """ISO 3166 country code whose public holidays close business-hours windows (e.g. `CA`, `GB`)."""
    subdivision: str | None = None
    """Province, state or nation within the country (e.g. `ON`, `ENG`), for regional holidays."""

    @model_validator(mode="after")
    def _known(self) -> Calendar:
        supported = holidays.list_supported_countries()
        if self.country not in supported:
            raise ValueError(f"unknown country {self.country!r} (use an ISO 3166-1 alpha-2 code, e.g. CA, GB)")
        subdivisions = supported[self.country]
        if self.subdivision is not None and self.subdivision not in subdivisions:
            raise ValueError(
                f"unknown subdivision {self.subdivision!r} for {self.country} "
                f"(known: {', '.join(subdivisions[:12])}{'…' if len(subdivisions) > 12 else ''})"
            )
        return self


class BusinessHours(Model):
    days: list[Weekday] = Field(default_factory=lambda: list(_WORKWEEK))
    """Working days (`mon` … `sun`)."""
    start: ClockTime = time(9, 0)
    """When the window opens on a working day (`HH:MM`, configured zone)."""
    end: ClockTime = time(16, 0)
    """When the window closes on a working day (`HH:MM`)."""
    last_release_before_non_working_day: ClockTime | None = None
    """Cut-off on the last working day before a weekend, holiday or freeze (`HH:MM`)."""

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if not self.days:
            raise ValueError("days must name at least one working day")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:%H:%M}) must be after start ({self.start:%H:%M})")
        cutoff = self.last_release_before_non_working_day
        if cutoff is not None and not self.start < cutoff <= self.end:
            raise ValueError("last_release_before_non_working_day must fall between start and end")
        return self


class Freeze(Model):
    start: date
    """First frozen day (inclusive, configured zone)."""
    end: date
    """Last frozen day (inclusive)."""
    reason: str = Field(min_length=1, max_length=200)
    """Shown to anyone whose release the freeze refuses."""
    environments: list[str] | None = None
    """Environments frozen; omitted means every business-hours environment."""

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class RepoConfig(Model):
    path: Path | None = None
    """A local git repository (relative to the config file) for release notes."""
    github: str | None = None
    """`owner/name` on GitHub, read through the compare API for release notes."""

    @model_validator(mode="after")
    def _one(self) -> RepoConfig:
        if (self.path is None) == (self.github is None):
            raise ValueError("give exactly one of path or github")
        if self.github is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.github):
            raise ValueError(f"github must be owner/name, got {self.github!r}")
        return self


class Service(Model):
    channel: str
    """The release channel (Slack ID); `/release` typed there means this service."""
    repo: RepoConfig | None = None
    """Where the commits live, for release notes and lead time."""
    components: list[str] = Field(default_factory=list)
    """Deployable parts; CI reports one image per component."""
    pipeline: list[str] = Field(min_length=1)
    """Environments in promotion order; a stage only gets versions that passed the one before."""

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not CHANNEL_ID.match(value):
            raise ValueError(f"channel must be a Slack channel ID like C01RELEASES, got {value!r}")
        return value


class ApprovalPolicy(Model):
    required: int = Field(default=0, ge=0, le=5)
    """How many approvers are needed (the requester never counts)."""
    from_: list[str] | None = Field(default=None, alias="from")
    """Groups whose members may approve; omitted means anyone but the requester."""
    expires_after: Duration = timedelta(minutes=30)
    """An undecided request expires after this long."""


class RollbackPolicy(Model):
    approvals: ApprovalPolicy = ApprovalPolicy()
    """Approvals a release needs before it starts."""
    """Approvals a rollback needs (rollbacks are never blocked by windows)."""


class VulnerabilityScan(Model):
    block_on: list[Severity] = Field(default_factory=lambda: list(_BLOCKING))
    """Severities that block the checklist item `vulnerability_scan`."""


class Images(Model):
    require_digest: bool = False
    """Every component image must be pinned `@sha256:` (hermetic releases)."""


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

    @model_validator(mode="after")
    def _shape(self) -> Check:
        if (self.prometheus is None) == (self.http is None):
            raise ValueError("give exactly one of prometheus or http")
        if self.prometheus is not None and self.pass_if is None and self.fail_if is None:
            raise ValueError("a prometheus check needs pass_if and/or fail_if")
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


class Metrics(Model):
    prometheus_url: str = "http://127.0.0.1:9090"
    """Base URL of the Prometheus HTTP API."""
    timeout: Duration = timedelta(seconds=10)
    """Per-request timeout for checks."""
    retries: int = Field(default=3, ge=0, le=10)
    """Retries after an unreachable backend before "metrics unavailable" (INCONCLUSIVE)."""
    retry_delay: Duration = timedelta(seconds=2)
    """Wait between retries."""


class Summaries(Model):
    channel: str
    """Channel the summaries are posted to."""
    daily: ClockTime | None = None
    """Time of the daily summary (`HH:MM`, configured zone)."""
    weekly: str | None = None  # "fri 15:00"
    """Day and time of the weekly summary, e.g. `fri 15:00`."""

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.strip().lower().split()
        if len(parts) != 2 or parts[0] not in WEEKDAYS or not re.fullmatch(r"\d{1,2}:\d{2}", parts[1]):
            raise ValueError(f"weekly must be '<day> HH:MM', e.g. 'fri 15:00', got {value!r}")
        return value

    def weekly_at(self) -> tuple[Weekday, time] | None:
        """The weekly slot as (weekday, time), or None when no weekly summary is configured."""
        if self.weekly is None:
            return None
        day, hhmm = self.weekly.strip().lower().split()
        hours, minutes = (int(x) for x in hhmm.split(":"))
        return day, time(hours, minutes)  # type: ignore[return-value]


class ManifestRepo(Model):
    repo: Path
    """Local git repository the manifest file is committed to."""
    file: str = "manifests/{service}.json"
    """Path of the manifest file inside the repository; `{service}` substituted."""


class Config(Model):
    timezone: str = "UTC"
    """IANA time zone of windows, summaries and displayed times."""
    calendar: Calendar | None = None
    """Public holiday calendar."""
    business_hours: BusinessHours = BusinessHours()
    """When `business_hours` environments are open."""
    freezes: list[Freeze] = Field(default_factory=list)
    """Planned freezes."""
    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Named groups of Slack user IDs (`U…`) and user-group IDs (`S…`)."""
    services: dict[str, Service] = Field(min_length=1)
    """Services by name."""
    environments: dict[str, Environment] = Field(min_length=1)
    """Environments by name."""
    metrics: Metrics = Metrics()
    """Where post-release checks read metrics."""
    summaries: Summaries | None = None
    """Daily and weekly summaries."""
    manifest: ManifestRepo | None = None
    """A git repository the release manifest is committed to on every production release."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name, e.g. America/Toronto)") from None
        return value

    @field_validator("groups")
    @classmethod
    def _members(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, members in value.items():
            for member in members:
                if not SLACK_ID.match(member):
                    raise ValueError(f"group {name!r}: {member!r} is not a Slack user (U…) or group (S…) ID")
        return value

    @model_validator(mode="after")
    def _references(self) -> Config:
        errors: list[str] = []
        for name in [*self.services, *self.environments, *self.groups]:
            if not NAME.match(name):
                errors.append(f"{name!r}: names are lowercase letters, digits, '-' and '_'")
        for svc_name, svc in self.services.items():
            for i, env in enumerate(svc.pipeline):
                if env not in self.environments:
                    errors.append(f"services.{svc_name}.pipeline[{i}]: undefined environment {env!r}")
            if len(set(svc.pipeline)) != len(svc.pipeline):
                errors.append(f"services.{svc_name}.pipeline: an environment appears twice")
        for env_name, environment in self.environments.items():
            for i, group in enumerate(environment.allowed or []):
                if group not in self.groups:
                    errors.append(f"environments.{env_name}.allowed[{i}]: undefined group {group!r}")
            policies = (
                (environment.approvals, "approvals"),
                (environment.rollback.approvals, "rollback.approvals"),
            )
            for policy, where in policies:
                for i, group in enumerate(policy.from_ or []):
                    if group not in self.groups:
                        errors.append(f"environments.{env_name}.{where}.from[{i}]: undefined group {group!r}")
        for i, freeze in enumerate(self.freezes):
            for j, env in enumerate(freeze.environments or []):
                if env not in self.environments:
                    errors.append(f"freezes[{i}].environments[{j}]: undefined environment {env!r}")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    def service_for_channel(self, channel_id: str) -> str | None:
        """The service whose release channel this is, if any."""
        for name, svc in self.services.items():
            if svc.channel == channel_id:
                return name
        return None

    def previous_stage(self, service: str, env: str) -> str | None:
        """The pipeline stage before ``env`` for ``service`` (None for the first stage)."""
        pipeline = self.services[service].pipeline
        index = pipeline.index(env)
        return pipeline[index - 1] if index > 0 else None


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader that reads only true/false as booleans, as YAML 1.2 does.

    YAML 1.1 turns ``ON`` (Ontario), ``NO`` (Norway) and ``yes``/``off`` into booleans, which silently
    breaks calendar subdivisions and country codes.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class ConfigError(Exception):
    """A config file that cannot be used; ``errors`` holds one ``path: message`` line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(f"  {e}" for e in errors))
        self.source = source
        self.errors = errors


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {
            "command",
            "http",
            "github_actions",
            "canary",
            "blue_green",
            "all_at_once",
        } and out.endswith((".deploy", ".strategy")):
            continue  # pydantic names the union member chosen; the user's path does not include it
        else:
            out += ("." if out else "") + str(part)
    return out


def _format(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        path = _path(tuple(item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        if path:
            lines.append(f"{path}: {message}")
        else:
            # Cross-reference errors carry their own paths, joined with '; '.
            lines.extend(part for part in message.split("; "))
    return lines


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate an already-parsed document; raise ConfigError listing every problem with its path."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _format(exc)) from None


def load_config(path: Path) -> Config:
    """Read and validate a YAML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"(file): cannot read: {exc.strerror}"]) from None
    try:
        data = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"(yaml): {exc}"]) from None
    return parse_config(data, str(path))

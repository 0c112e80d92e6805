"""Pydantic models of ``releasebot.yml`` ("environments as code"), and loading with path-named errors.

Every key of SPEC §3 is modelled and validated here, including the ones later features act on, so a
typo is reported when the file is loaded rather than when the feature first runs. The models live in
``types`` (building blocks), ``policy`` (hours, freezes, approvals), ``calendars``, ``when`` (time rules),
``rollout`` (strategies, providers, checks, environments), ``services`` and ``auth`` (credentials of the HTTP
backends); ``paths`` makes paths relative to the file and ``references`` checks the names the file refers to.
This module holds the top-level ``Config``, its accessors and the loader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ModelWrapValidatorHandler, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.config.auth import EnvName, HttpAuth
from bot.config.calendars import Calendar, ExtraDay, SkipDay
from bot.config.events import Events, Webhook
from bot.config.paths import BASE_DIR, ConfigPath
from bot.config.policy import (
    ApprovalPolicy,
    BusinessHours,
    Freeze,
    Images,
    ReleaseApprovalPolicy,
    RepoConfig,
    RollbackPolicy,
    VulnerabilityScan,
)
from bot.config.references import reference_problems
from bot.config.rollout import (
    AllAtOnceStrategy,
    BlueGreenStrategy,
    CanaryStrategy,
    Check,
    CommandProvider,
    DeployProvider,
    Environment,
    GithubActionsProvider,
    HttpProvider,
    OnMissing,
    Strategy,
)
from bot.config.services import Service, ServiceEnvironment
from bot.config.source import ConfigError, Loc, Position, Problem, read_yaml, sort_problems, validation_problems
from bot.config.trains import Train
from bot.config.types import (
    SLACK_ID,
    WEEKDAYS,
    ChecklistItem,
    ClockTime,
    ConditionField,
    Duration,
    Model,
    Severity,
    Weekday,
)

__all__ = [
    "Alerts",
    "AllAtOnceStrategy",
    "ApprovalPolicy",
    "BlueGreenStrategy",
    "BusinessHours",
    "Calendar",
    "CanaryStrategy",
    "Check",
    "ChecklistItem",
    "ClockTime",
    "CommandProvider",
    "ConditionField",
    "Config",
    "ConfigError",
    "DeployProvider",
    "Duration",
    "Environment",
    "Events",
    "ExtraDay",
    "Freeze",
    "GithubActionsProvider",
    "HttpAuth",
    "HttpProvider",
    "Images",
    "ManifestRepo",
    "Metrics",
    "Model",
    "OnMissing",
    "ReleaseApprovalPolicy",
    "RepoConfig",
    "RollbackPolicy",
    "Service",
    "ServiceEnvironment",
    "Severity",
    "SkipDay",
    "Strategy",
    "Summaries",
    "Train",
    "VulnerabilityScan",
    "Webhook",
    "WEEKDAYS",
    "Weekday",
    "load_config",
    "load_config_located",
    "parse_config",
]


class Metrics(Model):
    prometheus_url: str = "http://127.0.0.1:9090"
    """Base URL of the Prometheus HTTP API."""
    prometheus_auth: HttpAuth | None = None
    """Credentials (from environment variables) and trusted CAs for Prometheus (or Thanos, Mimir, Grafana Cloud)."""
    loki_url: str | None = None
    """Base URL of the Loki HTTP API (e.g. `http://127.0.0.1:3100`), read by `loki` checks; a `loki` check without
    it is a config error."""
    loki_auth: HttpAuth | None = None
    """Credentials (from environment variables) and trusted CAs for Loki, e.g. the tenant as
    `headers_env: {X-Scope-OrgID: LOKI_TENANT}`."""
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


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Prometheus's label names


class Alerts(Model):
    token_env: EnvName
    """Environment variable holding the bearer token Alertmanager sends to `POST /api/v1/alerts` (its
    `http_config.authorization.credentials`); the bot does not start without it."""
    service_label: str = "service"
    """The alert label naming the service (a key of `services`)."""
    env_label: str = "env"
    """The alert label naming the environment (a key of `environments`)."""

    @field_validator("service_label", "env_label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _LABEL_NAME.match(value):
            raise ValueError(f"{value!r} is not a Prometheus label name (letters, digits and _)")
        return value

    def auth(self) -> HttpAuth:
        """The token as an ``auth`` block, so start-up and `check-config` check its variable like every other."""
        return HttpAuth(token_env=self.token_env)


class ManifestRepo(Model):
    repo: ConfigPath
    """Local git repository the manifest file is committed to (relative to the config file)."""
    file: str = "manifests/{service}.json"
    """Path of the manifest file inside the repository; `{service}` substituted."""


class Config(Model):
    timezone: str = "UTC"
    """IANA time zone of windows, summaries and displayed times."""
    calendar: Calendar | None = None
    """Holiday calendar: country, categories, the team's own days off and the holidays it works."""
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
    trains: dict[str, Train] = Field(default_factory=dict)
    """Release trains, by the environment they release to: when they depart, what they carry, who may hold them
    (docs/trains.md)."""
    alerts: Alerts | None = None
    """Alertmanager's webhook (`POST /api/v1/alerts`, docs/alerts.md): its token and the labels naming service and
    environment; omitted, the route is not served."""
    events: Events = Events()
    """Outbound events: CloudEvents webhooks and GitHub Deployments (docs/events.md)."""

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

    @model_validator(mode="wrap")
    @classmethod
    def _references(cls, data: Any, handler: ModelWrapValidatorHandler[Config]) -> Config:
        """Structure and cross-references in one pass: the references are read off the document as written, so
        a pipeline typo or an undefined group is reported beside every structural error, not after them."""
        found: list[InitErrorDetails] = [
            {"type": PydanticCustomError("reference", message), "loc": loc, "input": None}
            for loc, message in [*reference_problems(data), *_loki_url_problems(data)]
        ]
        try:
            config = handler(data)
        except ValidationError as exc:
            if not found:
                raise
            # Rebuilt with their messages as they are, so nothing reads them differently from pydantic's own.
            structural: list[InitErrorDetails] = [
                {"type": PydanticCustomError(e["type"], e["msg"]), "loc": e["loc"], "input": e["input"]}
                for e in exc.errors()
            ]
            raise ValidationError.from_exception_data(cls.__name__, [*structural, *found]) from None
        if found:
            raise ValidationError.from_exception_data(cls.__name__, found)
        return config

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    def http_auths(self) -> list[tuple[Loc, HttpAuth]]:
        """Every ``auth`` block with its path in the file: deploy services', HTTP checks' and Prometheus's."""
        found: list[tuple[Loc, HttpAuth]] = []
        for name, environment in self.environments.items():
            if isinstance(environment.deploy, HttpProvider) and environment.deploy.auth is not None:
                found.append((("environments", name, "deploy", "auth"), environment.deploy.auth))
            for i, check in enumerate(environment.checks):
                if check.auth is not None:
                    found.append((("environments", name, "checks", i, "auth"), check.auth))
        for name, svc in self.services.items():
            for env, own in svc.environments.items():
                for i, check in enumerate(own.checks or []):
                    if check.auth is not None:
                        found.append((("services", name, "environments", env, "checks", i, "auth"), check.auth))
        if self.metrics.prometheus_auth is not None:
            found.append((("metrics", "prometheus_auth"), self.metrics.prometheus_auth))
        if self.alerts is not None:
            found.append((("alerts",), self.alerts.auth()))
        if self.metrics.loki_auth is not None:
            found.append((("metrics", "loki_auth"), self.metrics.loki_auth))
        return found

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

    def strategy_for(self, service: str, env: str) -> Strategy:
        """How ``service`` rolls out in ``env``: its own strategy there, else the environment's."""
        own = self.services[service].environments.get(env)
        return own.strategy if own is not None and own.strategy is not None else self.environments[env].strategy

    def checks_for(self, service: str, env: str) -> list[Check]:
        """The checks of ``service`` in ``env``: its own there (possibly none), else the environment's."""
        own = self.services[service].environments.get(env)
        return list(own.checks if own is not None and own.checks is not None else self.environments[env].checks)

    def approvals_required(self, env: str, at: datetime) -> int:
        """How many approvals a release to ``env`` requested at the aware instant ``at`` needs (0: none)."""
        return self.environments[env].approvals.required_at(at.astimezone(self.zone))

    def production_env(self, service: str) -> str:
        """The production stage of ``service``: the one marked ``production: true``, else its last stage."""
        pipeline = self.services[service].pipeline
        return next((env for env in pipeline if self.environments[env].production), pipeline[-1])


def _loki_url_problems(data: Any) -> list[tuple[Loc, str]]:
    """A ``loki`` check where ``metrics.loki_url`` is not set, at the check's ``loki`` key (read off the document
    as written, like the references, so it is reported beside every other problem)."""
    if not isinstance(data, dict):
        return []
    metrics = data.get("metrics")
    if isinstance(metrics, dict) and metrics.get("loki_url") is not None:
        return []
    places: list[tuple[Loc, Any]] = []
    for name, env in _dict(data.get("environments")).items():
        places.append((("environments", name, "checks"), _dict(env).get("checks")))
    for name, svc in _dict(data.get("services")).items():
        for env, own in _dict(_dict(svc).get("environments")).items():
            places.append((("services", name, "environments", env, "checks"), _dict(own).get("checks")))
    return [
        ((*where, i, "loki"), "a loki check needs metrics.loki_url (the base URL of Loki's HTTP API)")
        for where, checks in places
        if isinstance(checks, list)
        for i, check in enumerate(checks)
        if isinstance(check, dict) and check.get("loki") is not None
    ]


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def parse_config(
    data: Any,
    source: str = "<config>",
    positions: Mapping[Loc, Position] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Validate an already-parsed document; raise ConfigError listing every problem with its path.

    ``positions`` (from ``read_yaml``) gives each problem the line and column of its node in the file.
    ``base_dir`` (the file's directory) is what relative paths in it are taken against; without it they stay
    as written, relative to the bot's working directory.
    """
    positions = positions or {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("(top level)", "expected a mapping of keys", positions.get(()))])
    try:
        return Config.model_validate(data, context={BASE_DIR: base_dir} if base_dir is not None else None)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc, positions)) from None


def load_config(path: Path) -> Config:
    """Read and validate a YAML 1.2 config file; every problem is reported at once, at its line and column."""
    return load_config_located(path)[0]


def load_config_located(path: Path) -> tuple[Config, dict[Loc, Position]]:
    """``load_config``, with the line and column of every key, for problems found after loading.

    Relative paths in the file (programs, working directories, repositories, CA files) are made absolute
    against the file's directory, so the bot can be started from anywhere.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(str(path), [Problem("(file)", f"cannot read: {reason}")]) from None
    document = read_yaml(text, str(path))
    try:
        config = parse_config(document.data, str(path), document.positions, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(str(path), sort_problems(document.duplicates + exc.problems)) from None
    if document.duplicates:
        raise ConfigError(str(path), document.duplicates)
    return config, document.positions

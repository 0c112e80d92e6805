"""Pydantic models of ``releasebot.yml`` ("environments as code"), and loading with path-named errors.

Every key of SPEC §3 is modelled and validated here, including the ones later features act on, so a
typo is reported when the file is loaded rather than when the feature first runs. The models live in
``types`` (building blocks), ``policy`` (calendars, hours, approvals), ``rollout`` (strategies,
providers, checks) and ``auth`` (credentials of the HTTP backends); this module holds the top-level
``Config`` and the loader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from bot.config.auth import HttpAuth
from bot.config.calendars import Calendar, ExtraDay, SkipDay
from bot.config.policy import (
    ApprovalPolicy,
    BusinessHours,
    Freeze,
    Images,
    RepoConfig,
    RollbackPolicy,
    Service,
    VulnerabilityScan,
)
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
from bot.config.source import ConfigError, Loc, Position, Problem, read_yaml, sort_problems, validation_problems
from bot.config.types import (
    NAME,
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
    "RepoConfig",
    "RollbackPolicy",
    "Service",
    "Severity",
    "SkipDay",
    "Strategy",
    "Summaries",
    "VulnerabilityScan",
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
        sections: dict[str, list[str]] = {
            "services": [*self.services],
            "environments": [*self.environments],
            "groups": [*self.groups],
        }
        for section, names in sections.items():
            for name in names:
                if not NAME.match(name):
                    errors.append(f"{section}: {name!r}: names are lowercase letters, digits, '-' and '_'")
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

    def http_auths(self) -> list[tuple[Loc, HttpAuth]]:
        """Every ``auth`` block with its path in the file: deploy services', HTTP checks' and Prometheus's."""
        found: list[tuple[Loc, HttpAuth]] = []
        for name, environment in self.environments.items():
            if isinstance(environment.deploy, HttpProvider) and environment.deploy.auth is not None:
                found.append((("environments", name, "deploy", "auth"), environment.deploy.auth))
            for i, check in enumerate(environment.checks):
                if check.auth is not None:
                    found.append((("environments", name, "checks", i, "auth"), check.auth))
        if self.metrics.prometheus_auth is not None:
            found.append((("metrics", "prometheus_auth"), self.metrics.prometheus_auth))
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


def parse_config(data: Any, source: str = "<config>", positions: Mapping[Loc, Position] | None = None) -> Config:
    """Validate an already-parsed document; raise ConfigError listing every problem with its path.

    ``positions`` (from ``read_yaml``) gives each problem the line and column of its node in the file.
    """
    positions = positions or {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("(top level)", "expected a mapping of keys", positions.get(()))])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc, positions)) from None


def load_config(path: Path) -> Config:
    """Read and validate a YAML 1.2 config file; every problem is reported at once, at its line and column."""
    return load_config_located(path)[0]


def load_config_located(path: Path) -> tuple[Config, dict[Loc, Position]]:
    """``load_config``, with the line and column of every key, for problems found after loading."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(str(path), [Problem("(file)", f"cannot read: {reason}")]) from None
    document = read_yaml(text, str(path))
    try:
        config = parse_config(document.data, str(path), document.positions)
    except ConfigError as exc:
        raise ConfigError(str(path), sort_problems(document.duplicates + exc.problems)) from None
    if document.duplicates:
        raise ConfigError(str(path), document.duplicates)
    return config, document.positions

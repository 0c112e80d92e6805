"""Who and when: calendars, business hours, freezes, services, approvals, checklist evidence rules."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config.types import _BLOCKING, _WORKWEEK, CHANNEL_ID, ClockTime, Duration, Model, Severity, Weekday


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


ScanClass = Literal["vulnerabilities", "secrets", "misconfigurations"]
_SCAN_CLASSES: tuple[ScanClass, ...] = ("vulnerabilities", "secrets", "misconfigurations")


class VulnerabilityScan(Model):
    block_on: list[Severity] = Field(default_factory=lambda: list(_BLOCKING))
    """Severities that block the checklist item `vulnerability_scan`."""
    classes: list[ScanClass] = Field(default_factory=lambda: list(_SCAN_CLASSES))
    """Trivy finding classes judged: `vulnerabilities`, `secrets`, `misconfigurations` (failed checks only)."""

    @field_validator("classes")
    @classmethod
    def _some_class(cls, value: list[ScanClass]) -> list[ScanClass]:
        if not value:
            raise ValueError(
                "must name at least one of vulnerabilities, secrets, misconfigurations "
                "(to judge no scan, drop vulnerability_scan from the checklist)"
            )
        return list(dict.fromkeys(value))


class Images(Model):
    require_digest: bool = False
    """Every component image must be pinned `@sha256:` (hermetic releases)."""

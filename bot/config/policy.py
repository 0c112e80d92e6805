"""Who and when: business hours, freezes, repositories, approvals, checklist evidence rules."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from bot.config.paths import ConfigPath
from bot.config.types import _BLOCKING, _WORKWEEK, ClockTime, Duration, Model, Severity, Weekday
from bot.config.when import TimeRuleField


class BusinessHours(Model):
    days: list[Weekday] = Field(default_factory=lambda: list(_WORKWEEK))
    """Working days (`mon` … `sun`)."""
    start: ClockTime = time(9, 0)
    """When the window opens on a working day (`HH:MM`, configured zone)."""
    end: ClockTime = time(16, 0)
    """When the window closes on a working day (`HH:MM`)."""
    last_release: dict[Weekday, ClockTime] = Field(default_factory=dict)
    """Cut-off per working day, e.g. `{fri: "14:00"}`: no release starts after it that day (`HH:MM`)."""
    last_release_before_non_working_day: ClockTime | None = None
    """Cut-off on the last working day before a weekend, holiday or freeze (`HH:MM`); with a `last_release`
    that day too, the earlier one applies."""

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

    @field_validator("last_release")
    @classmethod
    def _working_days(cls, value: dict[Weekday, time], info: ValidationInfo) -> dict[Weekday, time]:
        days, start, end = (info.data.get(key) for key in ("days", "start", "end"))
        for day, last in value.items():
            if days is not None and day not in days:
                raise ValueError(f"{day} is not a working day (days: {', '.join(days)})")
            if start is not None and end is not None and not start < last <= end:
                raise ValueError(f"{day}: {last:%H:%M} must be after start ({start:%H:%M}) and no later than end")
        return value


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
    path: ConfigPath | None = None
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


class ApprovalPolicy(Model):
    required: int = Field(default=0, ge=0, le=5)
    """How many approvers are needed (the requester never counts)."""
    from_: list[str] | None = Field(default=None, alias="from")
    """Groups whose members may approve; omitted means anyone but the requester (for a rollback: the `oncall`
    group). `required` may not exceed their members (a Slack user group `S…` counts as any size)."""
    expires_after: Duration = timedelta(minutes=30)
    """An undecided request expires after this long."""


class ReleaseApprovalPolicy(ApprovalPolicy):
    when: list[TimeRuleField] | None = Field(default=None, min_length=1)
    """When the approvals are needed: a list of rules, any of which matching the request's time (configured
    zone) asks for them; omitted means always. A rule is days, a time or both: `fri`, `mon-thu`, `sat,sun`;
    `after 16:00`, `before 09:00`, `12:00-13:00`; `fri after 12:00`. E.g. `["after 16:00", "fri"]`."""

    @model_validator(mode="after")
    def _when_needs_approvers(self) -> ReleaseApprovalPolicy:
        if self.when is not None and self.required == 0:
            raise ValueError("when has no effect with required: 0 (set how many approvals it asks for)")
        return self

    def required_at(self, local: datetime) -> int:
        """The approvals a release requested at ``local`` (wall clock in the configured zone) needs."""
        if self.when is None or any(rule.matches(local) for rule in self.when):
            return self.required
        return 0


class RollbackPolicy(Model):
    approvals: ApprovalPolicy = ApprovalPolicy()
    """Approvals a rollback needs (rollbacks are never blocked by windows). Without `from`, the `oncall` group
    approves; a rollback asked by one of its approvers counts as the first approval."""


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

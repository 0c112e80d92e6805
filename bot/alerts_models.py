"""What ``POST /api/v1/alerts`` accepts (Alertmanager's webhook body, version "4") and what the bot keeps of it.

Pure (pydantic and dataclasses only): ``bot.api`` moves bytes in and answers out, ``bot.engine.alerts`` acts.

Alertmanager's body (``notify/webhook/webhook.go`` ``Message``: ``template.Data`` plus ``version``, ``groupKey``
and ``truncatedAlerts``) is read leniently where Alertmanager may grow fields (unknown keys are ignored, as
Alertmanager's own receivers do) and strictly where the bot depends on it: the version, each alert's status,
labels, ``startsAt`` and ``fingerprint``. :func:`alerts_request` checks the whole body's shape before anything
is stored, so a body that is not Alertmanager's refuses the whole call and changes nothing. An alert of a
well-formed body whose labels name no configured service or environment is skipped, not refused: Alertmanager
does not retry a 4xx, so refusing the body would lose the valid alerts and resolves grouped with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, overload

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from bot.api_models import FieldProblem, parse_body
from bot.config import Config

__all__ = [
    "AlertItem",
    "CheckedAlert",
    "CheckedAlerts",
    "Incident",
    "SkippedAlert",
    "StoredAlert",
    "WebhookBody",
    "alerts_request",
]

WEBHOOK_VERSION = "4"
# Alertmanager's "no end yet": Go's zero time.Time, which a firing alert carries as endsAt.
_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_MAX_ALERTS = 1000  # Alertmanager's max_alerts is unbounded by default; this many is already a storm
_MAX_TEXT = 300  # an annotation kept for the message (summary); longer is clipped, not refused


def _instant(value: object) -> datetime | None:
    """An RFC 3339 instant as Go writes it (``Z``, fractions up to nanoseconds); Go's zero time is None."""
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 date-time string, e.g. 2026-11-26T16:36:06Z")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Go writes up to nine fractional digits; Python reads six.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value[:80]!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value[:80]!r} has no UTC offset")
    parsed = parsed.astimezone(UTC)
    return None if parsed <= _GO_ZERO_TIME else parsed


class _Lenient(BaseModel):
    # Alertmanager adds fields over time (truncatedAlerts came in 0.20): ignoring the unknown keeps a newer
    # Alertmanager working; what the bot reads is still checked strictly.
    model_config = ConfigDict(extra="ignore", frozen=True)


class AlertItem(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[StrictStr, StrictStr]
    annotations: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 - Alertmanager's JSON names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: StrictStr = ""  # noqa: N815
    fingerprint: StrictStr = Field(min_length=1, max_length=64)

    @field_validator("startsAt", mode="before")
    @classmethod
    def _starts(cls, value: object) -> datetime:
        parsed = _instant(value)
        if parsed is None:
            raise ValueError("an alert needs the time it started firing")
        return parsed

    @field_validator("endsAt", mode="before")
    @classmethod
    def _ends(cls, value: object) -> datetime | None:
        return None if value is None else _instant(value)


class WebhookBody(_Lenient):
    version: StrictStr
    groupKey: StrictStr = ""  # noqa: N815
    truncatedAlerts: int = Field(default=0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: StrictStr = ""
    externalURL: StrictStr = ""  # noqa: N815
    alerts: list[AlertItem] = Field(max_length=_MAX_ALERTS)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        # Checked first and on its own: another version may mean other fields, so nothing else is trusted.
        if value != WEBHOOK_VERSION:
            raise ValueError(f"unsupported webhook version {value[:20]!r}: this bot reads version {WEBHOOK_VERSION!r}")
        return value


@dataclass(frozen=True)
class CheckedAlert:
    """One alert of an accepted body, with the service and environment its labels name."""

    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None
    firing: bool
    service: str
    env: str
    name: str  # the alertname label
    summary: str  # the summary (or description) annotation, clipped; may be empty


@dataclass(frozen=True)
class SkippedAlert:
    """An alert of an accepted body the bot cannot place: its labels name no configured service or environment
    (or lack one). Nothing of it is stored; the answer lists it and the bot logs it."""

    fingerprint: str
    reason: str  # the label's path and what is wrong, e.g. "alerts[1].labels.service: unknown service 'billing' …"


@dataclass(frozen=True)
class CheckedAlerts(Sequence[CheckedAlert]):
    """An accepted body: the alerts the bot acts on (a sequence of them) and the ones it skipped."""

    alerts: tuple[CheckedAlert, ...]
    skipped: tuple[SkippedAlert, ...] = ()

    def __len__(self) -> int:
        return len(self.alerts)

    @overload
    def __getitem__(self, index: int) -> CheckedAlert: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[CheckedAlert]: ...

    def __getitem__(self, index: int | slice) -> CheckedAlert | Sequence[CheckedAlert]:
        return self.alerts[index]


@dataclass(frozen=True)
class StoredAlert:
    """An alert as the store keeps it: one row per (fingerprint, startsAt), so a repeat is no news."""

    fingerprint: str
    starts_at: datetime
    service: str
    env: str
    name: str
    summary: str
    firing: bool
    ends_at: datetime | None
    incident_id: int | None


@dataclass(frozen=True)
class Incident:
    """First firing to resolved, of one service in one environment about one release (or none); ``release_id``
    when it started during that release's rollout or in its watch window (it then counts against the release in
    DORA). At most one open per service, environment and release."""

    id: int
    service: str
    env: str
    release_id: int | None
    started_at: datetime
    resolved_at: datetime | None
    channel: str | None  # where its message is
    ts: str | None  # its message (a thread reply or a channel post), edited as the incident changes
    thread_ts: str | None  # the release thread it replied in, if any
    acknowledged_by: str | None
    source: str = "alert"
    rollback_asked_at: datetime | None = None  # when ``on_alert: auto_rollback`` asked its rollback (once)

    @property
    def open(self) -> bool:
        return self.resolved_at is None


def alerts_request(config: Config, data: object) -> CheckedAlerts:
    """Check a webhook body: its version first, then its shape, then what each alert's labels name.

    Raises InvalidBody naming every bad field (``version``, ``alerts[2].fingerprint``) of a body that is not
    Alertmanager's; none of it is stored. An alert whose labels name no configured service or environment is
    skipped (:class:`SkippedAlert`, with the label's path and what is wrong) and the rest are accepted.
    """
    if config.alerts is None:  # the route is not served without an ``alerts:`` block; a caller bug otherwise
        raise ValueError("alerts are not configured")
    if isinstance(data, dict) and "version" in data and data["version"] != WEBHOOK_VERSION:
        # Only the version is named: a body of another version is not read any further.
        parse_body(_VersionOnly, {"version": data["version"]})
    body = parse_body(WebhookBody, data)
    service_label, env_label = config.alerts.service_label, config.alerts.env_label
    checked: list[CheckedAlert] = []
    skipped: list[SkippedAlert] = []
    for i, alert in enumerate(body.alerts):
        problems = _label_problems(config, f"alerts[{i}].labels", alert.labels, service_label, env_label)
        if problems:
            skipped.append(SkippedAlert(alert.fingerprint, "; ".join(str(p) for p in problems)))
            continue
        summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
        checked.append(
            CheckedAlert(
                fingerprint=alert.fingerprint,
                starts_at=alert.startsAt,
                ends_at=alert.endsAt,
                firing=alert.status == "firing",
                service=alert.labels[service_label],
                env=alert.labels[env_label],
                name=alert.labels.get("alertname", "alert")[:_MAX_TEXT],
                summary=summary[:_MAX_TEXT],
            )
        )
    return CheckedAlerts(tuple(checked), tuple(skipped))


def _label_problems(
    config: Config, here: str, labels: dict[str, str], service_label: str, env_label: str
) -> list[FieldProblem]:
    """What keeps an alert from naming a configured service and one of its pipeline's environments."""
    service = labels.get(service_label)
    env = labels.get(env_label)
    problems: list[FieldProblem] = []
    if service is None:
        problems.append(FieldProblem(f"{here}.{service_label}", "required: the label naming the service"))
    elif service not in config.services:
        known = ", ".join(sorted(config.services))
        problems.append(FieldProblem(f"{here}.{service_label}", f"unknown service {service[:80]!r} (known: {known})"))
    if env is None:
        problems.append(FieldProblem(f"{here}.{env_label}", "required: the label naming the environment"))
    elif service in config.services and env not in config.services[service].pipeline:
        stages = ", ".join(config.services[service].pipeline)
        problems.append(
            FieldProblem(f"{here}.{env_label}", f"{env[:80]!r} is not an environment of {service} ({stages})")
        )
    return problems


class _VersionOnly(_Lenient):
    version: StrictStr

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return WebhookBody._version(value)

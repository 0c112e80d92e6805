"""Services: their channel, repository, components and pipeline, and what they roll out differently."""

from __future__ import annotations

from pydantic import Field, field_validator

from bot.config.policy import RepoConfig
from bot.config.rollout import CheckList, Strategy
from bot.config.types import CHANNEL_ID, Model


class ServiceEnvironment(Model):
    """How one service rolls out in one environment of its pipeline, where that differs from the environment."""

    strategy: Strategy | None = None
    """This service's rollout strategy here, instead of the environment's `strategy`."""
    checks: CheckList | None = None
    """This service's checks here, instead of the environment's `checks` (`[]`: none)."""


class Service(Model):
    channel: str
    """The release channel (Slack ID); `/release` typed there means this service."""
    repo: RepoConfig | None = None
    """Where the commits live, for release notes and lead time."""
    components: list[str] = Field(default_factory=list)
    """Deployable parts; CI reports one image per component."""
    pipeline: list[str] = Field(min_length=1)
    """Environments in promotion order; a stage only gets versions that passed the one before."""
    environments: dict[str, ServiceEnvironment] = Field(default_factory=dict)
    """Per environment of the pipeline, this service's own `strategy` or `checks`, e.g.
    `{prod: {strategy: {type: blue_green}}}`."""

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not CHANNEL_ID.match(value):
            raise ValueError(f"channel must be a Slack channel ID like C01RELEASES, got {value!r}")
        return value

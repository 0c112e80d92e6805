"""The ``events:`` block: outbound CloudEvents webhooks and GitHub Deployments (docs/events.md).

The event types live here, beside the config that names them, so that a webhook's ``types`` are checked when
the file is loaded (a typo is an error at its path, not a webhook that silently never fires). The store records
events of these types (``bot.store.events``); nothing here does I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from bot.config.auth import EnvName
from bot.config.types import NAME, Duration, Model

__all__ = [
    "EVENT_TYPES",
    "PREFIX",
    "RELEASE_STATES",
    "Events",
    "Webhook",
    "event_type",
    "shown_url",
    "target_label",
    "type_matches",
]

PREFIX = "dev.releasebot."
# scheme, optional user info (refused), host (a name or a bracketed IPv6 address), optional port, the rest.
_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<auth>[^/?#@\s]*@)?(?P<host>[^/?#@\s:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?(?:[/?#]\S*)?$"
)
# Any scheme (for saying what a wrong one was): scheme, user info (skipped), host, optional port, then the end or
# a path, query or fragment — anything else after the host (a port that is not a number) matches nothing.
_ANY_URL = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^/?#@\s]*@)?(?P<host>[^/?#@\s:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?(?:[/?#]|$)"
)
# One event type per release state (bot.core.models.ReleaseState; tests/test_events_config.py keeps the two equal):
# a receiver subscribes to `release.succeeded` without parsing data to learn what happened.
RELEASE_STATES = (
    "awaiting_approval",
    "queued",
    "deploying",
    "verifying",
    "succeeded",
    "failed",
    "rolled_back",
    "interrupted",
    "cancelled",
)
_SHORT_TYPES = (
    *(f"release.{state}" for state in RELEASE_STATES),
    "approval.requested",
    "approval.voted",
    "approval.approved",
    "approval.denied",
    "approval.expired",
    "approval.cancelled",
    "check.verdict",
    "alert.firing",
    "alert.resolved",
    "train.departed",
    "train.held",
    "train.missed",
    "train.cancelled",
)
EVENT_TYPES: tuple[str, ...] = tuple(PREFIX + short for short in _SHORT_TYPES)
"""Every CloudEvents ``type`` the bot emits, in documentation order."""


def event_type(short: str) -> str:
    """The full type of a known short name (``release.succeeded`` → ``dev.releasebot.release.succeeded``)."""
    full = short if short.startswith(PREFIX) else PREFIX + short
    if full not in EVENT_TYPES:
        raise ValueError(f"unknown event type {short!r}")
    return full


def type_matches(pattern: str, type_: str) -> bool:
    """Whether a subscription pattern (``*``, ``<prefix>.*`` or an exact type, all full names) takes ``type_``."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return type_.startswith(pattern[:-1])
    return pattern == type_


def target_label(target: str) -> str:
    """A label for a delivery target that is safe to show (metrics, logs): ``github``, or a webhook URL's scheme,
    host and port only. The path and query are left out because a receiver may take its token there."""
    if target == "github":
        return target
    found = _URL.match(target)
    if found is None:
        return "unknown"  # not a URL the config accepts: show nothing of it
    port = found.group("port")
    return f"{found.group('scheme')}://{found.group('host').lower()}" + (f":{port}" if port else "")


def shown_url(value: str) -> str | None:
    """What an error message may show of a configured URL, good or not: its scheme, host and port only (never
    its path, query or user info, where a receiver's token or a password may be); None when it has no
    recognisable scheme and host."""
    found = _ANY_URL.match(value.strip())
    if found is None:
        return None
    port = found.group("port")
    return f"{found.group('scheme')}://{found.group('host').lower()}" + (f":{port}" if port else "")


def _pattern(value: str) -> str:
    """A webhook's type pattern as a full name; the short form without the prefix is accepted."""
    text = value.strip()
    if text == "*":
        return text
    full = text if text.startswith(PREFIX) else PREFIX + text
    if not any(type_matches(full, known) for known in EVENT_TYPES):
        groups = sorted({short.split(".")[0] + ".*" for short in _SHORT_TYPES})
        raise ValueError(
            f"unknown event type {value!r}: give a type such as release.succeeded, a group such as "
            f"{', '.join(groups)}, or * (every type is listed in docs/events.md)"
        )
    return full


TypePattern = Annotated[str, AfterValidator(_pattern)]


class Webhook(Model):
    """One receiver of the bot's events."""

    url: str
    """Where each event is POSTed: `https://…` (`http://` works, but the body then travels unencrypted)."""
    name: str | None = None
    """What metrics and logs call this receiver (`target` label), e.g. `dashboard`; default: the URL's scheme,
    host and port, never its path or query (a receiver may take a token there). Lowercase letters, digits, `-`
    and `_`; each name once."""
    secret_env: EnvName
    """Environment variable holding the shared secret; each body is signed with it (HMAC-SHA256) in the
    `X-Releasebot-Signature-256` header."""
    types: list[TypePattern] = Field(default_factory=lambda: ["*"], min_length=1)
    """Event types sent here: a type (`release.succeeded`), a group (`release.*`, `approval.*`, `check.*`,
    `alert.*`, `train.*`) or `*` for all; the `dev.releasebot.` prefix may be left out."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError(f"must be lowercase letters, digits, - or _ (at most 40), got {value!r}")
        if value == "github":
            raise ValueError("github is the GitHub Deployments' own label: choose another name")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        found = _URL.match(value)
        if found is None:
            # Not the value itself: a token in its path or query would end up in CI logs.
            shown = shown_url(value)
            got = f"one starting {shown}" if shown else "something else"
            raise ValueError(
                f"must be an http:// or https:// URL; got {got} (the rest is not shown: it may hold a token)"
            )
        if found.group("auth"):
            raise ValueError("must not carry credentials: the body is signed with secret_env instead")
        port = found.group("port")
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError(f"must be an http:// or https:// URL; its port {port} is not between 1 and 65535")
        return value


def _which(index: int, hook: Webhook) -> str:
    """A webhook as errors name it: its position in the list, and its name when it has one."""
    return f"webhooks[{index}]" + (f" ({hook.name})" if hook.name else "")


class Events(Model):
    """Outbound events: CloudEvents webhooks, and GitHub Deployments for services whose repo is on GitHub."""

    webhooks: list[Webhook] = Field(default_factory=list)
    """Receivers of CloudEvents 1.0 (structured JSON), delivered at least once, in order per receiver."""
    github_deployments: bool | None = None
    """Create a GitHub deployment for each release of a service whose `repo` is `github:` and post its statuses.
    Omitted: on when the bot has a GitHub token (`GITHUB_TOKEN`); `false` turns it off."""
    retention: Duration = timedelta(days=30)
    """How long events are kept for `GET /api/v1/events?since=` to replay, e.g. `30d`. An older event is deleted
    (checked hourly) once every delivery of it is settled; a `since` before the oldest kept event is answered
    with `truncated: true`."""

    @field_validator("webhooks")
    @classmethod
    def _distinct(cls, value: list[Webhook]) -> list[Webhook]:
        for i, hook in enumerate(value):
            first = next(j for j, other in enumerate(value) if other.url == hook.url)
            if first != i:  # named by position (and name), never by the URL, which may hold a token
                raise ValueError(
                    f"{_which(first, value[first])} and {_which(i, hook)} have the same URL "
                    f"({target_label(hook.url)}…): give it once with every type it takes"
                )
        names = [hook.name for hook in value if hook.name is not None]
        named_twice = sorted({name for name in names if names.count(name) > 1})
        if named_twice:
            raise ValueError(f"the name {named_twice[0]} is given to two webhooks: metrics could not tell them apart")
        return value

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError(f"must be at least 1h (events are pruned hourly), got {value}")
        return value

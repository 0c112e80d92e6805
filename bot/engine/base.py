"""What the engine is built from (Deps) and speaks in (Actor, Reply)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot.config import Config
from bot.metrics.run import CheckRunner
from bot.ports import Clock, Directory, Notifier, ProviderLookup, Scheduler, Sleep, SourceLookup
from bot.store import AsyncStore
from bot.views import render


@dataclass(frozen=True)
class Actor:
    """Who asked, from where, through which Slack request (for the audit trail)."""

    user: str
    channel: str | None = None
    request_id: str | None = None
    system: bool = False  # the bot acting on its own (auto-rollback, resuming after a crash): a role, not a name


SYSTEM_USER = "release-bot"  # how the bot's own actions appear in the audit trail and release events


def system_actor(request_id: str | None = None) -> Actor:
    """The bot itself, as an actor: permissions see ``system``, the audit trail its name."""
    return Actor(user=SYSTEM_USER, request_id=request_id, system=True)


SYSTEM = system_actor()  # the bot acting on its own, with no request behind it


@dataclass(frozen=True)
class Reply:
    """What the user who asked sees: ephemeral unless ``public``."""

    message: render.Message
    public: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """How often an outcome the store refused is tried again (bot/engine/outcomes.py): after ``first`` seconds,
    doubling up to ``cap``; /healthz writes its probe row at most every ``probe_every`` seconds."""

    first: float = 0.5
    cap: float = 15.0
    probe_every: float = 2.0


@dataclass
class Deps:
    """Everything the engine talks to. Tests swap any of these for real local stand-ins."""

    config: Config
    db: AsyncStore
    notifier: Notifier
    directory: Directory
    clock: Clock
    providers: ProviderLookup
    data_dir: Path  # where deploy steps leave their output and exit status (``deploys/``): the database's directory
    sources: SourceLookup = lambda service: None
    checks: CheckRunner | None = None  # post-release metric checks; None: checks are skipped
    scheduler: Scheduler | None = None  # timed work (checks, summaries); None: run on demand only
    sleep: Sleep = asyncio.sleep
    group_cache_ttl: timedelta = timedelta(minutes=5)
    base_url: str | None = None  # RELEASEBOT_PUBLIC_URL: where the bot's web pages are reachable
    notes_link_key: bytes | None = None  # signs links to the full notes page; None: no link is posted
    retry: RetryPolicy = RetryPolicy()  # how often an outcome the store refused is tried again

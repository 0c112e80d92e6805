"""From the config to delivery: which targets take which events, the webhook secrets, and the worker.

A webhook's secret is named by an environment variable (``secret_env``) and read once at start-up, like the
``auth`` blocks' (bot/http_auth.py): unset or empty, the bot does not start and ``check-config`` names the path
(``events.webhooks.<i>.secret_env``) and the variable, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot.config import Config
from bot.config.events import PREFIX
from bot.config.source import Loc, Position, Problem, problem_at, sort_problems
from bot.events.deliver import Deliveries, DeliveryPolicy, Sender
from bot.events.webhook import WebhookSender
from bot.github_api import GitHubClient
from bot.github_deployments import GitHubDeployments, Permalink
from bot.http_auth import CredentialsError
from bot.http_session import HttpSession
from bot.ports import Clock
from bot.store import AsyncStore
from bot.store.events import GITHUB, EventTarget

__all__ = ["build_deliveries", "event_secret_problems", "event_targets", "github_services", "webhook_secrets"]


def github_services(config: Config, *, has_token: bool) -> frozenset[str]:
    """Services that get GitHub deployments: repo on GitHub, and ``events.github_deployments`` true (or omitted
    with a GitHub token)."""
    wanted = config.events.github_deployments
    if wanted is False or (wanted is None and not has_token):
        return frozenset()
    return frozenset(
        name for name, svc in config.services.items() if svc.repo is not None and svc.repo.github is not None
    )


def event_targets(config: Config, *, github: frozenset[str]) -> tuple[EventTarget, ...]:
    """What the store writes a delivery for: each webhook by its types; GitHub, the releases of ``github``."""
    targets = [EventTarget(hook.url, tuple(hook.types), label=hook.name) for hook in config.events.webhooks]
    if github:
        targets.append(EventTarget(GITHUB, (PREFIX + "release.*",), github))
    return tuple(targets)


def _secret_problems(config: Config, environ: Mapping[str, str]) -> tuple[dict[str, bytes], list[tuple[Loc, str]]]:
    secrets: dict[str, bytes] = {}
    problems: list[tuple[Loc, str]] = []
    for i, hook in enumerate(config.events.webhooks):
        value = environ.get(hook.secret_env)
        if not value:
            state = "empty" if value == "" else "not set"
            problems.append(
                (("events", "webhooks", i, "secret_env"), f"environment variable {hook.secret_env} is {state}")
            )
            continue
        secrets[hook.url] = value.encode()
    return secrets, problems


def webhook_secrets(config: Config, environ: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Each webhook's secret by URL; CredentialsError naming every unset variable by its config path."""
    secrets, problems = _secret_problems(config, os.environ if environ is None else environ)
    if problems:
        raise CredentialsError(problems)
    return secrets


def event_secret_problems(
    config: Config, positions: Mapping[Loc, Position], environ: Mapping[str, str] | None = None
) -> list[Problem]:
    """For ``check-config``: the webhook secrets that are not set, each at the line of its ``secret_env``."""
    _, problems = _secret_problems(config, os.environ if environ is None else environ)
    return sort_problems([problem_at(loc, message, positions) for loc, message in problems])


def build_deliveries(
    config: Config,
    store: AsyncStore,
    http: HttpSession,
    *,
    github_token: str | None,
    github_api_url: str,
    permalink: Permalink,
    clock: Clock,
    policy: DeliveryPolicy,
    environ: Mapping[str, str] | None = None,
) -> Deliveries:
    """The worker for the configured targets, with the store told what to write. It is built when there are
    none too: its start gives up rows left for targets since removed, and it prunes old events.

    Raises CredentialsError when a webhook's secret variable is unset: nothing is sent unsigned.
    """
    secrets = webhook_secrets(config, environ)
    github = github_services(config, has_token=bool(github_token))
    store.sync.event_targets = event_targets(config, github=github)
    senders: list[Sender] = [
        WebhookSender(hook.url, secrets[hook.url], session=http, timeout=policy.timeout, now=clock.now, label=hook.name)
        for hook in config.events.webhooks
    ]
    if github:
        client = GitHubClient(
            session=http,
            token=github_token,
            api_url=github_api_url,
            timeout=policy.timeout,
            max_wait=policy.github_max_wait,
            sleep=policy.sleep,
        )
        senders.append(GitHubDeployments(client, store, config, permalink=permalink, now=clock.now))
    return Deliveries(store, senders, clock=clock, policy=policy, retention=config.events.retention)

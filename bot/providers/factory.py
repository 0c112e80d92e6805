"""Build the deploy provider an environment's ``deploy:`` block describes."""

from __future__ import annotations

from pathlib import Path

from bot.config import CommandProvider, GithubActionsProvider, HttpProvider
from bot.config import DeployProvider as DeployProviderConfig
from bot.github_api import GitHubClient
from bot.http_auth import Credentials
from bot.http_session import HttpSession
from bot.ports import DeployProvider
from bot.providers.command import CommandDeployProvider
from bot.providers.github_actions import GithubActionsDeployProvider
from bot.providers.http import HttpDeployProvider

__all__ = ["build_provider"]


def build_provider(
    config: DeployProviderConfig,
    *,
    session: HttpSession,
    github: GitHubClient,
    base_dir: Path | None = None,
    credentials: Credentials | None = None,
) -> DeployProvider:
    """The provider for ``config``; raises ValueError for an unusable one (unknown placeholder, no token, an
    ``auth`` variable that is not set).

    Call it for every environment at start so such problems stop the bot with one clear line.
    ``session`` and ``github`` are the runtime's shared HTTP session and GitHub client.
    ``base_dir`` is where a ``command`` provider runs when its config names no ``cwd`` (default: the bot's
    working directory); a config loaded from a file always names one, the file's directory by default.
    ``credentials`` resolves an ``http`` provider's ``auth`` (default: the process environment).
    """
    if isinstance(config, CommandProvider):
        return CommandDeployProvider(config, base_dir=base_dir)
    if isinstance(config, HttpProvider):
        return HttpDeployProvider(config, session=session, credentials=credentials)
    if isinstance(config, GithubActionsProvider):
        if not github.has_token:
            raise ValueError(f"deploy provider github_actions ({config.repo}) needs GITHUB_TOKEN")
        return GithubActionsDeployProvider(config, client=github)
    raise TypeError(f"unknown deploy provider config {type(config).__name__}")

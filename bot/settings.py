"""Environment variables, read once in main(). Secrets are SecretStr: never logged, never echoed."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.logformat import LogFormat
from bot.notes_link import derive_link_key

MIN_LINK_SECRET = 32
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
SLACK_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")


class SettingsError(Exception):
    """Missing or bad environment for the chosen mode; the message is one clear line."""


def log_format_from_env(environ: Mapping[str, str] | None = None) -> LogFormat:
    """RELEASEBOT_LOG_FORMAT: ``text`` (the default) or ``json``; read on its own, before logging is set up."""
    env = os.environ if environ is None else environ
    value = env.get("RELEASEBOT_LOG_FORMAT", "").strip().lower() or "text"
    for known in LOG_FORMATS:
        if value == known:
            return known
    # Without the value: a secret pasted into the wrong variable must not reach logs and terminals.
    raise SettingsError(f"RELEASEBOT_LOG_FORMAT must be {' or '.join(LOG_FORMATS)}")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    config_path: Path = Path("releasebot.yml")
    config_from_env: bool = False  # config_path came from RELEASEBOT_CONFIG (else it is the default)
    db_path: Path = Path("releasebot.db")
    db_from_env: bool = False  # db_path came from RELEASEBOT_DB
    api_token: SecretStr | None = None
    port: int = Field(default=3000, ge=0, le=65535)
    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    public_url: str | None = None
    link_secret: SecretStr | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def secret(name: str) -> SecretStr | None:
            value = env.get(name, "").strip()
            return SecretStr(value) if value else None

        link_secret = secret("RELEASEBOT_LINK_SECRET")
        if link_secret is not None and len(link_secret.get_secret_value()) < MIN_LINK_SECRET:
            # Worded without the value: the message reaches logs and terminals.
            raise SettingsError(
                f"RELEASEBOT_LINK_SECRET must be at least {MIN_LINK_SECRET} characters (e.g. `openssl rand -hex 32`)"
            )
        try:
            return cls(
                slack_bot_token=secret("SLACK_BOT_TOKEN"),
                slack_signing_secret=secret("SLACK_SIGNING_SECRET"),
                slack_app_token=secret("SLACK_APP_TOKEN"),
                slack_api_url=env.get("SLACK_API_URL") or "https://slack.com/api/",
                config_path=Path(env.get("RELEASEBOT_CONFIG") or "releasebot.yml"),
                config_from_env=bool(env.get("RELEASEBOT_CONFIG")),
                db_path=Path(env.get("RELEASEBOT_DB") or "releasebot.db"),
                db_from_env=bool(env.get("RELEASEBOT_DB")),
                api_token=secret("RELEASEBOT_API_TOKEN"),
                port=int(env.get("PORT") or 3000),
                github_token=secret("GITHUB_TOKEN"),
                github_api_url=env.get("GITHUB_API_URL") or "https://api.github.com",
                public_url=env.get("RELEASEBOT_PUBLIC_URL") or None,
                link_secret=link_secret,
            )
        except (ValidationError, ValueError) as exc:
            raise SettingsError(f"bad environment: {str(exc).splitlines()[0]}") from None

    def notes_link_key(self) -> bytes | None:
        """The key that signs links to the full notes page; None: no links (nothing to sign them with).

        RELEASEBOT_LINK_SECRET when set, so links can be rotated on their own; otherwise derived from
        RELEASEBOT_API_TOKEN, so a deployment with the CI API gets working links without a new secret.
        Either way the key is derived (never the secret itself), and changing the secret voids old links.
        """
        source = self.link_secret or self.api_token
        return derive_link_key(source.get_secret_value()) if source is not None else None

    def require_http(self) -> None:
        """HTTP mode needs the bot token and the signing secret."""
        missing = [
            n
            for n, v in (
                ("SLACK_BOT_TOKEN", self.slack_bot_token),
                ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
            )
            if v is None
        ]
        if missing:
            raise SettingsError(f"release-bot serve needs {' and '.join(missing)} (or run `release-bot console`)")

    def require_socket(self) -> None:
        """Socket Mode needs the bot token and an app-level token."""
        missing = [
            n
            for n, v in (("SLACK_BOT_TOKEN", self.slack_bot_token), ("SLACK_APP_TOKEN", self.slack_app_token))
            if v is None
        ]
        if missing:
            raise SettingsError(f"release-bot socket needs {' and '.join(missing)} (or run `release-bot console`)")
        token = self.slack_app_token.get_secret_value() if self.slack_app_token else ""
        if not token.startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token (xapp-…)")


def forget_slack_secrets(environ: MutableMapping[str, str]) -> None:
    """Take the Slack secrets out of the process environment once Settings holds them.

    From then on only Settings hands them out. slack_bolt's AsyncApp reads SLACK_BOT_TOKEN from the environment
    whenever it is set, and, given the client the bot builds as well, warns "As you gave `client` as well,
    `token` will be unused" at every start.
    """
    for name in SLACK_SECRETS:
        environ.pop(name, None)

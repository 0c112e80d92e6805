"""Credentials for the HTTP backends (the ``http`` deploy service, HTTP checks, Prometheus): named, never written.

The file names environment variables; ``bot.http_auth`` reads them once at start-up. A secret therefore never
sits in ``releasebot.yml``, and no message about this block repeats a value: a misplaced secret (a token
pasted where a variable name belongs) is refused without being shown back.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from bot.config.paths import ConfigPath
from bot.config.types import Model

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
# Set by the bot or the HTTP client; overriding them would break the request rather than authenticate it.
_RESERVED = frozenset({"host", "content-type", "content-length", "transfer-encoding", "idempotency-key"})
# Credentials by definition, so never literal in the file (headers_env may carry them).
_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        # The value is not repeated: it may be the secret itself, pasted here by mistake.
        raise ValueError(
            "must be the name of an environment variable (letters, digits and _, not starting with a digit), "
            "not the secret itself"
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


def _header_names(headers: dict[str, str]) -> None:
    for name in headers:
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a header name")
        if name.lower() in _RESERVED:
            raise ValueError(f"{name} is set by the bot and cannot be configured")


class HttpAuth(Model):
    """How the bot authenticates to one backend, and which CAs it trusts there."""

    token_env: EnvName | None = None
    """Environment variable holding a bearer token, sent as `Authorization: Bearer <token>`."""
    username: str | None = None
    """Basic-auth user name, written here (it is not a secret); the password comes from `password_env`."""
    username_env: EnvName | None = None
    """Environment variable holding the basic-auth user name, instead of `username`."""
    password_env: EnvName | None = None
    """Environment variable holding the basic-auth password (with `username` or `username_env`)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers sent as written, e.g. `{X-Team: payments}`; not for secrets (`Authorization`, `Cookie` are
    refused here)."""
    headers_env: dict[str, EnvName] = Field(default_factory=dict)
    """Extra headers whose values come from environment variables, e.g. `{X-Scope-OrgID: MIMIR_TENANT}`;
    requests carrying them do not follow redirects."""
    ca_file: ConfigPath | None = None
    """PEM bundle of the CAs trusted for HTTPS (relative to the config file); replaces the system's CAs here."""

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and (not value or ":" in value):
            raise ValueError("a basic-auth user name is not empty and has no ':'")
        return value

    @field_validator("headers")
    @classmethod
    def _literal_headers(cls, value: dict[str, str]) -> dict[str, str]:
        _header_names(value)
        for name, text in value.items():
            if name.lower() in _SECRET:
                raise ValueError(f"{name} is a credential: name its environment variable in headers_env")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"the value of {name} has a line break or NUL")
        return value

    @field_validator("headers_env")
    @classmethod
    def _env_headers(cls, value: dict[str, str]) -> dict[str, str]:
        _header_names(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> HttpAuth:
        basic = self.username is not None or self.username_env is not None
        if self.token_env is not None and (basic or self.password_env is not None):
            raise ValueError("give token_env (bearer) or basic auth (username, password_env), not both")
        if self.username is not None and self.username_env is not None:
            raise ValueError("give username or username_env, not both")
        if basic != (self.password_env is not None):
            raise ValueError("basic auth needs password_env and one of username, username_env")
        named = [name.lower() for name in (*self.headers, *self.headers_env)]
        repeated = sorted({name for name in named if named.count(name) > 1})
        if repeated:
            raise ValueError(f"header {repeated[0]} is given twice (header names are case-insensitive)")
        if (basic or self.token_env is not None) and "authorization" in named:
            raise ValueError("Authorization comes from token_env or basic auth here: drop it from headers_env")
        if not (basic or self.token_env or self.headers or self.headers_env or self.ca_file):
            raise ValueError("names nothing: give token_env, basic auth, headers, headers_env or ca_file")
        return self

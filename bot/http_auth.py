"""The credentials of the HTTP backends, read once: an ``auth`` block becomes the headers and TLS trust of requests.

The config names environment variables (``bot.config.auth.HttpAuth``). ``Credentials`` reads them, and the
``ca_file`` each names, when the runtime is built, and hands each client a ``RequestAuth``: headers and an
``ssl`` value it passes with every request on the one shared session (``bot.http_session``), so no client
makes a session of its own. A variable that is unset or empty stops start-up with its name and the config
path that names it, never a request sent without the credentials it was configured with.

Secret values appear nowhere but in the requests: not in a ``repr``, an error message or a log line. Errors
name the variable, the file and the config path only.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from ssl import SSLContext, SSLError, create_default_context
from types import MappingProxyType

from bot.config import Config, HttpAuth
from bot.config.source import Loc, Position, Problem, problem_at, sort_problems

__all__ = ["NO_AUTH", "Credentials", "CredentialsError", "RequestAuth", "environment_problems"]


@dataclass(frozen=True, repr=False)
class RequestAuth:
    """What a client sends with each request to one backend."""

    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Sent with every request; the values may be secrets."""
    ssl: SSLContext | bool = True
    """aiohttp's ``ssl=``: True verifies against the system's CAs, a context against those of ``ca_file``."""
    follow_redirects: bool = True
    """False when ``headers_env`` headers are sent: aiohttp would forward them wherever a redirect points (on a
    redirect to another host it drops only ``Authorization``, ``Proxy-Authorization`` and ``Cookie``)."""

    def __repr__(self) -> str:
        trust = "ca_file" if isinstance(self.ssl, SSLContext) else "system CAs"
        return f"RequestAuth(headers={sorted(self.headers)}, ssl={trust}, follow_redirects={self.follow_redirects})"


NO_AUTH = RequestAuth()


class CredentialsError(ValueError):
    """``auth`` blocks that cannot be used; ``problems`` holds (path, message) pairs that name no secret."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(problem_at(loc, message, {})) for loc, message in problems))


class Credentials:
    """Resolves ``auth`` blocks against ``environ`` (default: the process's) and ``base_dir``, each once.

    ``base_dir`` is the config file's directory, which a relative ``ca_file`` is read from (None: the working
    directory). A block is resolved on first use and kept, so the variables are read and the SSL context is
    built once however many requests follow.
    """

    def __init__(self, base_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.base_dir = base_dir
        self._environ = os.environ if environ is None else environ
        self._resolved: dict[str, RequestAuth] = {}

    def check(self, config: Config) -> None:
        """Resolve every ``auth`` block of ``config`` now; raise CredentialsError listing every problem."""
        problems: list[tuple[Loc, str]] = []
        for loc, auth in config.http_auths():
            try:
                self.resolve(auth)
            except CredentialsError as exc:
                problems += [((*loc, *where), message) for where, message in exc.problems]
        if problems:
            raise CredentialsError(problems)

    def resolve(self, auth: HttpAuth | None) -> RequestAuth:
        """The headers and TLS trust ``auth`` describes (NO_AUTH for None); CredentialsError if unusable."""
        if auth is None:
            return NO_AUTH
        key = auth.model_dump_json()  # names and paths only: the block's identity, holding no secret
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = self._resolved[key] = self._build(auth)
        return resolved

    def _build(self, auth: HttpAuth) -> RequestAuth:
        problems: list[tuple[Loc, str]] = []

        def read(name: str, where: Loc) -> str:
            value = self._environ.get(name)
            if value is None or value == "":
                problems.append((where, f"environment variable {name} is {'empty' if value == '' else 'not set'}"))
                return ""
            if any(c in value for c in "\r\n\0"):
                # A trailing newline from a secret file, typically: refused, since a header cannot carry it.
                problems.append((where, f"environment variable {name} holds a line break or NUL"))
            return value

        headers = dict(auth.headers)
        if auth.token_env is not None:
            headers["Authorization"] = f"Bearer {read(auth.token_env, ('token_env',))}"
        if auth.password_env is not None:
            if auth.username_env is not None:
                username = read(auth.username_env, ("username_env",))
                if ":" in username:
                    problems.append((("username_env",), f"environment variable {auth.username_env} holds a ':'"))
            else:
                username = auth.username or ""
            password = read(auth.password_env, ("password_env",))
            # RFC 7617: UTF-8 (the charset servers are told to expect), base64 of "user:password".
            pair = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {pair}"
        for header, name in auth.headers_env.items():
            headers[header] = read(name, ("headers_env", header))
        ssl: SSLContext | bool = True
        if auth.ca_file is not None:
            path = (self.base_dir or Path()) / auth.ca_file
            try:
                # Given a file, the default context trusts its CAs only, not the system's as well.
                ssl = create_default_context(cafile=path)
            except SSLError:
                problems.append((("ca_file",), f"{path} holds no PEM certificate"))
            except OSError as exc:
                problems.append((("ca_file",), f"cannot read {path}: {exc.strerror or exc}"))
        if problems:
            raise CredentialsError(problems)
        return RequestAuth(MappingProxyType(headers), ssl, follow_redirects=not auth.headers_env)


def environment_problems(
    config: Config, positions: Mapping[Loc, Position], base_dir: Path, environ: Mapping[str, str] | None = None
) -> list[Problem]:
    """The ``auth`` problems of a loaded config, each at the line and column of the key that names the variable."""
    try:
        Credentials(base_dir, environ).check(config)
    except CredentialsError as exc:
        return sort_problems([problem_at(loc, message, positions) for loc, message in exc.problems])
    return []

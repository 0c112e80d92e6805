"""Credentials for the HTTP backends: ``auth`` blocks read once from the environment into headers and TLS trust,
problems named by variable and config path (never by value), and the runtime wiring them into all three clients."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.bootstrap import build_runtime
from bot.config import Check, HttpAuth, parse_config
from bot.config.source import read_yaml
from bot.http_auth import NO_AUTH, Credentials, CredentialsError, environment_problems
from bot.providers.base import DeployContext
from bot.settings import Settings
from bot.slack.console import ConsoleDirectory, ConsoleNotifier
from bot.store import AsyncStore, Store
from tests.fakes.auth import Gate
from tests.fakes.runs import remote
from tests.fakes.tls import SelfSigned
from tests.harness import config_dict

SECRET = "s3cret-value-never-shown"
AT = datetime(2024, 11, 5, 15, 30, tzinfo=UTC)


def auth(**fields: Any) -> HttpAuth:
    return HttpAuth.model_validate(fields)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- resolving one block -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "headers"),
    [
        ({"token_env": "TOKEN"}, {"Authorization": f"Bearer {SECRET}"}),
        ({"username": "bot", "password_env": "PASSWORD"}, {"Authorization": basic("bot", "pässwörd")}),
        ({"username_env": "USER", "password_env": "PASSWORD"}, {"Authorization": basic("rb", "pässwörd")}),
        ({"headers_env": {"Authorization": "TOKEN"}}, {"Authorization": SECRET}),  # a scheme of the service's own
        (
            {"headers": {"X-Team": "payments"}, "headers_env": {"X-Scope-OrgID": "TENANT"}},
            {"X-Team": "payments", "X-Scope-OrgID": "team-a"},
        ),
    ],
    ids=["bearer", "basic", "basic-env", "custom-authorization", "headers"],
)
def test_a_block_becomes_the_headers_it_describes(block: dict[str, Any], headers: dict[str, str]) -> None:
    environ = {"TOKEN": SECRET, "USER": "rb", "PASSWORD": "pässwörd", "TENANT": "team-a"}
    resolved = Credentials(environ=environ).resolve(auth(**block))
    assert dict(resolved.headers) == headers
    assert resolved.ssl is True  # the system's CAs
    assert resolved.follow_redirects is ("headers_env" not in block)


def test_no_block_is_no_auth() -> None:
    assert Credentials(environ={}).resolve(None) is NO_AUTH
    assert dict(NO_AUTH.headers) == {} and NO_AUTH.ssl is True and NO_AUTH.follow_redirects


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "token_env: environment variable TOKEN is not set"),
        ({"TOKEN": ""}, "token_env: environment variable TOKEN is empty"),
        ({"TOKEN": f"{SECRET}\n"}, "token_env: environment variable TOKEN holds a line break or NUL"),
    ],
    ids=["unset", "empty", "newline"],
)
def test_an_unusable_variable_is_named_never_shown(environ: dict[str, str], message: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        Credentials(environ=environ).resolve(auth(token_env="TOKEN"))
    assert str(caught.value) == message
    assert caught.value.problems == [(("token_env",), message.split(": ", 1)[1])]


def test_every_problem_of_a_block_is_listed() -> None:
    block = auth(username_env="USER", password_env="PASSWORD", headers_env={"X-Tenant": "TENANT"}, ca_file="no.pem")
    with pytest.raises(CredentialsError) as caught:
        Credentials(Path("/nowhere"), environ={"USER": f"{SECRET}:x"}).resolve(block)
    assert [where for where, _ in caught.value.problems] == [
        ("username_env",),
        ("password_env",),
        ("headers_env", "X-Tenant"),
        ("ca_file",),
    ]
    assert "environment variable USER holds a ':'" in str(caught.value)
    assert SECRET not in str(caught.value)


class CountingEnviron(Mapping[str, str]):
    """An environment that counts its reads."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads = 0

    def __getitem__(self, key: str) -> str:
        self.reads += 1
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def test_a_block_is_resolved_once(tls: SelfSigned) -> None:
    environ = CountingEnviron({"TOKEN": SECRET})
    credentials = Credentials(tls.cert.parent, environ)
    first = credentials.resolve(auth(token_env="TOKEN", ca_file=tls.cert.name))
    again = credentials.resolve(auth(token_env="TOKEN", ca_file=tls.cert.name))  # an equal block elsewhere
    assert again is first and environ.reads == 1  # one read, one SSL context, however many requests


def test_ca_file_is_read_relative_to_the_config_directory(tls: SelfSigned, tmp_path: Path) -> None:
    relative = Credentials(tls.cert.parent, environ={}).resolve(auth(ca_file=tls.cert.name))
    absolute = Credentials(tmp_path, environ={}).resolve(auth(ca_file=str(tls.cert)))
    assert not isinstance(relative.ssl, bool) and not isinstance(absolute.ssl, bool)
    assert relative.ssl.get_ca_certs() and relative.ssl.get_ca_certs() == absolute.ssl.get_ca_certs()


def test_an_unusable_ca_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    credentials = Credentials(tmp_path, environ={})
    with pytest.raises(CredentialsError, match=rf"^ca_file: cannot read {tmp_path}/missing.pem: No such file"):
        credentials.resolve(auth(ca_file="missing.pem"))
    with pytest.raises(CredentialsError, match=rf"^ca_file: {tmp_path}/junk.pem holds no PEM certificate$"):
        credentials.resolve(auth(ca_file="junk.pem"))


def test_a_repr_shows_header_names_never_values(tls: SelfSigned) -> None:
    resolved = Credentials(tls.cert.parent, {"TOKEN": SECRET, "TENANT": SECRET}).resolve(
        auth(token_env="TOKEN", headers_env={"X-Scope-OrgID": "TENANT"}, ca_file=tls.cert.name)
    )
    assert repr(resolved) == (
        "RequestAuth(headers=['Authorization', 'X-Scope-OrgID'], ssl=ca_file, follow_redirects=False)"
    )


# --- a whole config ------------------------------------------------------------------------------------------

AUTH_YAML = """\
timezone: UTC
services:
  notify: {channel: C01RELEASES, pipeline: [prod]}
environments:
  prod:
    deploy:
      provider: http
      url: https://deploy.example/deploy
      auth: {token_env: DEPLOY_TOKEN}
    checks:
      - name: health
        http: https://notify.example/health
        auth:
          username: probe
          password_env: HEALTH_PASSWORD
metrics:
  prometheus_url: https://mimir.example/prometheus
  prometheus_auth:
    headers_env: {X-Scope-OrgID: MIMIR_TENANT}
"""


def test_every_block_of_a_config_is_checked_with_its_path_and_line() -> None:
    document = read_yaml(AUTH_YAML, "releasebot.yml")
    config = parse_config(document.data, "releasebot.yml", document.positions)

    problems = environment_problems(config, document.positions, Path("/etc/release-bot"), {"HEALTH_PASSWORD": "x"})

    assert [problem.located("releasebot.yml") for problem in problems] == [
        "releasebot.yml:9:14 environments.prod.deploy.auth.token_env: environment variable DEPLOY_TOKEN is not set",
        "releasebot.yml:19:19 metrics.prometheus_auth.headers_env.X-Scope-OrgID: "
        "environment variable MIMIR_TENANT is not set",
    ]
    with pytest.raises(CredentialsError, match="^environments.prod.deploy.auth.token_env: .*; metrics.prometheus_auth"):
        Credentials(environ={"HEALTH_PASSWORD": "x"}).check(config)
    assert (
        environment_problems(config, {}, Path(), {"DEPLOY_TOKEN": "t", "HEALTH_PASSWORD": "p", "MIMIR_TENANT": "a"})
        == []
    )


# --- the runtime: every client gets its credentials, or the bot does not start ---------------------------------


class Backends:
    """A deploy service, a health endpoint and Prometheus behind one login, over HTTPS."""

    def __init__(self) -> None:
        self.gate = Gate()
        self.url = ""
        self.paths: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if request.path == "/api/v1/query":
            result = [{"metric": {}, "value": [AT.timestamp(), "0.001"]}]
            return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})
        return web.json_response({"status": "succeeded"})


@pytest.fixture
async def backends(tls: SelfSigned) -> AsyncIterator[Backends]:
    server = Backends()
    app = web.Application(middlewares=[server.gate.middleware()])
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context()).start()
    server.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


def guarded_config(url: str) -> dict[str, Any]:
    data = config_dict(Path("/dev/null"))
    trust = {"ca_file": "certs/ca.pem"}  # relative to the config file's directory
    data["environments"]["prod"]["deploy"] = {
        "provider": "http",
        "url": f"{url}/deploy",
        "auth": {"token_env": "RB_TOKEN", **trust},
    }
    data["environments"]["prod"]["checks"] = [
        {"name": "health", "http": f"{url}/health", "auth": {"token_env": "RB_TOKEN", **trust}}
    ]
    data["metrics"] = {"prometheus_url": url, "prometheus_auth": {"token_env": "RB_TOKEN", **trust}}
    return data


def runtime_for(data: dict[str, Any], store: AsyncStore, config_dir: Path) -> Any:
    config = parse_config(data)
    return build_runtime(
        Settings(),
        config,
        store=store,
        notifier=ConsoleNotifier(),
        directory=ConsoleDirectory(config, {}),
        config_dir=config_dir,
        schedule=False,
    )


async def test_the_runtime_sends_the_credentials_with_every_client(
    backends: Backends, tls: SelfSigned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(tls.cert.read_bytes())
    monkeypatch.setenv("RB_TOKEN", SECRET)
    backends.gate.required = {"Authorization": f"Bearer {SECRET}"}
    data = guarded_config(backends.url)
    runtime = runtime_for(data, AsyncStore(Store(tmp_path / "bot.db")), tmp_path)
    await runtime.start()
    try:
        deployed = await runtime.engine.deps.providers("prod").deploy(
            DeployContext("notify", "1.2.3", "prod", 1), remote()
        )
        health = Check.model_validate(data["environments"]["prod"]["checks"][0])
        status = await runtime.checks.http.measure(health, AT, service="notify", environment="prod", version="1")
        series = await runtime.checks.prometheus.instant_query("up", AT)
    finally:
        await runtime.close()

    assert deployed.ok, deployed
    assert status == 200.0 and series == [({}, 0.001)]
    assert backends.paths == ["/deploy", "/health", "/api/v1/query"] and backends.gate.refused == 0


def test_a_missing_variable_stops_the_runtime_being_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RB_TOKEN", raising=False)
    (tmp_path / "certs").mkdir()
    store = AsyncStore(Store(tmp_path / "bot.db"))
    try:
        with pytest.raises(CredentialsError) as caught:
            runtime_for(guarded_config("https://backend.example"), store, tmp_path)
    finally:
        store.close()
    assert [".".join(map(str, where)) for where, _ in caught.value.problems] == [
        "environments.prod.deploy.auth.token_env",
        "environments.prod.deploy.auth.ca_file",
        "environments.prod.checks.0.auth.token_env",
        "environments.prod.checks.0.auth.ca_file",
        "metrics.prometheus_auth.token_env",
        "metrics.prometheus_auth.ca_file",
    ]

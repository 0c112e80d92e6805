"""``loki`` checks: the Loki client against a fake Loki (a real aiohttp server on port 0) for every answer shape
Loki documents, its errors and credentials; the config rules; and one release through the real app.

Loki cannot be installed here (no Debian package), so these run against ``tests/fakes/loki.py`` serving the
shapes in ``tests/data/loki/`` (its README names their sources). The real log path — mtail turning log lines into
Prometheus counters — is tested against real processes in ``tests/test_log_checks_mtail.py``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bot.__main__ import cli
from bot.config import Check, ConfigError, Metrics, parse_config
from bot.core.models import ReleaseState
from bot.core.verdicts import Measurement, Verdict
from bot.http_auth import Credentials, CredentialsError, environment_problems
from bot.metrics.base import MeasureError
from bot.metrics.loki import LokiClient
from bot.metrics.run import CheckRunner
from tests.fakes.loki import DATA, FakeLoki, vector_of
from tests.harness import CHANNEL, MutableClock, config_dict, running_bot, ship_to_prod
from tests.prometheus_harness import free_port
from tests.test_cli import SLACK_ENV, run_subprocess

AT = datetime(2026, 11, 26, 16, 20, 0, 123456, tzinfo=UTC)
ERRORS = 'sum(count_over_time({app="{service}", env="{environment}"} |= "ERROR" [5m]))'
CHECK = Check.model_validate({"name": "errors in logs", "loki": ERRORS, "pass_if": "< 5", "fail_if": ">= 20"})
SECRET = "loki-s3cret-token"
ENV = {"LOKI_TOKEN": SECRET, "LOKI_PASSWORD": SECRET, "LOKI_TENANT": "team-a"}


@pytest.fixture
async def loki() -> AsyncIterator[FakeLoki]:
    async with FakeLoki() as fake:
        yield fake


@pytest.fixture
async def client(loki: FakeLoki) -> AsyncIterator[LokiClient]:
    async with LokiClient(loki.url + "/", timeout=0.5) as own:
        yield own


async def measure(client: LokiClient, check: Check = CHECK) -> float | None:
    return await client.measure(check, AT, service="notify", environment="prod", version="1.4.2")


class Recorder:
    """The runner's sleeps and ERROR attempts, recorded instead of waited for."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.errors: list[Measurement] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def on_error(self, measurement: Measurement) -> None:
        self.errors.append(measurement)


def runner(loki: FakeLoki, recorder: Recorder, auth: dict[str, Any] | None = None, **metrics: Any) -> CheckRunner:
    config = Metrics.model_validate(
        {"loki_url": loki.url, "loki_auth": auth, "timeout": "1s", "retries": 2, "retry_delay": "3s", **metrics}
    )
    return CheckRunner(config, sleep=recorder.sleep, credentials=Credentials(environ=ENV))


async def run(checks: CheckRunner, recorder: Recorder, check: Check = CHECK) -> Measurement:
    return await checks.run(
        check, AT, service="notify", environment="prod", version="1.4.2", on_error=recorder.on_error
    )


# --- the client: each answer shape ------------------------------------------------------------------------


async def test_a_sum_is_one_sample_and_the_request_is_loki_s(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("vector_sum.json")

    assert await measure(client) == 7.0

    [request] = loki.requests
    # Placeholders filled, LogQL's own braces kept; time as nanoseconds since the epoch (Loki reads an integer
    # epoch as nanoseconds), to the microsecond the bot's clock has.
    assert request.params == {
        "query": 'sum(count_over_time({app="notify", env="prod"} |= "ERROR" [5m]))',
        "time": "1795710000123456000",
    }
    assert "Authorization" not in request.headers


async def test_no_series_is_an_empty_result(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("vector_empty.json")
    assert await measure(client) is None


async def test_a_scalar_is_its_value(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("scalar.json")
    assert await measure(client) == 2.0


async def test_several_series_must_be_aggregated_and_are_not_retried(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("vector_two_series.json")
    with pytest.raises(MeasureError, match=r"^query returned 2 series; aggregate it to one with sum\(\)") as info:
        await measure(client)
    assert info.value.retryable is False


async def test_a_matrix_is_refused(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("matrix.json")
    with pytest.raises(MeasureError, match=r"^query returned a matrix result; checks need an instant vector") as info:
        await measure(client)
    assert info.value.retryable is False


async def test_log_lines_are_refused_with_the_metric_query_to_write(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("streams.json")
    with pytest.raises(MeasureError) as info:
        await measure(client)
    assert str(info.value).startswith("query returned log lines (streams): a log query returns log lines, not a number")
    assert "count_over_time" in str(info.value)
    assert info.value.retryable is False


async def test_a_query_loki_cannot_parse_shows_its_words_and_is_not_retried(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("error_400_parse.txt", status=400)
    with pytest.raises(MeasureError) as info:
        await measure(client)
    assert str(info.value) == (
        "Loki refused the query (HTTP 400): parse error at line 1, col 22: syntax error: unexpected RANGE"
    )
    assert info.value.retryable is False


async def test_an_instant_log_query_refused_by_loki_gets_the_fix(loki: FakeLoki, client: LokiClient) -> None:
    loki.reply_file("error_400_log_query.txt", status=400)
    with pytest.raises(MeasureError, match=r"^Loki refused the query \(HTTP 400\): a log query returns log lines"):
        await measure(client)


@pytest.mark.parametrize(("error_type", "retryable"), [("bad_data", False), ("execution", True), ("timeout", True)])
async def test_status_error_names_its_type(
    loki: FakeLoki, client: LokiClient, error_type: str, retryable: bool
) -> None:
    body = json.loads((DATA / "status_error.json").read_text()) | {"errorType": error_type}
    loki.reply(body, status=422 if error_type != "timeout" else 503)
    with pytest.raises(MeasureError, match=rf"^Loki query error \({error_type}, HTTP \d+\): parse error") as info:
        await measure(client)
    assert info.value.retryable is retryable


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (504, "error_504_timeout.txt", "Loki answered HTTP 504: request timed out, decrease the duration"),
        (429, None, "Loki answered HTTP 429: too many outstanding requests"),
        (500, None, "Loki answered HTTP 500: too many outstanding requests"),
        (502, None, "Loki answered HTTP 502: too many outstanding requests"),
    ],
)
async def test_server_errors_are_retryable(
    loki: FakeLoki, client: LokiClient, status: int, body: str | None, shown: str
) -> None:
    if body is not None:
        loki.reply_file(body, status=status)
    else:
        loki.reply_text("too many outstanding requests", status=status)
    with pytest.raises(MeasureError) as info:
        await measure(client)
    assert str(info.value).startswith(shown)
    assert info.value.retryable is True


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("<html>gateway</html>", "Loki answered malformed JSON: <html>gateway</html>"),
        (
            {"status": "success", "data": {"resultType": "vector"}},
            "unexpected Loki response shape (KeyError('result'))",
        ),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, "unexpected Loki"),
        ([1, 2], "unexpected Loki response shape"),
    ],
    ids=["not-json", "no-result", "no-value", "a-list"],
)
async def test_bodies_of_the_wrong_shape(loki: FakeLoki, client: LokiClient, body: Any, shown: str) -> None:
    loki.reply(body)
    with pytest.raises(MeasureError) as info:
        await measure(client)
    assert str(info.value).startswith(shown)


async def test_a_hanging_loki_times_out(loki: FakeLoki, client: LokiClient) -> None:
    loki.hang = True
    with pytest.raises(MeasureError, match=r"^Loki at http://127\.0\.0\.1:\d+ timed out after 0\.5s$") as info:
        await measure(client)
    assert info.value.retryable is True


async def test_nothing_listening_is_a_connection_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with LokiClient(url, timeout=1) as client:
        with pytest.raises(MeasureError, match=rf"^cannot connect to Loki at {re.escape(url)}: ") as info:
            await measure(client)
    assert info.value.retryable is True


async def test_a_naive_time_is_refused(client: LokiClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.instant_query('sum(count_over_time({app="x"}[1m]))', datetime(2026, 1, 1))  # noqa: DTZ001


# --- through the runner: the same verdict and retry rules as Prometheus ----------------------------------


@pytest.mark.parametrize(("value", "verdict"), [(0, Verdict.PASS), (7, Verdict.INCONCLUSIVE), (25, Verdict.FAIL)])
async def test_the_count_is_judged_like_any_check(loki: FakeLoki, value: float, verdict: Verdict) -> None:
    loki.reply(vector_of(value))
    recorder = Recorder()
    async with runner(loki, recorder) as checks:
        result = await run(checks, recorder)
    assert result.verdict is verdict, result
    assert result.summary == f"errors in logs = {value:g} (pass if < 5, fail if >= 20)"
    assert result.query == 'sum(count_over_time({app="notify", env="prod"} |= "ERROR" [5m]))'
    assert recorder.errors == [] and len(loki.requests) == 1


async def test_no_series_follows_on_empty(loki: FakeLoki) -> None:
    recorder = Recorder()
    loki.reply_file("vector_empty.json")
    loki.reply_file("vector_empty.json")
    async with runner(loki, recorder) as checks:
        default = await run(checks, recorder)
        passing = await run(checks, recorder, CHECK.model_copy(update={"on_empty": "pass"}))
    assert (default.verdict, default.detail) == (Verdict.INCONCLUSIVE, "empty result; on_empty: inconclusive")
    assert passing.verdict is Verdict.PASS


async def test_an_unreachable_loki_is_retried_then_inconclusive_never_fail(loki: FakeLoki) -> None:
    for _ in range(3):
        loki.reply_text("no healthy upstream", status=503)
    recorder = Recorder()
    async with runner(loki, recorder) as checks:
        result = await run(checks, recorder)
    assert [e.verdict for e in recorder.errors] == [Verdict.ERROR] * 3
    assert recorder.sleeps == [3.0, 3.0]
    assert result.verdict is Verdict.INCONCLUSIVE and result.attempts == 3
    assert result.summary == "metrics unavailable: Loki answered HTTP 503: no healthy upstream"


async def test_a_loki_back_on_a_retry_is_judged(loki: FakeLoki) -> None:
    loki.reply_text("no healthy upstream", status=503)
    loki.reply(vector_of(30))
    recorder = Recorder()
    async with runner(loki, recorder) as checks:
        result = await run(checks, recorder)
    assert (result.verdict, result.attempts, len(recorder.errors)) == (Verdict.FAIL, 2, 1)


async def test_a_rejected_query_ends_at_once(loki: FakeLoki) -> None:
    loki.reply_file("error_400_parse.txt", status=400)
    recorder = Recorder()
    async with runner(loki, recorder) as checks:
        result = await run(checks, recorder)
    assert result.verdict is Verdict.INCONCLUSIVE and result.attempts == 1 and recorder.sleeps == []
    assert len(loki.requests) == 1


async def test_a_runner_without_loki_url_ends_a_loki_check_inconclusive_saying_why(loki: FakeLoki) -> None:
    recorder = Recorder()
    async with CheckRunner(Metrics(), sleep=recorder.sleep) as checks:
        result = await run(checks, recorder)
    assert result.verdict is Verdict.INCONCLUSIVE and result.attempts == 1
    assert result.summary == "metrics unavailable: metrics.loki_url is not set: no Loki to read"
    assert loki.requests == []


# --- credentials -------------------------------------------------------------------------------------------

AUTHS = [
    ({"token_env": "LOKI_TOKEN"}, {"Authorization": f"Bearer {SECRET}"}),
    (
        {"username": "12345", "password_env": "LOKI_PASSWORD"},
        {"Authorization": "Basic MTIzNDU6bG9raS1zM2NyZXQtdG9rZW4="},
    ),
    ({"headers_env": {"X-Scope-OrgID": "LOKI_TENANT"}}, {"X-Scope-OrgID": "team-a"}),
]


@pytest.mark.parametrize(("auth", "sent"), AUTHS, ids=["bearer", "basic-grafana-cloud", "tenant"])
async def test_loki_auth_is_sent_with_every_query(loki: FakeLoki, auth: dict[str, Any], sent: dict[str, str]) -> None:
    loki.gate.required = sent
    loki.reply(vector_of(0))
    loki.reply(vector_of(1))
    recorder = Recorder()
    async with runner(loki, recorder, auth) as checks:
        first = await run(checks, recorder)
        second = await run(checks, recorder)
    assert (first.verdict, second.verdict) == (Verdict.PASS, Verdict.PASS)
    assert loki.gate.refused == 0 and len(loki.requests) == 2
    assert all(r.headers[name] == value for r in loki.requests for name, value in sent.items())


async def test_a_refusal_is_not_retried_and_no_secret_reaches_a_reply_or_a_log(
    loki: FakeLoki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    loki.gate.required = {"Authorization": "Bearer the-right-one"}  # the 401 quotes the token it got
    recorder = Recorder()
    async with runner(loki, recorder, {"token_env": "LOKI_TOKEN"}) as checks:
        result = await run(checks, recorder)
        shown_runner = repr(checks.loki)

    assert result.verdict is Verdict.INCONCLUSIVE and result.attempts == 1 and recorder.sleeps == []
    assert result.summary == (
        f"metrics unavailable: Loki at {loki.url} answered HTTP 401: credentials refused or missing "
        "(see metrics.loki_auth)"
    )
    assert loki.gate.refused == 1
    shown = [caplog.text, result.text(), *(m.text() for m in recorder.errors), shown_runner]
    assert all(SECRET not in text for text in shown), shown


def test_a_missing_variable_stops_the_runner_being_built() -> None:
    metrics = Metrics.model_validate(
        {"loki_url": "http://loki.example", "loki_auth": {"headers_env": {"X-Scope-OrgID": "LOKI_TENANT"}}}
    )
    with pytest.raises(CredentialsError, match=r"^headers_env\.X-Scope-OrgID: environment variable LOKI_TENANT is not"):
        CheckRunner(metrics, credentials=Credentials(environ={}))


# --- config ------------------------------------------------------------------------------------------------


def loki_config(log: Path, check: dict[str, Any] | None = None, **metrics: Any) -> dict[str, Any]:
    """The harness config, prod always open, with one loki check (and ``metrics`` as given)."""
    check = check if check is not None else {"name": "errors in logs", "loki": ERRORS, "fail_if": ">= 20"}
    data = config_dict(log, window="always", checks=[check])
    data["freezes"] = []
    data["metrics"] = {"timeout": "2s", "retries": 0, **metrics}
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.errors


def test_a_loki_check_without_loki_url_is_an_error_at_the_check(tmp_path: Path) -> None:
    data = loki_config(tmp_path / "deploys.log")
    data["services"]["notify"]["environments"] = {
        "staging": {"checks": [{"name": "e", "loki": ERRORS, "pass_if": "< 1"}]}
    }
    data["timezone"] = "Mars/Olympus"  # reported in the same pass

    found = problems(data)

    assert (
        "environments.prod.checks[0].loki: a loki check needs metrics.loki_url (the base URL of Loki's HTTP API)"
        in found
    )
    assert any(p.startswith("services.notify.environments.staging.checks[0].loki: a loki check needs") for p in found)
    assert any(p.startswith("timezone: unknown time zone") for p in found)
    assert parse_config(loki_config(tmp_path / "deploys.log", loki_url="http://127.0.0.1:3100")).metrics.loki_url


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"loki": ERRORS, "prometheus": "up", "pass_if": "< 1"}, "give exactly one of prometheus, http or loki"),
        ({"loki": ERRORS, "http": "http://x/health"}, "give exactly one of prometheus, http or loki"),
        ({"loki": ERRORS}, "a loki check needs pass_if and/or fail_if"),
        (
            {"loki": ERRORS, "pass_if": "< 1", "auth": {"token_env": "LOKI_TOKEN"}},
            "auth is for http checks; Loki's credentials are metrics.loki_auth",
        ),
    ],
    ids=["with-prometheus", "with-http", "no-condition", "own-auth"],
)
def test_a_malformed_loki_check_is_an_error_with_its_path(tmp_path: Path, check: dict[str, Any], message: str) -> None:
    data = loki_config(tmp_path / "deploys.log", {"name": "errors in logs", **check}, loki_url="http://loki:3100")
    assert any(p.startswith("environments.prod.checks[0]") and message in p for p in problems(data)), problems(data)


def test_check_config_names_the_line_and_a_refused_config_stores_nothing(tmp_path: Path) -> None:
    config = tmp_path / "releasebot.yml"
    config.write_text(yaml.safe_dump(loki_config(tmp_path / "deploys.log"), sort_keys=False))
    db = tmp_path / "releasebot.db"
    env = {"RELEASEBOT_CONFIG": str(config), "RELEASEBOT_DB": str(db)}

    checked = CliRunner().invoke(cli, ["check-config", str(config)], env=env, catch_exceptions=False)

    assert checked.exit_code == 1
    match = re.search(
        r":(\d+):(\d+) environments\.prod\.checks\[0\]\.loki: a loki check needs metrics\.loki_url", checked.stderr
    )
    assert match, checked.stderr
    line, column = int(match.group(1)), int(match.group(2))
    assert config.read_text().splitlines()[line - 1][column - 1 :].startswith("loki:")

    # `serve` refuses the same file before it opens the database or listens.
    served = run_subprocess(tmp_path, ["serve"], config, **SLACK_ENV, RELEASEBOT_DB=str(db), PORT="0")
    assert served.returncode == 2 and served.stdout == ""
    assert "environments.prod.checks[0].loki: a loki check needs metrics.loki_url" in served.stderr
    assert not db.exists(), "a refused config stores nothing"


def test_loki_auth_is_checked_at_start_up_with_its_path(tmp_path: Path) -> None:
    data = loki_config(
        tmp_path / "deploys.log", loki_url="https://loki.example", loki_auth={"token_env": "RB_LOKI_TOKEN_UNSET"}
    )
    found = environment_problems(parse_config(data), {}, tmp_path, {})
    assert [str(p) for p in found] == [
        "metrics.loki_auth.token_env: environment variable RB_LOKI_TOKEN_UNSET is not set"
    ]


# --- one release through the real app ------------------------------------------------------------------------


async def test_a_release_whose_logs_show_errors_fails_its_loki_check_in_the_thread(tmp_path: Path) -> None:
    async with FakeLoki(default=vector_of(42)) as loki:
        config = loki_config(tmp_path / "deploys.log", loki_url=loki.url, loki_auth={"token_env": "RB_TEST_LOKI"})
        clock = MutableClock(datetime.now(UTC).replace(microsecond=0))
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RB_TEST_LOKI", SECRET)
            async with running_bot(tmp_path, clock=clock, config=config) as bot:
                release = await ship_to_prod(bot, "1.3.0")
                assert release.state is ReleaseState.SUCCEEDED and release.finished_at is not None
                bot.clock.set(release.finished_at + timedelta(minutes=5))
                await bot.engine.checks.run_due_measurements()
                await bot.settle()

                found = bot.store.get_release(release.id)
                assert found is not None and found.thread_ts is not None
                thread = [
                    m.text + json.dumps(m.blocks) for m in bot.slack.messages(CHANNEL) if m.thread_ts == found.thread_ts
                ]
                [reply] = [t for t in thread if t.startswith("errors in logs: ")]
                assert "errors in logs: fail" in reply and "errors in logs = 42" in reply
                assert found.verdict == "fail"
                assert all(SECRET not in t for t in thread)

    [request] = loki.requests
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.params["query"] == 'sum(count_over_time({app="notify", env="prod"} |= "ERROR" [5m]))'
    # Measured as of release time + 5m, in nanoseconds.
    assert int(request.params["time"]) == int((release.finished_at + timedelta(minutes=5)).timestamp()) * 10**9

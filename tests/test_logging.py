"""Log lines: RELEASEBOT_LOG_FORMAT=json for shippers, the human text format by default, release and request
ids carried from bot.logcontext, and no secrets echoed by the setup."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.logcontext import log_context
from bot.logformat import formatter
from bot.settings import SettingsError, log_format_from_env

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-secret-bot-token-0001",
    "SLACK_SIGNING_SECRET": "secret-signing-0002",
    "RELEASEBOT_API_TOKEN": "secret-api-token-0003",
    "GITHUB_TOKEN": "ghp_secretgithubtoken0004",
}
# The real command line (its group callback sets logging up) with one extra command that logs.
PROGRAM = """
import logging
from bot.__main__ import cli
from bot.logcontext import log_context

@cli.command("emit")
def emit() -> None:
    log = logging.getLogger("release_bot.test")
    log.info("plain line")
    with log_context(release_id=7, request_id="1700000000.123456"):
        log.warning('two\\nlines "quoted" \\u2028 caf\\u00e9')
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("step failed")

cli(["emit"])
"""


def run_cli(**env: str) -> subprocess.CompletedProcess[str]:
    """PROGRAM in a fresh interpreter (logging unconfigured), with the bot's secrets set and ``env``."""
    full_env = {k: v for k, v in os.environ.items() if k != "RELEASEBOT_LOG_FORMAT"}
    full_env.update(SECRETS, PYTHONPATH=str(ROOT), **env)
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed program
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr


@contextmanager
def captured(log_format: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing to a string in ``log_format``, detached from the root (and pytest's capture)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter("json" if log_format == "json" else "text"))
    logger = logging.getLogger(f"release_bot.test.{log_format}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def entries(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_parse_and_carry_the_fields() -> None:
    result = run_cli(RELEASEBOT_LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()  # also splits at U+2028: the message's must arrive escaped
    assert len(lines) == 3, lines
    plain, in_context, failed = (json.loads(line) for line in lines)
    assert plain == {"time": plain["time"], "level": "INFO", "logger": "release_bot.test", "message": "plain line"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", plain["time"])
    logged_at = datetime.fromisoformat(plain["time"])
    assert logged_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - logged_at) < timedelta(minutes=1)
    assert in_context["message"] == 'two\nlines "quoted" \u2028 café'
    assert (in_context["level"], in_context["release_id"], in_context["request_id"]) == (
        "WARNING",
        7,
        "1700000000.123456",
    )
    assert failed["level"] == "ERROR"
    assert failed["message"] == "step failed"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert failed["exception"].endswith("ZeroDivisionError: division by zero")
    assert "release_id" not in failed and "request_id" not in failed
    assert_no_secret(result)


def test_default_format_is_unchanged() -> None:
    result = run_cli()

    assert result.returncode == 0, result.stderr
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.match(rf"{stamp} INFO release_bot\.test: plain line\n", result.stderr), result.stderr
    assert re.search(rf"\n{stamp} WARNING release_bot\.test: two\nlines \"quoted\" \u2028 café\n", result.stderr)
    assert re.search(rf"\n{stamp} ERROR release_bot\.test: step failed\nTraceback", result.stderr)
    assert "release_id" not in result.stderr
    assert_no_secret(result)


def test_unknown_log_format_is_refused_without_echoing_the_value() -> None:
    pasted = "xoxb-secret-pasted-into-the-wrong-variable"

    result = run_cli(RELEASEBOT_LOG_FORMAT=pasted)

    assert result.returncode == 2
    assert result.stderr == "release-bot: RELEASEBOT_LOG_FORMAT must be text or json\n"
    assert pasted not in result.stdout
    assert_no_secret(result)


def test_log_format_setting() -> None:
    assert log_format_from_env({}) == "text"
    assert log_format_from_env({"RELEASEBOT_LOG_FORMAT": ""}) == "text"
    assert log_format_from_env({"RELEASEBOT_LOG_FORMAT": " JSON "}) == "json"
    assert log_format_from_env({"RELEASEBOT_LOG_FORMAT": "text"}) == "text"
    with pytest.raises(SettingsError):
        log_format_from_env({"RELEASEBOT_LOG_FORMAT": "logfmt"})


@given(message=st.text(), detail=st.text(min_size=1))
def test_any_message_and_exception_stay_one_json_line(message: str, detail: str) -> None:
    with captured("json") as (log, out):
        try:
            raise ValueError(detail)
        except ValueError:
            log.exception("%s", message)

    [line] = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == message
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert f"ValueError: {detail}" in entry["exception"]


def test_context_values_appear_only_inside_their_context() -> None:
    with captured("json") as (log, out):
        log.info("before")
        with log_context(release_id=12):
            log.info("release")
            with log_context(request_id="1712345678.000100"):
                log.info("release and request")
            with log_context(release_id=13):
                log.info("inner release")
            log.info("release again")
        log.info("after")
        with log_context(release_id=None, request_id=""):
            log.info("nothing known")

    assert [{k: v for k, v in e.items() if k in ("message", "release_id", "request_id")} for e in entries(out)] == [
        {"message": "before"},
        {"message": "release", "release_id": 12},
        {"message": "release and request", "release_id": 12, "request_id": "1712345678.000100"},
        {"message": "inner release", "release_id": 13},
        {"message": "release again", "release_id": 12},
        {"message": "after"},
        {"message": "nothing known"},
    ]


async def test_context_follows_tasks_and_threads_not_neighbours() -> None:
    with captured("json") as (log, out):

        async def in_task(release_id: int) -> None:
            log.info("release %d in a task", release_id)

        async def release(release_id: int) -> None:
            with log_context(release_id=release_id):
                for step in range(3):
                    log.info("release %d step %d", release_id, step)
                    await asyncio.sleep(0)  # let the other release log in between
                await asyncio.to_thread(log.info, "release %d in a thread", release_id)
                await asyncio.create_task(in_task(release_id))

        await asyncio.gather(release(1), release(2))
        log.info("neither")

    logged = entries(out)
    assert len(logged) == 11
    for entry in logged[:-1]:
        assert entry["message"].startswith(f"release {entry['release_id']} ")
    assert {e["release_id"] for e in logged[:-1]} == {1, 2}
    assert "release_id" not in logged[-1]

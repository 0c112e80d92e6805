"""The `release-bot` command line: serve | socket | console | check-config | window."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from aiohttp import web

from bot.config import Config, ConfigError, load_config_located
from bot.http_auth import environment_problems
from bot.logformat import configure_logging
from bot.settings import Settings, SettingsError, log_format_from_env

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "releasebot.yml"
log = logging.getLogger("release_bot")


def _fail(message: str) -> None:
    click.echo(f"release-bot: {message}", err=True)
    sys.exit(2)


def _load(path: Path, *, environment: bool) -> tuple[Config, Path]:
    """The config and its directory; with ``environment``, also the variables and CA files its ``auth`` blocks
    name, their problems reported like the file's (by path and variable name, never a value)."""
    config, positions = load_config_located(path)
    config_dir = path.resolve().parent
    if environment:
        problems = environment_problems(config, positions, config_dir)
        if problems:
            raise ConfigError(str(path), problems)
    return config, config_dir


def _config(
    settings: Settings,
    fallback_to_example: bool = False,
    refusal: str = "refusing to start",
    *,
    environment: bool = True,
) -> tuple[Config, Path]:
    """Load the config (and, with ``environment``, check its credentials) or exit 2 with one line naming the
    file and every error's path."""
    path = settings.config_path
    if not path.exists() and fallback_to_example:
        path = EXAMPLE_CONFIG
    try:
        return _load(path, environment=environment)
    except ConfigError as exc:
        # One line (log collectors and terminals keep it whole); `check-config` lists them one per line.
        _fail(f"{refusal}: {exc.source} has {len(exc.errors)} error(s): {'; '.join(exc.located)}")
        raise AssertionError("unreachable") from None


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from None


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """release-bot: deploy to production many times a day, safely."""
    try:
        log_format = log_format_from_env()
    except SettingsError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from None
    configure_logging(log_format, verbose=verbose)


@cli.command("check-config")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--no-env",
    is_flag=True,
    help="Check the file only, not the environment variables and CA files its auth blocks name (e.g. in CI).",
)
def check_config(file: Path, no_env: bool) -> None:
    """Validate a config file; print every error as FILE:LINE:COL PATH: MESSAGE, all in one pass.

    The environment variables the file's auth blocks name must be set (their values are never shown), and
    each ca_file must hold a PEM certificate; --no-env skips those.
    """
    try:
        config, _ = _load(file, environment=not no_env)
    except ConfigError as exc:
        for line in exc.located:
            click.echo(line, err=True)
        click.echo(f"{len(exc.errors)} error(s)", err=True)
        sys.exit(1)
    click.echo(f"{file}: ok ({len(config.services)} service(s), {len(config.environments)} environment(s))")


@cli.command("window")
@click.option("--env", "env", default=None, help="Environment (default: every environment).")
@click.option("--at", "at", default=None, help="Instant as ISO-8601 with an offset (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def window(env: str | None, at: str | None, as_json: bool) -> None:
    """The deployment window decision for an instant: open or closed, why, next opening and closing."""
    from bot.core.window_text import decision_json, decision_text
    from bot.core.windows import WindowPolicy

    config, _ = _config(_settings(), refusal="cannot read the config", environment=False)
    if at is None:
        instant = datetime.now(UTC)
    else:
        try:
            instant = datetime.fromisoformat(at)
        except ValueError:
            _fail(f"--at {at!r} is not ISO-8601 (e.g. 2026-12-24T10:00:00-05:00)")
            raise AssertionError("unreachable") from None
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=config.zone)
    envs = [env] if env else list(config.environments)
    unknown = [e for e in envs if e not in config.environments]
    if unknown:
        _fail(f"unknown environment {unknown[0]!r} (known: {', '.join(config.environments)})")
    policy = WindowPolicy(config)
    decisions = [policy.decide(e, instant) for e in envs]
    if as_json:
        payload = [decision_json(d) for d in decisions]
        click.echo(json.dumps(payload[0] if env else payload, indent=2))
    else:
        for decision in decisions:
            click.echo(decision_text(decision, config.zone))


def _run_slack_mode(
    require: Callable[[Settings], None], build: Callable[[Settings, Config, Path], web.Application]
) -> None:
    """Check the config, then the mode's credentials (``require``), then serve ``build``'s app on $PORT."""
    settings = _settings()
    # The config first: a bad one is the error to fix whatever the credentials, and nothing starts.
    config, config_dir = _config(settings)
    try:
        require(settings)
    except SettingsError as exc:
        _fail(str(exc))
    web.run_app(build(settings, config, config_dir), port=settings.port, print=None)


@cli.command("serve")
def serve() -> None:
    """HTTP mode: Slack events and interactivity on $PORT, plus /healthz, /metrics and /api/v1."""
    from bot.bootstrap import http_app

    _run_slack_mode(Settings.require_http, http_app)


@cli.command("socket")
def socket() -> None:
    """Socket Mode (no public URL), plus /healthz, /metrics and /api/v1 on $PORT."""
    from bot.bootstrap import socket_app

    _run_slack_mode(Settings.require_socket, socket_app)


@cli.command("console")
@click.option("--demo", is_flag=True, help="Start with demo data in a fresh temporary database.")
@click.option("--user", default="U01RELEASE", show_default=True, help="The Slack user you act as.")
@click.option("--now", "now", default=None, help="Pretend the session starts at this ISO-8601 instant.")
def console(demo: bool, user: str, now: str | None) -> None:
    """Type /release commands in a terminal; same handlers, engine and store as Slack mode."""
    from bot.bootstrap import run_console

    settings = _settings()
    config, config_dir = _config(settings, fallback_to_example=True)
    start = datetime.fromisoformat(now) if now else None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=config.zone)
    with tempfile.TemporaryDirectory(prefix="release-bot-demo-") as tmp:
        db = Path(tmp) / "demo.db" if demo else settings.db_path
        asyncio.run(
            run_console(
                settings,
                config,
                config_dir,
                user=user,
                db_path=db,
                demo_dir=Path(tmp) if demo else None,
                start=start,
            )
        )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

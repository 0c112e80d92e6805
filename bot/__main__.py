"""The `release-bot` command line: serve | socket | console | candidate | check-config | window.

Every subcommand that reads the config takes ``--config PATH`` (default: $RELEASEBOT_CONFIG, else
./releasebot.yml), and every one that opens the database ``--db PATH`` (default: $RELEASEBOT_DB, else
./releasebot.db). A config that cannot be used is named by its absolute path and where that path came from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from aiohttp import web

from bot.api_models import ApiError, InvalidBody
from bot.candidates import Origin
from bot.candidates_cli import PARAMS, Action, command_from, describe, refusal_lines, store_checked
from bot.config import Config, ConfigError, load_config_located
from bot.config.source import sort_problems
from bot.events.setup import event_secret_problems
from bot.http_auth import environment_problems
from bot.logformat import configure_logging
from bot.providers.command import program_problems
from bot.settings import Settings, SettingsError, forget_slack_secrets, log_format_from_env

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "releasebot.yml"
log = logging.getLogger("release_bot")


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"release-bot: {message}", err=True)
    sys.exit(code)


@dataclass(frozen=True)
class Named:
    """A file the command line uses, absolute, and where its name came from (for every message about it)."""

    path: Path
    origin: str

    def __str__(self) -> str:
        return f"{self.path} ({self.origin})"


def _config_file(settings: Settings, given: Path | None) -> Named:
    if given is not None:
        return Named(given.resolve(), "from --config")
    if settings.config_from_env:
        return Named(settings.config_path.resolve(), "from RELEASEBOT_CONFIG")
    return Named(settings.config_path.resolve(), "the default: no --config given and RELEASEBOT_CONFIG is not set")


def _db_file(settings: Settings, given: Path | None) -> Named:
    if given is not None:
        return Named(given.resolve(), "from --db")
    if settings.db_from_env:
        return Named(settings.db_path.resolve(), "from RELEASEBOT_DB")
    return Named(settings.db_path.resolve(), "the default: no --db given and RELEASEBOT_DB is not set")


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="PATH",
        help="The config file (default: $RELEASEBOT_CONFIG, else ./releasebot.yml).",
    )(command)


def db_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db_file",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="PATH",
        help="The SQLite database, created when missing (default: $RELEASEBOT_DB, else ./releasebot.db).",
    )(command)


def _load(path: Path, *, environment: bool) -> tuple[Config, Path]:
    """The config and its directory; with ``environment``, also the variables and CA files its ``auth`` blocks
    name, their problems reported like the file's (by path and variable name, never a value)."""
    config, positions = load_config_located(path)
    config_dir = path.parent
    if environment:
        problems = [
            *environment_problems(config, positions, config_dir),
            *program_problems(config, positions),
            *event_secret_problems(config, positions),
        ]
        if problems:
            raise ConfigError(str(path), sort_problems(problems))
    return config, config_dir


def _config(
    named: Named, refusal: str | None = "refusing to start", *, environment: bool = True
) -> tuple[Config, Path]:
    """Load the config (and, with ``environment``, check its credentials) or exit 2 with one line naming the
    file, where its name came from, and every error's path."""
    prefix = f"{refusal}: " if refusal else ""
    if not named.path.is_file():
        hint = "; `release-bot console --demo` runs without one" if named.origin.startswith("the default") else ""
        _fail(f"{prefix}cannot read the config {named}: no such file{hint}")
    try:
        return _load(named.path, environment=environment)
    except ConfigError as exc:
        # One line (log collectors and terminals keep it whole); `check-config` lists them one per line.
        _fail(f"{prefix}the config {named} has {len(exc.errors)} error(s): {'; '.join(exc.located)}")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        _fail(str(exc))


def _instant(option: str, text: str, config: Config) -> datetime:
    """An ISO-8601 instant given on the command line. Without a UTC offset it is read in the config's zone, and
    a line on stderr says so (stdout stays what was asked for, e.g. JSON): 16:30 in Toronto is not 16:30 UTC."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{option} {text!r} is not ISO-8601 (e.g. 2026-12-24T10:00:00-05:00)")
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=config.zone)
        click.echo(
            f"release-bot: {option} {text} has no UTC offset, so it is read in the config's time zone "
            f"({config.timezone}): {instant.isoformat()}",
            err=True,
        )
    return instant


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """release-bot: deploy to production many times a day, safely."""
    try:
        log_format = log_format_from_env()
    except SettingsError as exc:
        _fail(str(exc))
    configure_logging(log_format, verbose=verbose)
    if not verbose:
        # APScheduler logs every job it adds and runs at INFO: most of the log, and none of it news.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


@cli.command("check-config")
@click.argument("file", type=click.Path(path_type=Path), required=False)
@config_option
@click.option(
    "--no-env",
    is_flag=True,
    help="Check the file only, not the environment variables, CA files and deploy programs it names (e.g. in CI).",
)
def check_config(file: Path | None, config_file: Path | None, no_env: bool) -> None:
    """Validate a config file (FILE, or --config's); print every error as FILE:LINE:COL PATH: MESSAGE, all in one
    pass.

    The environment variables the file's auth blocks name must be set (their values are never shown), each
    ca_file must hold a PEM certificate, and each `command` deploy program must exist and be executable (a bare
    name: on PATH); --no-env skips those.
    """
    if file is not None and config_file is not None:
        _fail("name the config once: FILE or --config PATH")
    named = Named(file.resolve(), "given") if file is not None else _config_file(_settings(), config_file)
    if not named.path.is_file():
        _fail(f"cannot read the config {named}: no such file", code=1)
    try:
        config, _ = _load(named.path, environment=not no_env)
    except ConfigError as exc:
        for line in exc.located:
            click.echo(line, err=True)
        click.echo(f"{len(exc.errors)} error(s)", err=True)
        sys.exit(1)
    click.echo(f"{named.path}: ok ({len(config.services)} service(s), {len(config.environments)} environment(s))")


@cli.command("window")
@config_option
@click.option("--env", "env", default=None, help="Environment (default: every environment).")
@click.option(
    "--at",
    "at",
    default=None,
    help="Instant as ISO-8601, e.g. 2026-12-24T10:00:00-05:00 (default: now); without an offset, in the config's zone.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def window(config_file: Path | None, env: str | None, at: str | None, as_json: bool) -> None:
    """The deployment window decision for an instant: open or closed, why, next opening and closing."""
    from bot.core.window_text import decision_json, decision_text
    from bot.core.windows import WindowPolicy

    config, _ = _config(_config_file(_settings(), config_file), None, environment=False)
    instant = datetime.now(UTC) if at is None else _instant("--at", at, config)
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


# --- the Slack modes ---------------------------------------------------------------------------------------


def _run_slack_mode(
    mode: str,
    config_file: Path | None,
    db_file: Path | None,
    require: Callable[[Settings], None],
    build: Callable[[Settings, Config, Path], web.Application],
) -> None:
    """Check the config, then the mode's credentials (``require``), then serve ``build``'s app on $PORT."""
    from bot.bootstrap import StartupError

    settings = _settings()
    # The config first: a bad one is the error to fix whatever the credentials, and nothing starts.
    config, config_dir = _config(_config_file(settings, config_file))
    try:
        require(settings)
    except SettingsError as exc:
        _fail(str(exc))
    forget_slack_secrets(os.environ)
    settings = settings.model_copy(update={"db_path": _db_file(settings, db_file).path})
    try:
        asyncio.run(_serve(lambda: build(settings, config, config_dir), settings, mode))
    except StartupError as exc:
        _fail(f"refusing to start: {exc}")
    except (web.GracefulExit, KeyboardInterrupt):
        pass  # SIGTERM or Ctrl-C: the runner has stopped everything in order


async def _serve(build: Callable[[], web.Application], settings: Settings, mode: str) -> None:
    """Build the app and start it (the bot first: a failure there is a StartupError), listen on $PORT, and say
    where. Built inside the event loop: Socket Mode's client opens its HTTP session when it is made."""
    runner = web.AppRunner(build(), handle_signals=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, port=settings.port)
        await site.start()
        log.info("listening on %s (%s), Slack API at %s", site.name, mode, settings.slack_api_url)
        await asyncio.Event().wait()  # until a signal stops the loop
    finally:
        await runner.cleanup()


@cli.command("serve")
@config_option
@db_option
def serve(config_file: Path | None, db_file: Path | None) -> None:
    """HTTP mode: Slack events and interactivity on $PORT, plus /healthz, /metrics and /api/v1."""
    from bot.bootstrap import http_app

    _run_slack_mode("HTTP mode", config_file, db_file, Settings.require_http, http_app)


@cli.command("socket")
@config_option
@db_option
def socket(config_file: Path | None, db_file: Path | None) -> None:
    """Socket Mode (no public URL), plus /healthz, /metrics and /api/v1 on $PORT."""
    from bot.bootstrap import socket_app

    _run_slack_mode("Socket Mode", config_file, db_file, Settings.require_socket, socket_app)


# --- the console -------------------------------------------------------------------------------------------


@cli.command("console")
@config_option
@db_option
@click.option(
    "--demo",
    is_flag=True,
    help="The example config with demo data, in a temporary database of its own (no --config, no --db).",
)
@click.option("--user", default="U01RELEASE", show_default=True, help="The Slack user you act as.")
@click.option(
    "--now",
    "now",
    default=None,
    help="Start the console's clock at this ISO-8601 instant (without an offset: in the config's zone).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="How many times faster than real time the console's clock runs (0: only `advance` moves it).",
)
def console(
    config_file: Path | None, db_file: Path | None, demo: bool, user: str, now: str | None, speed: float
) -> None:
    """Type /release commands in a terminal; same handlers, engine and store as Slack mode.

    Commands answer at once and the work they start runs in the background, its messages printed as they
    come. `advance 5m` moves the console's clock (pauses end, checks come due); `wait` waits for the work in
    progress; `candidate add …` registers a candidate. `help` at the prompt lists everything.
    """
    from bot.bootstrap import run_console

    settings = _settings()
    if demo:
        if config_file is not None or db_file is not None:
            _fail(
                "--demo runs the example config on a temporary database of its own, so it takes no --config or "
                "--db; to try your own config, leave out --demo"
            )
        named, db = Named(EXAMPLE_CONFIG, "the demo's example"), None
    else:
        named, db = _config_file(settings, config_file), _db_file(settings, db_file)
    config, config_dir = _config(named)
    start = None if now is None else _instant("--now", now, config)
    with tempfile.TemporaryDirectory(prefix="release-bot-demo-") as tmp:
        if db is None:
            unused = " (RELEASEBOT_CONFIG and RELEASEBOT_DB are not used)"
            ignored = unused if settings.config_from_env or settings.db_from_env else ""
            click.echo(f"demo: the example config {EXAMPLE_CONFIG}, demo data in a temporary database{ignored}")
        else:
            click.echo(f"config {named}\ndatabase {db}")
        asyncio.run(
            run_console(
                settings,
                config,
                config_dir,
                user=user,
                db_path=Path(tmp) / "demo.db" if db is None else db.path,
                demo_dir=Path(tmp) if db is None else None,
                start=start,
                speed=speed,
            )
        )


# --- candidates --------------------------------------------------------------------------------------------


@cli.group("candidate")
def candidate() -> None:
    """Register candidates and their evidence in the database, as CI does through /api/v1, without a running
    bot (the console and the bot read the same database: --db / RELEASEBOT_DB)."""


def _candidate_command(action: Action) -> click.Command:
    make, help_text = PARAMS[action]

    def run(config_file: Path | None, db_file: Path | None, as_json: bool, **params: Any) -> None:
        from bot.store import Store

        settings = _settings()
        config, _ = _config(_config_file(settings, config_file), None, environment=False)
        try:
            checked = command_from(action, params).check(config)
            store = Store(_db_file(settings, db_file).path)
            try:
                origin = Origin(actor="cli", request_id=uuid.uuid4().hex)
                answer = store_checked(store, checked, datetime.now(UTC), origin)
            finally:
                store.close()
        except (ApiError, InvalidBody) as exc:
            for line in refusal_lines(exc):
                click.echo(f"release-bot: {line}", err=True)
            sys.exit(1)
        click.echo(json.dumps(answer.body, indent=2) if as_json else "\n".join(describe(action, answer)))

    options: list[click.Parameter] = make()
    options.append(click.Option(["--json", "as_json"], is_flag=True, help="Print the API's JSON answer instead."))
    command = click.Command(action, params=options, callback=run, help=help_text)
    config_option(db_option(command))  # click adds the options to the command itself
    return command


for _action in PARAMS:
    candidate.add_command(_candidate_command(_action))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

"""``candidate add | tests | scan``: register candidates and their evidence from a shell or at the console.

``release-bot candidate …`` writes into the database the console and the bot use (``--db`` /
``RELEASEBOT_DB``) without a running bot; typed at the console prompt, ``candidate …`` (the same words, without
``--config``/``--db``, which the console already has) writes into the console's own database. Either way the
arguments become the JSON document the CI API (``/api/v1/candidates``) takes and go through the API's own checks
and store work (bot.candidates): the same refusals, naming the same fields, and the same audit entries.

This module holds what both share: the arguments (click parameters), the document they make, running it
against a store, and the lines that say what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import click

from bot.api_models import ApiError, InvalidBody
from bot.candidates import (
    Answer,
    CandidateRequest,
    Origin,
    ResultRequest,
    ScanRequest,
    candidate_request,
    json_document,
    register_candidate,
    report_scan,
    report_test,
    result_request,
    scan_request,
)
from bot.config import Config
from bot.core.scan_summary import SEVERITIES
from bot.core.trivy import MAX_REPORT_BYTES
from bot.store import Store

Action = Literal["add", "tests", "scan"]
Checked = CandidateRequest | ResultRequest | ScanRequest

ADD_HELP = """Register a candidate: the build of SERVICE at VERSION, from one commit, with one image per component.

\b
Example:
  candidate add notify 1.5.0 --commit "$(git rev-parse HEAD)" \\
      --image api=ghcr.io/acme/notify-api:1.5.0 --image worker=ghcr.io/acme/notify-worker:1.5.0 \\
      --test unit=passed --test integration=passed
"""
TESTS_HELP = """Report one test suite's result (SUITE: unit, integration or performance; STATUS: passed or failed)
for a registered candidate; a later report of the same suite replaces it.

\b
Example:
  candidate tests notify 1.5.0 performance passed --url https://ci.example.com/runs/42
"""
SCAN_HELP = """Report a vulnerability scan of one of a registered candidate's images: FILE is Trivy's JSON report
(`trivy image --format json --output trivy.json IMAGE`). The report must be of one of the candidate's images.

\b
Example:
  candidate scan notify 1.5.0 trivy.json
"""


@dataclass(frozen=True)
class CandidateCommand:
    """A parsed ``candidate …`` command: what to do, for which version, with the JSON document the API takes."""

    action: Action
    service: str
    version: str
    document: object

    def check(self, config: Config) -> Checked:
        """The API's checks, before the store is touched (ApiError / InvalidBody naming the field)."""
        if self.action == "add":
            return candidate_request(config, self.document)
        if self.action == "tests":
            return result_request(self.service, self.version, self.document)
        return scan_request(self.service, self.version, self.document)


def store_checked(store: Store, checked: Checked, now: datetime, origin: Origin) -> Answer:
    """Store a checked command, on the store's thread (ApiError when the store refuses it, e.g. 404 or 409)."""
    if isinstance(checked, CandidateRequest):
        return register_candidate(store, checked, now, origin)
    if isinstance(checked, ResultRequest):
        return report_test(store, checked, now, origin)
    return report_scan(store, checked, now, origin)


def refusal_lines(exc: ApiError | InvalidBody) -> list[str]:
    """A refusal as lines, one per problem, each starting with the field to fix (as the API names it)."""
    if isinstance(exc, InvalidBody):
        return [str(problem) for problem in exc.problems]
    return [str(exc)]


# --- arguments --------------------------------------------------------------------------------------------


def _pairs(what: str) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], dict[str, str]]:
    """A click callback: repeated ``NAME=VALUE`` options as a dict, each name once."""

    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for value in values:
            name, sep, rest = value.partition("=")
            if not sep or not name or not rest:
                raise click.BadParameter(f"{value!r} is not {what}")
            if name in pairs:
                raise click.BadParameter(f"{name} is given twice")
            pairs[name] = rest
        return pairs

    return parse


def add_params() -> list[click.Parameter]:
    return [
        click.Argument(["service"]),
        click.Argument(["version"]),
        click.Option(["--commit"], required=True, metavar="SHA", help="The full commit id built (40 or 64 hex)."),
        click.Option(
            ["--image", "images"],
            multiple=True,
            metavar="COMPONENT=IMAGE",
            callback=_pairs("COMPONENT=IMAGE"),
            help="The image of one of the service's components (repeat for each; a digest pins it: @sha256:…).",
        ),
        click.Option(
            ["--test", "tests"],
            multiple=True,
            metavar="SUITE=STATUS",
            callback=_pairs("SUITE=STATUS"),
            help="A test suite's result already known (unit|integration|performance = passed|failed; repeatable).",
        ),
        click.Option(
            ["--committed-at"],
            metavar="INSTANT",
            help="When the commit was made, ISO-8601 with an offset (for lead time), e.g. 2026-03-02T14:05:00Z.",
        ),
    ]


def tests_params() -> list[click.Parameter]:
    return [
        click.Argument(["service"]),
        click.Argument(["version"]),
        click.Argument(["suite"]),
        click.Argument(["status"]),
        click.Option(["--url"], help="Where the run can be seen (http or https)."),
        click.Option(["--commit"], metavar="SHA", help="The commit tested; refused unless it is the candidate's."),
    ]


def scan_params() -> list[click.Parameter]:
    return [
        click.Argument(["service"]),
        click.Argument(["version"]),
        click.Argument(["file"], type=click.Path(path_type=Path, dir_okay=False)),
    ]


PARAMS: dict[Action, tuple[Callable[[], list[click.Parameter]], str]] = {
    "add": (add_params, ADD_HELP),
    "tests": (tests_params, TESTS_HELP),
    "scan": (scan_params, SCAN_HELP),
}


def command_from(action: Action, params: dict[str, Any]) -> CandidateCommand:
    """The command parsed ``params`` (click's) stand for, with its JSON document; click.UsageError when the
    scan report cannot be read."""
    service, version = params["service"], params["version"]
    if action == "add":
        document: dict[str, Any] = {"service": service, "version": version, "commit": params["commit"]}
        if params["committed_at"] is not None:
            document["committed_at"] = params["committed_at"]
        document["components"] = params["images"]
        document["tests"] = params["tests"]
        return CandidateCommand(action, service, version, document)
    if action == "tests":
        document = {"suite": params["suite"], "status": params["status"]}
        for key in ("url", "commit"):
            if params[key] is not None:
                document[key] = params[key]
        return CandidateCommand(action, service, version, document)
    return CandidateCommand(action, service, version, read_report(params["file"]))


def read_report(path: Path) -> object:
    """A Trivy report file as JSON, at most the API's 5 MiB; ApiError on ``body`` when it is not JSON."""
    try:
        with path.open("rb") as report:
            raw = report.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise click.UsageError(f"cannot read {path.resolve()}: {exc.strerror}") from None
    if len(raw) > MAX_REPORT_BYTES:
        raise click.UsageError(f"{path.resolve()} is over the {MAX_REPORT_BYTES // (1024 * 1024)} MiB a report may be")
    return json_document(raw)


def console_action(word: str | None) -> Action:
    """The action named after ``candidate`` at the console; click.UsageError saying the choices otherwise."""
    for action in PARAMS:
        if word == action:
            return action
    raise click.UsageError("candidate add | tests | scan …  (`candidate add --help` shows how)")


def _console_click(action: Action) -> click.Command:
    make, help_text = PARAMS[action]
    # No --help option: the console answers `--help` itself (click would print it to the process's stdout).
    return click.Command(f"candidate {action}", params=make(), help=help_text, add_help_option=False)


def console_command(action: Action, words: list[str]) -> CandidateCommand:
    """``candidate ACTION WORDS…`` as typed at the console: click.UsageError when the words are not one (its
    message says what is wrong), ApiError when a scan report is not JSON."""
    context = _console_click(action).make_context(f"candidate {action}", words)
    return command_from(action, context.params)


def console_help(action: Action) -> str:
    """``candidate ACTION --help`` at the console: its usage, arguments and example."""
    command = _console_click(action)
    with click.Context(command, info_name=f"candidate {action}") as context:
        return command.get_help(context)


# --- what happened, in words -------------------------------------------------------------------------------


def describe(action: Action, answer: Answer) -> list[str]:
    """What a registration did, for a person."""
    body = answer.body
    subject = f"{body['service']} {body['version']}"
    if action == "add":
        if body["status"] != "created":
            return [f"{subject} is already registered with these details: nothing changed"]
        lines = [f"registered {subject} (commit {body['commit'][:12]})"]
        lines += [f"  {name}: {image['image']}" for name, image in body["components"].items()]
        if body["tests"]:
            lines.append("  tests: " + ", ".join(f"{suite} {status}" for suite, status in body["tests"].items()))
        return lines
    if action == "tests":
        done = "recorded" if body["changed"] else "already recorded: nothing changed"
        return [f"{subject}: {body['suite']} {body['status']} ({done})"]
    done = "recorded" if body["changed"] else "the same report is recorded already: nothing changed"
    counts = ", ".join(f"{body['counts'][s]} {s.lower()}" for s in SEVERITIES)
    return [f"{subject}: scan of {body['component']} ({body['artifact']}) {done}: {counts}"]

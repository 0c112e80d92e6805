"""The `/release` grammar: one table drives parsing and `help`, so the two cannot disagree."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, time

from bot.core.models import version_problem

MAX_REASON = 300


class ParseError(ValueError):
    """A malformed command; the message says what was wrong and shows the usage."""


@dataclass(frozen=True)
class Command:
    """A parsed `/release` command. ``service`` is filled from the channel when not named."""

    name: str
    service: str | None
    env: str | None = None
    version: str | None = None
    source_env: str | None = None
    count: int | None = None
    reason: str | None = None
    until: date | None = None
    period: str | None = None
    range_from: str | None = None
    force_reason: str | None = None
    at: When | None = None  # `at <when>`: a scheduled release (resolved against the clock by the engine)
    number: int | None = None  # `cancel <id>`
    extra: dict[str, str] = field(default_factory=dict)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WHEN_USAGE = "at HH:MM | tomorrow HH:MM | <weekday> HH:MM | YYYY-MM-DD HH:MM | next-window"
WHEN_SUMMARY = (
    "schedule a release, deploy or promote (the configured timezone; HH:MM is today, refused once past); "
    "it is checked again when it starts"
)


@dataclass(frozen=True)
class When:
    """When a scheduled release should start, as written; in the configured timezone.

    ``day`` is ``today`` (``HH:MM``), ``tomorrow``, ``weekday`` (``weekday``: 0 = Monday), ``date`` (``on``) or
    ``next-window`` (no ``clock``: the next time the environment's deployment window opens).
    """

    day: str
    clock: time | None = None
    weekday: int | None = None
    on: date | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    usage: str
    summary: str
    parse: Callable[[list[str], Vocabulary], dict[str, object]]


@dataclass(frozen=True)
class Vocabulary:
    """The names the grammar must recognise: from the config, not hard-coded."""

    services: frozenset[str]
    environments: frozenset[str]


def _version(word: str) -> str:
    problem = version_problem(word)
    if problem is not None:
        raise ParseError(problem)
    return word


def _env(word: str, vocab: Vocabulary) -> str:
    env = word.lower()
    if env not in vocab.environments:
        known = ", ".join(sorted(vocab.environments))
        raise ParseError(f"unknown environment `{word[:40]}` (known: {known})")
    return env


def _reason(words: list[str], what: str) -> str:
    text = " ".join(words).strip()
    if not text:
        raise ParseError(f"{what} needs a reason")
    if len(text) > MAX_REASON:
        raise ParseError(f"the reason is too long ({len(text)} characters; at most {MAX_REASON})")
    return text


def _clock(word: str) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", word)
    if match is None or not word.isascii():
        raise ParseError(f"`{word[:20]}` is not a time (use HH:MM, 24-hour)")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ParseError(f"`{word}` is not a time of day (00:00 to 23:59)")
    return time(hour, minute)


def _weekday(word: str) -> int | None:
    lowered = word.lower()
    for index, name in enumerate(WEEKDAYS):
        full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[index]
        if lowered in {name, full}:
            return index
    return None


def parse_when(words: list[str]) -> When:
    """The words after `at`: ``HH:MM``, ``tomorrow HH:MM``, ``<weekday> HH:MM``, ``YYYY-MM-DD HH:MM``,
    ``next-window``."""
    if not words:
        raise ParseError(f"say when after `at` ({WHEN_USAGE})")
    first = words[0].lower()
    if first == "next-window":
        if len(words) > 1:
            raise ParseError(f"unexpected `{' '.join(words[1:])[:60]}`")
        return When("next-window")
    if len(words) == 1:
        if ":" not in first and (_weekday(first) is not None or first == "tomorrow" or first[:1].isdigit()):
            raise ParseError(f"say the time too, e.g. `at {words[0][:20]} 10:00`")
        if ":" not in first:
            raise ParseError(f"`{words[0][:30]}` is not a time or day ({WHEN_USAGE})")
        return When("today", _clock(words[0]))
    if len(words) > 2:
        raise ParseError(f"unexpected `{' '.join(words[2:])[:60]}`")
    clock = _clock(words[1])
    if first == "tomorrow":
        return When("tomorrow", clock)
    weekday = _weekday(first)
    if weekday is not None:
        return When("weekday", clock, weekday=weekday)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", first):
        try:
            return When("date", clock, on=date.fromisoformat(first))
        except ValueError:
            raise ParseError(f"`{words[0]}` is not a date") from None
    raise ParseError(f"`{words[0][:30]}` is not a day (tomorrow, a weekday such as `mon`, or YYYY-MM-DD)")


def _cancel(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if len(words) != 1:
        raise ParseError("say which scheduled release to cancel (its id, from `/release queue`)")
    word = words[0].removeprefix("#")
    if not (word.isascii() and word.isdigit()) or len(word) > 9:
        raise ParseError(f"`{words[0][:30]}` is not a scheduled release id")
    return {"number": int(word)}


def _none(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if words:
        raise ParseError(f"unexpected `{' '.join(words)[:60]}`")
    return {}


def _release(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    env = _env(words[0], vocab)
    rest = words[1:]
    if len(rest) > 1:
        raise ParseError(f"unexpected `{' '.join(rest[1:])[:60]}`")
    return {"env": env, "version": _version(rest[0]) if rest else None}


def _deploy(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if words and words[0].lower() == "to":
        raise ParseError("say which version to deploy")
    if len(words) == 3 and words[1].lower() == "to":
        words = [words[0], words[2]]
    if len(words) != 2:
        raise ParseError("say which version and where")
    return {"version": _version(words[0]), "env": _env(words[1], vocab)}


def _promote(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    words = [w for w in words if w.lower() != "to"]
    if len(words) == 1:
        return {"env": _env(words[0], vocab)}
    if len(words) == 2:
        return {"source_env": _env(words[0], vocab), "env": _env(words[1], vocab)}
    raise ParseError("say where to promote to")


def _rollback(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if not words:
        raise ParseError("say which environment to roll back")
    env = _env(words[0], vocab)
    rest = words[1:]
    if not rest:
        return {"env": env}
    if len(rest) == 2 and rest[0].lower() == "to":
        return {"env": env, "version": _version(rest[1])}
    raise ParseError("use `rollback <env> to <version>` to name a target")


def _optional_env(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if not words:
        return {}
    if len(words) > 1:
        raise ParseError(f"unexpected `{' '.join(words[1:])[:60]}`")
    return {"env": _env(words[0], vocab)}


def _notes(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if not words:
        return {}
    if len(words) > 1:
        raise ParseError("give one version or a range `a..b`")
    if ".." in words[0]:
        start, _, end = words[0].partition("..")
        return {"range_from": _version(start), "version": _version(end)}
    return {"version": _version(words[0])}


def _history(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    out: dict[str, object] = {}
    for word in words:
        if word.isascii() and word.isdigit():  # '²'.isdigit() is True, but int('²') fails
            count = int(word)
            if not 1 <= count <= 50:
                raise ParseError("show between 1 and 50 releases")
            out["count"] = count
        elif "env" not in out:
            out["env"] = _env(word, vocab)
        else:
            raise ParseError(f"unexpected `{word[:40]}`")
    return out


def _manifest(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if not words:
        return {}
    if len(words) > 1:
        raise ParseError("give one environment or one version")
    if words[0].lower() in vocab.environments:
        return {"env": words[0].lower()}
    return {"version": _version(words[0])}


def _lock(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if not words:
        raise ParseError("say which environment to lock")
    return {"env": _env(words[0], vocab), "reason": _reason(words[1:], "a lock")}


def _unlock(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if len(words) != 1:
        raise ParseError("say which environment to unlock")
    return {"env": _env(words[0], vocab)}


def _freeze(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if len(words) < 3 or words[1].lower() != "until":
        raise ParseError("use `freeze <env> until <YYYY-MM-DD> <reason…>`")
    try:
        until = date.fromisoformat(words[2])
    except ValueError:
        raise ParseError(f"`{words[2][:30]}` is not a date (use YYYY-MM-DD)") from None
    if until == date.max:  # the freeze ends at the next midnight, and there is none after this day
        raise ParseError(f"`{words[2]}` is too far away")
    return {"env": _env(words[0], vocab), "until": until, "reason": _reason(words[3:], "a freeze")}


def _summary(words: list[str], vocab: Vocabulary) -> dict[str, object]:
    if not words:
        return {"period": "day"}
    if len(words) == 1 and words[0].lower() in {"day", "week"}:
        return {"period": words[0].lower()}
    raise ParseError("use `summary day` or `summary week`")


COMMANDS: tuple[Spec, ...] = (
    Spec("help", "help", "this help", _none),
    Spec("status", "status", "each environment: version, since when, by whom, lock, window", _none),
    Spec(
        "release",
        "<env> [version] [at <when>]",
        "release to env; without a version, promote what the previous stage runs; `at` schedules it",
        _release,
    ),
    Spec("deploy", "deploy <version> [to] <env> [at <when>]", "deploy an explicit candidate", _deploy),
    Spec(
        "promote",
        "promote [<from>] [to] <env> [at <when>]",
        "promote what runs in the previous stage (or <from>)",
        _promote,
    ),
    Spec(
        "rollback",
        "rollback <env> [to <version>]",
        "roll back to the last healthy release (or <version>); asks on-call when configured",
        _rollback,
    ),
    Spec(
        "window",
        "window [env]",
        "is the deployment window open; if not, why and when it opens",
        _optional_env,
    ),
    Spec("notes", "notes [<version> | <a>..<b>]", "release notes", _notes),
    Spec("history", "history [env] [n]", "the last n releases with their outcome", _history),
    Spec(
        "manifest",
        "manifest [env|version]",
        "the release manifest: components, image digests, commit",
        _manifest,
    ),
    Spec("lock", "lock <env> <reason…>", "lock an environment (you may still release; others may not)", _lock),
    Spec("unlock", "unlock <env>", "remove a lock", _unlock),
    Spec("freeze", "freeze <env> until <date> <reason…>", "an ad-hoc freeze through the end of <date>", _freeze),
    Spec("unfreeze", "unfreeze <env>", "lift an ad-hoc freeze", _unlock),
    Spec("summary", "summary [day|week]", "the release summary with DORA figures, for you", _summary),
    Spec("queue", "queue", "the scheduled releases waiting to start", _none),
    Spec("cancel", "cancel <id>", "cancel a scheduled release", _cancel),
    Spec("trains", "trains", "the release trains: next departures, which run, and what would board", _none),
)
SPECS = {spec.name: spec for spec in COMMANDS}
FORCE_USAGE = "… --force <reason…>"
FORCE_SUMMARY = "break-glass outside a window or past a failed checklist item (an on-call approver is asked)"
FORCEABLE = frozenset({"release", "deploy", "promote"})
SCHEDULABLE = FORCEABLE
_TOKEN = re.compile(r"\S+")


def help_lines(command: str = "/release") -> list[tuple[str, str]]:
    """(usage, summary) pairs for `help`, straight from the table that parses."""
    lines = [(f"{command} {spec.usage}", spec.summary) for spec in COMMANDS]
    lines.append((f"{command} {FORCE_USAGE}", FORCE_SUMMARY))
    lines.append((f"{command} … {WHEN_USAGE}", WHEN_SUMMARY))
    return lines


def parse(text: str, vocab: Vocabulary, *, channel_service: str | None) -> Command:
    """Parse the text after `/release`. Raises ParseError with a message meant for the user."""
    if len(text) > 1000:
        raise ParseError("that command is too long (at most 1000 characters). Try `/release help`.")
    words = _TOKEN.findall(text)
    force_reason: str | None = None
    lowered = [w.lower() for w in words]
    if "--force" in lowered:
        at = lowered.index("--force")
        try:
            force_reason = _reason(words[at + 1 :], "`--force`")
        except ParseError as exc:
            raise ParseError(f"{exc}. Usage: `/release {FORCE_USAGE}`") from None
        words = words[:at]
    service = channel_service
    if words and words[0].lower() in vocab.services and words[0].lower() not in SPECS:
        service = words[0].lower()
        words = words[1:]
    if not words:
        name, args = ("help", []) if service is None else ("status", [])
    elif words[0].lower() in SPECS and words[0].lower() != "release":
        name, args = words[0].lower(), words[1:]
    elif words[0].lower() in vocab.environments:
        name, args = "release", words
    else:
        raise ParseError(f"unknown command `{words[0][:40]}`. Try `/release help`.")
    if force_reason is not None and name not in FORCEABLE:
        raise ParseError(f"`--force` only applies to releases, not to `{name}`. Usage: `/release {FORCE_USAGE}`")
    spec = SPECS[name]
    when: When | None = None
    if name in SCHEDULABLE and "at" in (lowered_args := [w.lower() for w in args]):
        split = lowered_args.index("at")
        try:
            when = parse_when(args[split + 1 :])
        except ParseError as exc:
            raise ParseError(f"{exc}. Usage: `/release {spec.usage}`") from None
        if force_reason is not None:
            raise ParseError(
                "a scheduled release cannot use `--force`: it is admitted when it starts. "
                f"Usage: `/release {spec.usage}`"
            )
        args = args[:split]
    try:
        values = spec.parse(args, vocab)
    except ParseError as exc:
        raise ParseError(f"{exc}. Usage: `/release {spec.usage}`") from None
    if service is None and name not in {"help", "summary"}:
        services = ", ".join(sorted(vocab.services))
        raise ParseError(f"which service? Name it first, e.g. `/release <service> {spec.usage}` (known: {services})")
    return Command(name=name, service=service, force_reason=force_reason, at=when, **values)  # type: ignore[arg-type]


def split_words(text: str) -> Sequence[str]:
    """The command's words, as the parser sees them."""
    return _TOKEN.findall(text)

"""Hostile text against the `/release` grammar and the command dispatcher.

Pure properties first (`parse` returns a well-formed Command or raises a short ParseError, nothing
else), then the same soups through `commands.dispatch` on a running bot: never a crash message, and a
refused command leaves every table as it was.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.grammar import COMMANDS, MAX_REASON, SPECS, Command, ParseError, Vocabulary, parse
from bot.core.models import VERSION_RE
from bot.engine import Actor
from commands import dispatch
from tests.harness import CHANNEL, OUTSIDER, RELEASER, BotHarness

VOCAB = Vocabulary(services=frozenset({"notify", "billing"}), environments=frozenset({"staging", "prod"}))
STATE_TABLES = ("releases", "approvals", "audit", "manual_locks", "adhoc_freezes", "release_locks", "env_state")

# Real words of the grammar, spelled the ways people (and attackers) type them.
GRAMMAR_WORDS = [
    *SPECS,
    *(name.upper() for name in SPECS),
    "staging",
    "Prod",
    "PROD",
    "notify",
    "billing",
    "to",
    "TO",
    "until",
    "--force",
    "--FORCE",
    "—force",
    "-force",
    "day",
    "week",
    "1.2.3",
    "1.2.3..1.2.4",
    "..",
    "1.2.3..",
    "..1.2.4",
    "v" * 64,
    "v" * 65,
    "v" * 128,
    "v" * 129,
    "-rf",
    "a/b",
    ".hidden",
    "1.2..3",
    "0",
    "1",
    "50",
    "51",
    "007",
    "9" * 30,
    "2026-12-01",
    "2026-02-30",
    "9999-12-31",
    "0001-01-01",
    "20261201",
    "2026-W49-1",
]
HOSTILE_WORDS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<#C123>",
    "<https://evil.example|click>",
    "&lt;!channel&gt;",
    "`",
    "```",
    "*bold*",
    "_it_",
    "~x~",
    "staging\u200b",
    "st\u0430ging",  # Cyrillic а
    "ＰＲＯＤ",  # fullwidth: lower() is not ascii
    "İ",  # lower() grows to two code points
    "ß",
    "١٢",  # Arabic-Indic digits: isdigit() and int() agree
    "\x00",
    "\x1b[31m",
    "\ud7ff",
    "🚀",
    "a" * 1200,
    "%s%n",
    "{service}",
    "'; DROP TABLE releases; --",
    "$(reboot)",
]
word = st.one_of(
    st.sampled_from(GRAMMAR_WORDS + HOSTILE_WORDS),
    st.text(min_size=1, max_size=12),
    st.text(alphabet=string.printable, min_size=1, max_size=20),
)
separator = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000", " \r\n "])
soup = st.builds(
    lambda words, seps: "".join(w + s for w, s in zip(words, seps, strict=False)),
    st.lists(word, max_size=9),
    st.lists(separator, min_size=9, max_size=9),
)
CORE_WORDS = ["staging", "prod", "1.2.3", "to", "until", "2026-12-01", "<!channel>", "<@U123>", "day", "5"]
# Near misses: a real command or environment first, then real and hostile words, often a `--force`.
near_miss = st.builds(
    lambda head, rest, force: " ".join([head, *rest, *force]),
    st.sampled_from([*SPECS, "staging", "prod", "notify", "billing"]),
    st.lists(
        st.one_of(
            st.sampled_from(CORE_WORDS), st.sampled_from(CORE_WORDS), st.sampled_from(GRAMMAR_WORDS + HOSTILE_WORDS)
        ),
        max_size=5,
    ),
    st.sampled_from([[], ["--force"], ["--force", "<!channel>", "hotfix"]]),
)
# Whole commands with hostile holes: many are accepted (locks, freezes, a staging deploy, a break-glass
# request), so the refusals that follow run against a store that is not empty.
TEMPLATES = [
    "staging {v}",
    "prod {v}",
    "deploy {v} to {e}",
    "promote staging to {e}",
    "lock {e} {r}",
    "unlock {e}",
    "freeze {e} until {d} {r}",
    "unfreeze {e}",
    "rollback {e}",
    "rollback {e} to {v}",
    "history {e} {n}",
    "notes {v}",
    "manifest {v}",
    "window {e}",
    "summary {r}",
    "prod {v} --force {r}",
    "notify {e} {v}",
]
filled = st.builds(
    lambda template, v, e, r, d, n: template.format(v=v, e=e, r=r, d=d, n=n),
    st.sampled_from(TEMPLATES),
    st.sampled_from(["1.2.3", "1.2.4", "9.9.9", "1.2.3<!here>", "v" * 65]),
    st.sampled_from(["staging", "prod", "PROD", "qa", "<!channel>"]),
    st.one_of(st.sampled_from(["<!channel> <@U123> <https://evil.example|click>", "day", "x" * 301]), word),
    st.sampled_from(["2026-12-01", "2026-11-23", "2026-02-30", "9999-12-31", "<!here>"]),
    st.sampled_from(["1", "50", "51", "0", "007"]),
)
hostile_text = st.one_of(soup, near_miss, filled, filled, st.text(max_size=80), st.text(min_size=900, max_size=1100))


def _assert_valid(cmd: Command, text: str) -> None:
    assert cmd.name in SPECS
    assert cmd.service in VOCAB.services or (cmd.service is None and cmd.name in {"help", "summary"})
    for env in (cmd.env, cmd.source_env):
        assert env is None or env in VOCAB.environments, f"{env!r} from {text!r}"
    for version in (cmd.version, cmd.range_from):
        assert version is None or VERSION_RE.fullmatch(version), f"{version!r} from {text!r}"
    for reason in (cmd.reason, cmd.force_reason):
        assert reason is None or 0 < len(reason) <= MAX_REASON
    assert cmd.count is None or 1 <= cmd.count <= 50
    assert cmd.period in (None, "day", "week")
    assert cmd.force_reason is None or cmd.name in {"release", "deploy", "promote"}


@settings(max_examples=600, deadline=None)
@given(hostile_text, st.sampled_from([None, "notify"]))
def test_parse_returns_a_valid_command_or_a_short_parse_error(text: str, channel_service: str | None) -> None:
    try:
        cmd = parse(text, VOCAB, channel_service=channel_service)
    except ParseError as exc:
        message = str(exc)
        assert message and len(message) < 500, message
        assert "Traceback" not in message
        return
    _assert_valid(cmd, text)


@settings(max_examples=300, deadline=None)
@given(st.lists(word, max_size=6), st.sampled_from(["staging", "prod"]))
def test_reasons_are_kept_verbatim_and_bounded(words: list[str], env: str) -> None:
    """Whatever follows `lock <env>` is the reason, as typed (whitespace-joined), or a refusal."""
    text = f"lock {env} " + " ".join(words)
    try:
        cmd = parse(text, VOCAB, channel_service="notify")
    except ParseError as exc:
        assert "reason" in str(exc) or "--force" in str(exc) or "too long" in str(exc)
        return
    assert cmd.name == "lock" and cmd.env == env
    assert cmd.reason == " ".join(" ".join(words).split())


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        (f"{spec.name} bogus extra words here", spec.usage)
        for spec in COMMANDS
        if spec.name not in {"status", "help", "release"}
    ]
    + [("help me", "help"), ("status now", "status"), ("prod 1.2.3 4.5.6", "<env> [version] [at <when>]")],
)
def test_a_malformed_command_shows_its_usage(text: str, usage: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(text, VOCAB, channel_service="notify")
    assert f"Usage: `/release {usage}`" in str(caught.value)


@pytest.mark.parametrize(
    "text", ["x" * 1001, "prod 1.2.3 --force", "status --force because", "prod --force " + "y" * 301]
)
def test_every_parse_error_points_the_way_forward(text: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(text, VOCAB, channel_service="notify")
    assert "/release" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("history ²", "unknown environment `²` (known: prod, staging)"),
        ("history prod ³", "unexpected `³`"),
        ("history ¹⁰", "unknown environment `¹⁰` (known: prod, staging)"),
        ("history prod ١٢", "unexpected `١٢`"),
    ],
)
def test_superscript_digits_are_a_parse_error(text: str, why: str) -> None:
    # isdigit() is true for these and int() refuses some of them: a count must be ASCII digits, and a
    # refusal (not a ValueError, not a parse that takes them as a count) names the word and the usage.
    with pytest.raises(ParseError) as caught:
        parse(text, VOCAB, channel_service="notify")
    assert str(caught.value) == f"{why}. Usage: `/release history [env] [n]`"


def test_ascii_digits_are_still_a_count() -> None:
    """The control for the refusals above: the same command with an ASCII count parses."""
    cmd = parse("history prod 12", VOCAB, channel_service="notify")
    assert (cmd.name, cmd.env, cmd.count) == ("history", "prod", 12)


# --- through the dispatcher, on a running bot -----------------------------------------------------------


def _world(bot: BotHarness) -> dict[str, int]:
    return {table: bot.count(table) for table in STATE_TABLES}


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=hostile_text, user=st.sampled_from([RELEASER, OUTSIDER, "U0\u00e9VIL", ""]))
async def test_dispatch_never_crashes_and_a_refusal_changes_nothing(bot: BotHarness, text: str, user: str) -> None:
    if not bot.store.get_candidate("notify", "1.2.3"):
        bot.add_candidate("1.2.3")
    before, deploys = _world(bot), bot.deploys()
    reply = await dispatch(bot.engine, Actor(user=user, channel=CHANNEL), text)
    await bot.settle()
    shown = reply.message.text + str(reply.message.blocks)
    assert "error id" not in shown and "Traceback" not in shown, (text, shown)
    assert reply.message.blocks, "every answer has blocks"
    if str(reply.message.blocks[0].get("text", {}).get("text", "")).startswith("⛔"):  # a refusal
        assert _world(bot) == before, f"refused {text!r} but the store changed"
        assert bot.deploys() == deploys, f"refused {text!r} but something deployed"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(soup, near_miss, filled))
async def test_hostile_slash_commands_over_http_are_answered_not_crashed(bot: BotHarness, text: str) -> None:
    """The signed slash command path: the ack (or the response_url answer) is a message, never a 500."""
    before = _world(bot)
    answers = len(bot.slack.calls_to("response_url"))
    response = await bot.command(text)
    await bot.settle()
    assert response.status == 200, text
    body = await response.text()
    later = bot.slack.calls_to("response_url")[answers:]  # ephemeral or, for a lock, in the channel
    shown = body + "".join(str(c.args.get("text")) + str(c.args.get("blocks")) for c in later)
    assert shown.strip(), "the user always hears back"
    assert "error id" not in shown and "Traceback" not in shown
    if "⛔" in shown:
        assert _world(bot) == before


async def test_superscript_digit_history_is_refused_not_crashed(bot: BotHarness) -> None:
    refusal = "unknown environment `²` (known: prod, staging). Usage: `/release history [env] [n]`"
    reply = await dispatch(bot.engine, Actor(user=RELEASER, channel=CHANNEL), "history ²")
    assert reply.message.text == refusal
    response = await bot.command("history ²")
    assert response.status == 200
    answer = await response.json()
    assert (answer["response_type"], answer["text"]) == ("ephemeral", refusal)


async def test_a_freeze_until_the_last_representable_day_is_refused_not_crashed(bot: BotHarness) -> None:
    before = _world(bot)
    reply = await dispatch(bot.engine, Actor(user=RELEASER, channel=CHANNEL), "freeze prod until 9999-12-31 forever")
    assert reply.message.text.startswith("`9999-12-31` is too far away. Usage: `/release freeze "), reply.message.text
    assert _world(bot) == before

"""Hostile HTTP: the CI API bodies and the Slack request route, fuzzed through the real server.

For the API: random JSON values, wrong types, huge strings, deep nesting, NaN/Infinity, invalid UTF-8 →
never a 500, always a JSON error naming a field, and nothing stored. For `/slack/events`: random form
bodies and block_actions payloads, signed with the real secret → never a 500, no traceback, no state
change; unsigned or badly signed → 401.

Each bug these tests found (Bolt crashing on malformed bodies, a listener losing its ack, echoing a huge
key) is fixed; the tests keep them fixed.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from commands.actions import ALL_ACTIONS
from tests.fakes.slack_signing import block_actions_payload, sign, signed_headers
from tests.harness import API_TOKEN, CHANNEL, DIGEST, ONCALL1, ONCALL2, OUTSIDER, RELEASER, SECRET, BotHarness

AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
API_TABLES = ("candidates", "candidate_tests", "candidate_scans", "audit")
SLACK_TABLES = (
    "releases",
    "approvals",
    "approval_votes",
    "audit",
    "manual_locks",
    "adhoc_freezes",
    "release_locks",
    "env_state",
)
SATURDAY_11AM = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def world(bot: BotHarness, tables: tuple[str, ...]) -> dict[str, int]:
    return {table: bot.count(table) for table in tables}


# --- strategies ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "1.2.3", COMMIT, "notify", "unit", "passed", "<!channel>", "x" * 700]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
image = st.sampled_from(
    [f"ghcr.io/example/api:1.2.3@{DIGEST}", "ghcr.io/example/api:1.2.3", "<!channel>", "a" * 5000, "::", ""]
)


def _maybe(field: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value most of the time, anything at all otherwise."""
    return st.one_of(field, field, json_values)


candidate_bodies = st.fixed_dictionaries(
    {},
    optional={
        "service": _maybe(st.sampled_from(["notify", "billing", "NOTIFY", "<!here>"])),
        "version": _maybe(st.sampled_from(["1.2.3", "9.9.9", "1.2.3<x>", "v" * 65, ""])),
        "commit": _maybe(st.sampled_from([COMMIT, COMMIT.upper(), "xyz", "0" * 41])),
        "committed_at": _maybe(st.sampled_from(["2026-11-24T10:00:00Z", "2026-11-24T10:00:00", "yesterday", ""])),
        "components": _maybe(st.fixed_dictionaries({}, optional={"api": image, "worker": image, "db": image})),
        "tests": _maybe(st.dictionaries(st.sampled_from(["unit", "smoke", ""]), st.sampled_from(["passed", "ok"]))),
        "extra": json_values,
    },
)
test_bodies = st.fixed_dictionaries(
    {},
    optional={
        "suite": _maybe(st.sampled_from(["unit", "integration", "UNIT", "smoke"])),
        "status": _maybe(st.sampled_from(["passed", "failed", "flaky"])),
        "url": _maybe(st.sampled_from(["https://ci.example/1", "javascript:alert(1)", "https://" + "a" * 3000])),
    },
)
vulnerability = st.fixed_dictionaries(
    {},
    optional={
        "VulnerabilityID": _maybe(st.sampled_from(["CVE-2026-0001", "<!channel>"])),
        "PkgName": _maybe(st.sampled_from(["openssl", "<@U123>"])),
        "InstalledVersion": _maybe(st.just("3.0.1")),
        "FixedVersion": _maybe(st.just("3.0.2")),
        "Severity": _maybe(st.sampled_from(["CRITICAL", "HIGH", "critical", "BAD"])),
        "Title": _maybe(st.just("<https://evil.example|click>")),
        "PrimaryURL": _maybe(st.sampled_from(["https://cve.example/1", "javascript:x"])),
    },
)
scan_bodies = st.fixed_dictionaries(
    {},
    optional={
        "SchemaVersion": _maybe(st.sampled_from([2, 1, 3, "2"])),
        "ArtifactName": _maybe(st.just("ghcr.io/example/api:1.2.3")),
        "ArtifactType": _maybe(st.just("container_image")),
        "Metadata": json_values,
        "Results": _maybe(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "Target": _maybe(st.just("debian 12")),
                        "Vulnerabilities": _maybe(st.lists(vulnerability, max_size=3)),
                    },
                ),
                max_size=3,
            )
        ),
    },
)


def _encode(value: Any) -> bytes:
    # allow_nan: Python writes NaN / Infinity literals, which are not JSON; the API must refuse them.
    return json.dumps(value, allow_nan=True).encode()


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"\xff\xfe{}",
            b'{"service": "\xff"}',
            b'{"version": NaN}',
            b"[Infinity, -Infinity]",
            b'{"a": 1e999999}',
            b"\xef\xbb\xbf{}",
            b'{"service": "notify", "service": "billing"}',
            b'"just a string"',
            b"null",
            b"1" * 5000,
        ]
    ),
)


def json_bodies(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(shaped.map(_encode), json_values.map(_encode), raw_bodies)


# --- the CI API ------------------------------------------------------------------------------------------


async def _post_api(bot: BotHarness, path: str, body: bytes) -> tuple[int, Any]:
    before = world(bot, API_TABLES)
    response = await bot.client.post(path, data=body, headers=AUTH)
    text = await response.text()
    assert response.status < 500, f"{response.status} for {body[:200]!r}: {text[:300]}"
    assert "Traceback" not in text
    answer = json.loads(text)
    if response.status >= 400:
        assert isinstance(answer.get("error"), str) and answer["error"], answer
        assert isinstance(answer.get("field"), str) and answer["field"], answer
        assert len(answer["error"]) < 2000, "an error quotes at most a little of what it was sent"
        assert world(bot, API_TABLES) == before, f"refused with {response.status} yet something was stored"
    return response.status, answer


@FUZZ
@given(body=json_bodies(candidate_bodies))
@example(body=b'{"service": "notify", "version": "1.2.3", "commit": NaN}')
async def test_candidate_bodies_never_500_and_a_refusal_stores_nothing(bot: BotHarness, body: bytes) -> None:
    status, answer = await _post_api(bot, "/api/v1/candidates", body)
    if status < 400:  # only a body that is a real candidate gets in, and it is stored as sent
        decoded = json.loads(body)
        assert decoded["service"] == "notify" and answer["version"] == decoded["version"]
        assert bot.store.get_candidate("notify", decoded["version"]) is not None


@FUZZ
@given(body=json_bodies(test_bodies))
async def test_test_report_bodies_never_500_and_a_refusal_stores_nothing(bot: BotHarness, body: bytes) -> None:
    if bot.store.get_candidate("notify", "1.2.3") is None:
        bot.add_candidate("1.2.3")
    status, answer = await _post_api(bot, "/api/v1/candidates/notify/1.2.3/tests", body)
    if status < 400:
        decoded = json.loads(body)
        assert answer["suite"] == decoded["suite"] in ("unit", "integration", "performance")
        assert bot.store.tests("notify", "1.2.3")[decoded["suite"]]["status"] == decoded["status"]


@FUZZ
@given(body=json_bodies(scan_bodies))
@example(
    body=b'{"SchemaVersion": 2, "ArtifactName": "x", "ArtifactType": "container_image", "Results": '
    b'[{"Target": "t", "Vulnerabilities": [{"VulnerabilityID": "C", "PkgName": "p", "Severity": "CRITICAL", '
    b'"InstalledVersion": Infinity}]}]}'
)
async def test_scan_bodies_never_500_and_a_refusal_stores_nothing(bot: BotHarness, body: bytes) -> None:
    if bot.store.get_candidate("notify", "1.2.3") is None:
        bot.add_candidate("1.2.3")
    status, answer = await _post_api(bot, "/api/v1/candidates/notify/1.2.3/scan", body)
    if status < 400:
        assert set(answer["counts"]) == {"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}
        assert bot.store.scans("notify", "1.2.3")["api"]["counts"] == answer["counts"]


@FUZZ
@given(
    service=st.text(min_size=1, max_size=80).filter(lambda s: "/" not in s and s not in (".", "..")),
    version=st.text(min_size=1, max_size=80).filter(lambda s: "/" not in s and s not in (".", "..")),
)
async def test_hostile_path_segments_are_refused_as_json(bot: BotHarness, service: str, version: str) -> None:
    from urllib.parse import quote

    body = _encode({"suite": "unit", "status": "passed"})
    status, answer = await _post_api(bot, f"/api/v1/candidates/{quote(service)}/{quote(version)}/tests", body)
    # Unknown (404) or not a version at all (422): refused as JSON naming the segment, never a crash.
    assert (status, answer["field"]) in {(404, "version"), (404, "path"), (422, "version")}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/candidates", b"[" * 100_000 + b"]" * 100_000),
        ("/api/v1/candidates", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ("/api/v1/candidates", _encode({"service": "notify", "version": "v" * 1_000_000, "commit": COMMIT})),
        ("/api/v1/candidates", _encode({"service": "x" * 1_000_000, "version": "1.2.3", "commit": COMMIT})),
        pytest.param(
            "/api/v1/candidates",
            _encode({"service": "notify", "version": "1.2.3", "commit": COMMIT, "k" * 10**6: 1}),
        ),
        ("/api/v1/candidates/notify/1.2.3/tests", _encode({"suite": "unit", "status": "p" * 1_000_000})),
        ("/api/v1/candidates/notify/1.2.3/scan", _encode({"SchemaVersion": 2, "ArtifactName": [[[]]] * 100_000})),
    ],
    ids=["deep-list", "deep-object", "huge-version", "huge-service", "huge-key", "huge-status", "wide-array"],
)
async def test_huge_and_deep_bodies_are_refused_briefly(bot: BotHarness, path: str, body: bytes) -> None:
    bot.add_candidate("1.2.3")
    status, answer = await _post_api(bot, path, body)
    assert status in (400, 422), answer
    assert len(json.dumps(answer)) < 5000, "the error does not echo the megabyte back"


async def test_a_body_over_the_limit_is_413_and_stores_nothing(bot: BotHarness) -> None:
    body = b'{"service": "' + b"x" * (5 * 1024 * 1024 + 10) + b'"}'
    status, answer = await _post_api(bot, "/api/v1/candidates", body)
    assert status == 413 and answer["field"] == "body"


# --- the Slack route, signed -----------------------------------------------------------------------------


async def _pending_force_approval(bot: BotHarness) -> str:
    """A break-glass request waiting for on-call: a click from the wrong person must change nothing."""
    bot.add_candidate("1.2.3")
    bot.live("staging", "1.2.3")
    bot.live("prod", "1.2.2")
    bot.clock.set(SATURDAY_11AM)
    await bot.command("prod 1.2.3 --force hotfix for the outage")
    await bot.settle()
    [approval] = bot.store.sql.query("SELECT id FROM approvals")
    return str(approval["id"])


async def _post_signed(bot: BotHarness, body: bytes, content_type: str | None = None) -> tuple[int, str]:
    answers = len(bot.slack.calls_to("response_url"))
    response = await bot.client.post(
        "/slack/events", data=body, headers=signed_headers(SECRET, body, None, content_type)
    )
    await bot.settle()
    text = await response.text()
    assert response.status < 500, f"{response.status} for {body[:300]!r}"
    assert "Traceback" not in text and 'File "' not in text
    for call in bot.slack.calls_to("response_url")[answers:]:
        shown = str(call.args.get("text")) + json.dumps(call.args.get("blocks"))
        assert "error id" not in shown and "Traceback" not in shown, shown
    return response.status, text


plausible_users = st.one_of(
    st.builds(
        lambda uid: {"id": uid, "username": "x", "team_id": "T0TEAM0001"},
        st.sampled_from([OUTSIDER, RELEASER, "U123", "", "<!channel>", "W" + "9" * 200]),
    ),
    st.sampled_from([{"id": None}, {"id": 42}, {"id": ["U01ONCALL1"]}, {"id": "U09OUTSIDE", "extra": "x"}]),
)
action_values = st.one_of(
    st.sampled_from(["1", "01", "-1", "0", "1e3", "0x1", " 1", "1 ", "9" * 13, "9" * 400, "", "null"]),
    st.text(max_size=20).filter(lambda v: not any(c.isdigit() and not c.isdecimal() for c in v)),
    json_values,
)


def _mutated_block_actions(user: Any, action_id: Any, value: Any, drop: list[str], channel: Any) -> dict[str, Any]:
    payload = block_actions_payload(OUTSIDER, "approval_approve", "1", channel_id=CHANNEL)
    payload["user"] = user
    payload["actions"][0]["action_id"] = action_id
    payload["actions"][0]["value"] = value
    payload["channel"] = channel
    for key in drop:
        payload.pop(key, None)
    return payload


# Dict-shaped `user` with an `id` and a dict `channel` (as Slack always sends them): everything inside them
# and around them hostile.
block_actions = st.builds(
    _mutated_block_actions,
    user=plausible_users,
    action_id=st.one_of(st.sampled_from(ALL_ACTIONS), st.text(max_size=20)),
    value=action_values,
    drop=st.lists(st.sampled_from(["channel", "response_url", "trigger_id", "team", "container"])),
    channel=st.sampled_from([{"id": CHANNEL, "name": "releases"}, {}, {"id": None}, {"id": "C0OTHER"}]),
)
# Any JSON at all in `user` and `channel`.
wild_block_actions = st.builds(
    _mutated_block_actions,
    user=st.one_of(plausible_users, json_values),
    action_id=st.one_of(st.sampled_from(ALL_ACTIONS), json_values),
    value=action_values,
    drop=st.lists(st.sampled_from(["user", "channel", "response_url", "trigger_id", "team", "container"])),
    channel=json_values,
)


async def _click_changes_nothing(bot: BotHarness, payload: dict[str, Any]) -> None:
    if bot.count("approvals") == 0:
        await _pending_force_approval(bot)
    if "response_url" in payload:  # answers go to the fake, never to hooks.slack.com
        payload["response_url"] = bot.slack.new_response_url(channel=CHANNEL, user_id=OUTSIDER)
    before, posts = world(bot, SLACK_TABLES), len(bot.slack.calls_to("chat.postMessage"))
    await _post_signed(bot, urlencode({"payload": json.dumps(payload)}).encode())
    assert world(bot, SLACK_TABLES) == before, f"state changed for {payload!r:.500}"
    assert len(bot.slack.calls_to("chat.postMessage")) == posts
    assert bot.deploys() == []


@FUZZ
@given(payload=block_actions)
async def test_signed_block_actions_with_hostile_fields_never_500_or_change_state(
    bot: BotHarness, payload: dict[str, Any]
) -> None:
    await _click_changes_nothing(bot, payload)


@FUZZ
@given(payload=wild_block_actions)
@example(payload=_mutated_block_actions(OUTSIDER, "approval_approve", "1", [], True))
async def test_signed_block_actions_of_any_shape_never_500(bot: BotHarness, payload: dict[str, Any]) -> None:
    await _click_changes_nothing(bot, payload)


form_values = st.one_of(st.text(max_size=40), st.sampled_from(["/release", "/other", "block_actions", "{}", "[]"]))
form_bodies = st.dictionaries(
    st.sampled_from(["command", "text", "user_id", "channel_id", "response_url", "trigger_id", "type", "token", "x"]),
    form_values,
    max_size=6,
).map(lambda form: urlencode(form).encode())


@FUZZ
@given(body=form_bodies)
async def test_signed_random_forms_without_a_user_are_harmless(bot: BotHarness, body: bytes) -> None:
    """Random form fields (never a `payload`, always a `user_id` when a `command` is given)."""
    form = dict(pair.split("=", 1) for pair in body.decode().split("&") if "=" in pair)
    if "command" in form:
        body += b"&user_id=U09OUTSIDE"
    before = world(bot, SLACK_TABLES)
    status, _ = await _post_signed(bot, body)
    assert status in (200, 404)
    assert world(bot, SLACK_TABLES) == before


# Signed requests Slack never sends; each made the server answer 500 (found by the fuzzing above).
MALFORMED_SIGNED = [
    b"payload=null",
    b"payload=%5B1%2C2%5D",
    b"payload=%22x%22",
    b"payload=",
    b"payload=%7B",
    b"payload=%ff%fe",
    b"\xff\xfe=\xff",
    b"{",
    urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": "x"})}).encode(),
    urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": [1]})}).encode(),
    b"command=%2Frelease&text=status",
]


@pytest.mark.parametrize("body", MALFORMED_SIGNED)
async def test_signed_malformed_bodies_are_refused_not_500(bot: BotHarness, body: bytes) -> None:
    before = world(bot, SLACK_TABLES)
    response = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
    assert response.status < 500
    assert world(bot, SLACK_TABLES) == before


@pytest.mark.parametrize("user", [None, "U09OUTSIDE"], ids=["no-user", "user-as-string"])
async def test_a_click_without_a_usable_user_is_acked(bot: BotHarness, user: Any) -> None:
    payload = _mutated_block_actions(user, "approval_approve", "1", [] if user is not None else ["user"], {})
    payload["response_url"] = bot.slack.new_response_url(channel=CHANNEL, user_id=OUTSIDER)
    status, _ = await _post_signed(bot, urlencode({"payload": json.dumps(payload)}).encode())
    assert status == 200


async def test_a_superscript_button_value_is_refused_not_crashed(bot: BotHarness) -> None:
    await bot.click("approval_approve", "²", user=ONCALL1)
    assert "error id" not in bot.last_reply(ONCALL1)


# --- the Slack route, unsigned or forged -------------------------------------------------------------------

well_formed_bodies = st.one_of(
    form_bodies,
    block_actions.map(lambda p: urlencode({"payload": json.dumps(p)}).encode()),
    st.just(urlencode({"command": "/release", "text": "staging 1.2.3", "user_id": RELEASER}).encode()),
)
forged_headers = st.one_of(
    st.just({}),
    st.builds(
        lambda ts, sig: {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig},
        st.one_of(st.just(int(time.time())), st.integers(min_value=0, max_value=2**40)),
        st.one_of(
            st.text(alphabet="0123456789abcdefv=", max_size=70),
            st.just("v0=" + "0" * 64),
            st.builds(lambda body_ts: sign("not-the-secret", body_ts, b""), st.just(int(time.time()))),
        ),
    ),
)


@FUZZ
@given(body=well_formed_bodies, headers=forged_headers)
async def test_unsigned_or_forged_requests_are_401_and_change_nothing(
    bot: BotHarness, body: bytes, headers: dict[str, str]
) -> None:
    before, calls = world(bot, SLACK_TABLES), len(bot.slack.calls)
    response = await bot.client.post(
        "/slack/events", data=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
    )
    await bot.settle()
    assert response.status == 401
    assert world(bot, SLACK_TABLES) == before and len(bot.slack.calls) == calls


FORGED_GARBAGE = [
    ({"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"}, b"command=%2Frelease&text=status"),
    ({"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""}, b"command=%2Frelease&text=status"),
    ({"X-Slack-Request-Timestamp": "1e3", "X-Slack-Signature": "v0=00"}, b"command=%2Frelease&text=status"),
    ({"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=é"}, b"text=status"),
    ({}, b"payload=null"),
    ({}, b"payload=%5B%5D"),
    ({}, b"\xff\xfe"),
    ({"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}, b"payload=%7B"),
]


@pytest.mark.parametrize(("headers", "body"), FORGED_GARBAGE)
async def test_unsigned_garbage_is_401_not_500(bot: BotHarness, headers: dict[str, str], body: bytes) -> None:
    response = await bot.client.post(
        "/slack/events", data=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
    )
    assert response.status == 401


def test_strategies_cover_the_nasty_json_literals() -> None:
    """NaN and Infinity reach the server as the bare literals Python writes, not as strings."""
    assert _encode({"a": math.nan, "b": math.inf}) == b'{"a": NaN, "b": Infinity}'
    assert not any(ONCALL1 in str(v) or ONCALL2 in str(v) for v in ("U123", OUTSIDER, RELEASER))

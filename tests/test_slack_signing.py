"""The signing helpers must sign exactly as Slack does, and the body builders must parse like Slack's."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from tests.fakes.slack_signing import (
    block_actions_body,
    event_body,
    sign,
    signed_headers,
    slash_command_body,
    view_submission_body,
)

# Slack's published example (docs "Verifying requests from Slack"; python-slack-sdk signature tests).
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TIMESTAMP = "1531420618"
BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
EXPECTED = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class FrozenClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_sign_matches_slacks_official_vector() -> None:
    assert sign(SECRET, TIMESTAMP, BODY.encode()) == EXPECTED
    assert sign(SECRET, int(TIMESTAMP), BODY.encode()) == EXPECTED


def test_slack_sdk_verifier_agrees_with_the_vector_and_with_sign() -> None:
    verifier = SignatureVerifier(SECRET, clock=FrozenClock(int(TIMESTAMP) + 10))
    assert verifier.generate_signature(timestamp=TIMESTAMP, body=BODY) == EXPECTED
    assert verifier.is_valid(BODY, TIMESTAMP, sign(SECRET, TIMESTAMP, BODY.encode()))
    # A single changed byte must break it: the vector is not being matched by accident.
    assert not verifier.is_valid(BODY.replace("roadrunner", "roadrunnex"), TIMESTAMP, EXPECTED)
    assert sign(SECRET, int(TIMESTAMP) + 1, BODY.encode()) != EXPECTED


def test_signed_headers_pass_slack_sdk_verification_now() -> None:
    body = slash_command_body(text="deploy api")
    headers = signed_headers("s3cret", body)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert abs(int(headers["X-Slack-Request-Timestamp"]) - time.time()) < 5
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)


def test_stale_timestamp_is_rejected_by_slack_sdk() -> None:
    body = event_body({"type": "app_mention", "text": "hi"})
    headers = signed_headers("s3cret", body, timestamp=int(time.time()) - 301)
    assert headers["Content-Type"] == "application/json"
    assert not SignatureVerifier("s3cret").is_valid_request(body, headers)


def test_slash_command_body_has_every_field_slack_sends() -> None:
    body = slash_command_body("/release", "deploy api v1.2 & more", user_id="U123", channel_id="C9", trigger_id="t.1")
    fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    assert list(fields) == [
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
        "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    ]  # fmt: skip
    assert fields["command"] == "/release"
    assert fields["text"] == "deploy api v1.2 & more"
    assert (fields["user_id"], fields["channel_id"], fields["trigger_id"]) == ("U123", "C9", "t.1")
    assert b"%2Frelease" in body  # the slash is URL-encoded exactly as in Slack's vector


def test_block_actions_body_is_a_form_encoded_payload() -> None:
    body = block_actions_body("U7", "approve", "rel-42", channel_id="C1", message_ts="1700000000.000300")
    (raw,) = parse_qs(body.decode())["payload"]
    payload = json.loads(raw)
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U7"
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000300",
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    (action,) = payload["actions"]
    assert (action["action_id"], action["value"], action["type"]) == ("approve", "rel-42", "button")
    assert {"trigger_id", "team", "channel", "message", "response_url", "api_app_id"} <= payload.keys()


def test_view_submission_body_carries_state_values() -> None:
    values = {"reason": {"reason_input": {"type": "plain_text_input", "value": "hotfix"}}}
    body = view_submission_body("freeze_override", values, private_metadata="rel-1")
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "freeze_override"
    assert payload["view"]["state"]["values"] == values
    assert payload["view"]["private_metadata"] == "rel-1"


def test_event_body_is_an_event_callback_envelope_with_unique_ids() -> None:
    first = json.loads(event_body({"type": "app_mention", "text": "<@U0BOT00001> status"}))
    second = json.loads(event_body({"type": "app_mention", "text": "again"}))
    assert first["type"] == "event_callback"
    assert first["event"]["text"] == "<@U0BOT00001> status"
    assert isinstance(first["event_time"], int)
    assert first["event_id"] != second["event_id"]

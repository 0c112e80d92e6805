"""Sign requests and build request bodies exactly as Slack sends them to an HTTP-mode app.

Slack signs every request with ``v0=`` + hex HMAC-SHA256(signing_secret, ``v0:{timestamp}:{raw body}``)
and sends it in ``X-Slack-Signature`` with the timestamp in ``X-Slack-Request-Timestamp``.

The ``*_payload`` builders return the dict Slack puts in a Socket Mode envelope; the ``*_body`` builders
return the raw bytes Slack POSTs to the Request URL (form-encoded, or JSON for the Events API).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

DEFAULT_TEAM_ID = "T0TEAM0001"
DEFAULT_TEAM_DOMAIN = "acme"
DEFAULT_APP_ID = "A0APP00001"
DEFAULT_CHANNEL_ID = "C0RELEASES"
DEFAULT_CHANNEL_NAME = "releases"
DEFAULT_USER_ID = "U0ALICE001"
# Slack still sends the legacy verification token; apps should ignore it.
VERIFICATION_TOKEN = "xyzz0WbapA4vBCDEFasx0q6G"

_counter = itertools.count(1)


def _next_id() -> int:
    return next(_counter)


def _trigger_id() -> str:
    n = _next_id()
    return f"{1000000000 + n}.{47445629121}.{n:032x}"


def _action_ts() -> str:
    return f"{time.time():.6f}"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Return Slack's ``X-Slack-Signature`` value for ``body`` sent at ``timestamp``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    body: bytes,
    timestamp: int | None = None,
    content_type: str | None = None,
) -> dict[str, str]:
    """Headers Slack sends with ``body``: signature, timestamp (default: now) and Content-Type.

    The content type is guessed from the body (JSON for Events API envelopes, form otherwise) unless given.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    if content_type is None:
        content_type = "application/json" if body[:1] == b"{" else "application/x-www-form-urlencoded"
    return {
        "X-Slack-Signature": sign(secret, ts, body),
        "X-Slack-Request-Timestamp": str(ts),
        "Content-Type": content_type,
    }


def slash_command_payload(
    command: str = "/release",
    text: str = "",
    *,
    user_id: str = DEFAULT_USER_ID,
    user_name: str | None = None,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
) -> dict[str, str]:
    """The fields of a slash command invocation, in the order Slack sends them (all strings)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url or f"https://hooks.slack.com/commands/{team_id}/{_next_id()}/{'r' * 24}",
        "trigger_id": trigger_id or _trigger_id(),
    }


def slash_command_body(command: str = "/release", text: str = "", **kwargs: Any) -> bytes:
    """Form-encoded body Slack POSTs for a slash command; kwargs as for :func:`slash_command_payload`."""
    return urlencode(slash_command_payload(command, text, **kwargs)).encode()


def _user(user_id: str, user_name: str | None, team_id: str) -> dict[str, str]:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def block_actions_payload(
    user_id: str = DEFAULT_USER_ID,
    action_id: str = "approve",
    value: str = "",
    *,
    block_id: str = "actions",
    button_text: str = "Approve",
    user_name: str | None = None,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    message_ts: str = "1700000000.000100",
    message: dict[str, Any] | None = None,
    is_ephemeral: bool = False,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
    state_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button click on a message, shaped like Slack's.

    ``message`` should be the message as posted (e.g. ``fake.message(channel, ts).as_slack()``); a minimal
    bot message is synthesised when omitted.
    """
    msg = message or {
        "type": "message",
        "user": "U0BOT00001",
        "ts": message_ts,
        "text": "",
        "blocks": [],
    }
    return {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": msg,
        "state": {"values": state_values or {}},
        "response_url": response_url or f"https://hooks.slack.com/actions/{team_id}/{_next_id()}/{'a' * 24}",
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": _action_ts(),
            }
        ],
    }


def block_actions_body(
    user_id: str = DEFAULT_USER_ID, action_id: str = "approve", value: str = "", **kwargs: Any
) -> bytes:
    """Form body ``payload=<json>`` Slack POSTs for a button click; kwargs as for block_actions_payload."""
    payload = block_actions_payload(user_id, action_id, value, **kwargs)
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission_payload(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    user_id: str = DEFAULT_USER_ID,
    user_name: str | None = None,
    view_id: str = "V0VIEW0001",
    private_metadata: str = "",
    blocks: list[dict[str, Any]] | None = None,
    title: str = "Release",
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """A ``view_submission`` payload; ``values`` is ``{block_id: {action_id: {"type":..., "value":...}}}``."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or _trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": f"{int(time.time())}.{view_id.lower()}",
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": "B0BOT00001",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_submission_body(callback_id: str, values: dict[str, dict[str, dict[str, Any]]], **kwargs: Any) -> bytes:
    """Form body ``payload=<json>`` Slack POSTs when a modal is submitted."""
    payload = view_submission_payload(callback_id, values, **kwargs)
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_envelope(
    event: dict[str, Any],
    *,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """The ``event_callback`` envelope Slack wraps around an Events API event."""
    n = _next_id()
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{n:010d}",
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "U0BOT00001",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{n:x}",
    }


def event_body(event: dict[str, Any], **kwargs: Any) -> bytes:
    """JSON body Slack POSTs for an Events API event; kwargs as for :func:`event_envelope`."""
    return json.dumps(event_envelope(event, **kwargs)).encode()

"""Test doubles for remote services the bot talks to: real local servers speaking the real wire format."""

from tests.fakes.slack_api import (
    Ephemeral,
    FakeSlackWebAPI,
    Message,
    RecordedCall,
    SlackError,
    UploadedFile,
)
from tests.fakes.slack_signing import (
    block_actions_body,
    block_actions_payload,
    event_body,
    event_envelope,
    sign,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    view_submission_body,
    view_submission_payload,
)
from tests.fakes.socket_mode import FakeSocketModeServer

__all__ = [
    "Ephemeral",
    "FakeSlackWebAPI",
    "FakeSocketModeServer",
    "Message",
    "RecordedCall",
    "SlackError",
    "UploadedFile",
    "block_actions_body",
    "block_actions_payload",
    "event_body",
    "event_envelope",
    "sign",
    "signed_headers",
    "slash_command_body",
    "slash_command_payload",
    "view_submission_body",
    "view_submission_payload",
]

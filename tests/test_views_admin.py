"""The admin answers as Slack messages: the Admin service returns plain data, the view escapes and mentions.

Every answer here carries raw outside text (a version, a lock reason, an image reference someone pushed,
a source's error); the view is the only place it is escaped, and only stored user IDs become mentions.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.core.models import Candidate, EnvState, Lock
from bot.core.notes import build_release_notes
from bot.views.admin import (
    CandidateManifest,
    EnvManifest,
    EnvStatus,
    Frozen,
    Locked,
    NotesAnswer,
    RunningManifest,
    Status,
    Unfrozen,
    Unlocked,
    Windows,
    already_locked,
    frozen_message,
    home_rows,
    locked_message,
    manifest_message,
    no_stored_notes,
    notes_message,
    notes_unavailable,
    status_message,
    unfrozen_message,
    unknown_candidate,
    unlocked_message,
    windows_message,
)
from bot.views.render import Message
from tests.test_views_windows import HOSTILE, TORONTO, freeze, policy

ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
AT = datetime(2026, 5, 2, 14, 0, tzinfo=UTC)  # Saturday 10:00 in Toronto: prod is closed
SINCE = datetime(2026, 5, 1, 13, 0, tzinfo=UTC)


def raw(message: Message) -> str:
    """Everything the message would send Slack, fallback text included."""
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


def state(env: str, version: str = HOSTILE) -> EnvState:
    return EnvState("svc", env, version, 7, SINCE, "U0RELEASER")


def lock(kind: str, reason: str = HOSTILE) -> Lock:
    return Lock("svc", "staging", kind, "U0HOLDER", reason, SINCE)


def status() -> Status:
    staging = EnvStatus(
        "staging",
        state("staging"),
        policy().decide("staging", AT, [freeze(HOSTILE)]),
        (lock("release"), lock("manual")),
    )
    prod = EnvStatus("prod", None, policy().decide("prod", AT), ())
    return Status("svc", (staging, prod))


def test_status_escapes_versions_lock_and_freeze_reasons_and_mentions_stored_users() -> None:
    message = status_message(status(), TORONTO)
    assert message.text == "Status of svc"
    assert message.blocks[0]["text"]["text"] == "svc status"
    assert message.blocks[1]["text"]["text"] == (
        f"*staging* — *{ESCAPED}* since Fri 01 May 09:00 EDT by <@U0RELEASER>\n"
        f"    window 🔴 closed: ad-hoc freeze by <@U0FREEZER>: {ESCAPED}\n"
        f"    🔒 {ESCAPED} (<@U0HOLDER>)\n"
        f"    🔒 locked by <@U0HOLDER>: {ESCAPED}\n"
        "*prod* — _nothing released yet_\n"
        "    window 🔴 closed: weekend (Saturday)"
    )
    assert "<!channel>" not in raw(message)


def test_home_rows_show_one_lock_per_environment_the_first_one() -> None:
    (row,) = home_rows([status()], TORONTO)
    staging, prod = row.envs
    assert row.service == "svc"
    assert (staging.version, staging.by, staging.lock_holder) == (HOSTILE, "U0RELEASER", "U0HOLDER")
    assert staging.window_text == f"closed (ad-hoc freeze by <@U0FREEZER>: {ESCAPED}); opens Mon 4 May 00:00 EDT"
    assert (prod.version, prod.lock_holder, prod.window_open) == (None, None, False)


def test_windows_say_each_decision_in_the_askers_zone_too() -> None:
    decisions = (policy().decide("staging", AT, [freeze(HOSTILE)]), policy().decide("prod", AT))
    message = windows_message(Windows(decisions, ZoneInfo("Europe/London")), TORONTO)
    assert message.text == message.blocks[0]["text"]["text"]
    assert len(message.blocks) == 2
    assert ESCAPED in message.text and "<!channel>" not in raw(message)
    assert "BST" in message.blocks[1]["text"]["text"]


def test_a_manifest_escapes_component_names_and_image_references() -> None:
    candidate = Candidate("svc", "1.2.3", "a" * 40, None, {"api<!here>": f"ghcr.io/x:{HOSTILE}"}, SINCE)
    message = manifest_message(CandidateManifest("svc", candidate), TORONTO)
    assert message.blocks[1]["text"]["text"] == (
        f"*svc 1.2.3* · commit `{'a' * 12}`\n• api&lt;!here&gt;: `ghcr.io/x:{ESCAPED}`"
    )
    running = RunningManifest("svc", (EnvManifest("staging", state("staging"), None), EnvManifest("prod", None, None)))
    assert manifest_message(running, TORONTO).blocks[1]["text"]["text"] == (
        f"*staging*: {ESCAPED} · commit `?` · released Fri 01 May 09:00 EDT by <@U0RELEASER>\n"
        "*prod*: nothing released yet"
    )


def test_notes_have_a_header_and_the_notes_blocks() -> None:
    message = notes_message(NotesAnswer("svc", "1.2.3", build_release_notes([])))
    assert message.text == "Release notes for svc 1.2.3"
    assert message.blocks[0]["text"]["text"] == "svc 1.2.3 release notes"
    assert message.blocks[1]["text"]["text"] == "No changes in this range."


def test_lock_and_freeze_acknowledgements_escape_the_reason() -> None:
    assert locked_message(Locked("svc", "prod", "U0LOCKER", HOSTILE)).text == (
        f"🔒 svc prod is locked by <@U0LOCKER>: {ESCAPED}"
    )
    assert unlocked_message(Unlocked("svc", "prod")).text == "🔓 svc prod is unlocked."
    assert frozen_message(Frozen("svc", "prod", date(2026, 5, 4), HOSTILE)).text == (
        f"🧊 svc prod is frozen through Mon 04 May 2026: {ESCAPED}"
    )
    assert unfrozen_message(Unfrozen("svc", "prod")).text == "svc prod is no longer frozen."


def test_refusals_quoting_outside_text_escape_it() -> None:
    assert already_locked(lock("manual")) == f"staging is already locked by <@U0HOLDER>: {ESCAPED}"
    assert unknown_candidate("svc", HOSTILE) == f"{ESCAPED} is not a known svc candidate."
    assert no_stored_notes(HOSTILE) == f"no release notes stored for {ESCAPED}."
    assert notes_unavailable(HOSTILE) == f"release notes unavailable: {ESCAPED}"

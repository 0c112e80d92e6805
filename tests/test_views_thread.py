"""The thread's story, check pings and rollback refusals as views: plain data in, escaped mrkdwn out.

The services pass labels, versions, errors and reasons as they came (from config, a provider, a person);
these views are where they become inert, and where only stored user IDs and configured groups ping.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import parse_config
from bot.core.checklist import Evidence, evaluate_checklist
from bot.core.models import Release, ReleaseKind, ReleaseState
from bot.core.verdicts import Verdict
from bot.engine.gates import Gates
from bot.views import checks, parent, rollbacks, thread
from bot.views.checklist import checklist_lines
from bot.views.render import Message
from tests.harness import config_dict

HOSTILE = "<!channel> & <https://evil.example|click>"
SHOWN = "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
RAW = ("<!channel>", "<https://evil")
TORONTO = ZoneInfo("America/Toronto")
AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def everything(message: Message) -> str:
    # ensure_ascii=False: a raw `<` anywhere in the text or blocks stays a raw `<` here.
    return json.dumps({"text": message.text, "blocks": message.blocks}, ensure_ascii=False)


def assert_inert(message: Message) -> None:
    shown = everything(message)
    assert not [token for token in RAW if token in shown], shown
    assert SHOWN in shown, shown


def test_thread_replies_escape_labels_versions_errors_and_reasons() -> None:
    for message in [
        thread.verify_started(HOSTILE),
        thread.step_done(HOSTILE),
        thread.live("notify", HOSTILE, "prod"),
        thread.undo_impossible(HOSTILE),
        thread.undo_step("switch back", ok=False, error=HOSTILE),
        thread.rollback_step(HOSTILE, ok=True),
        thread.rolled_back_to(HOSTILE, "U0RELEASER", 7),
        thread.back_on("prod", HOSTILE),
        thread.rollback_asked("U0RELEASER", HOSTILE, 7),
        thread.manifest_failed(HOSTILE),
        thread.checks_cancelled(2, HOSTILE),
        thread.step_left_running(HOSTILE, "prod", "process group 42", started=AT, until=AT, zone=TORONTO),
        thread.step_ended(HOSTILE, "exit status 0", ReleaseState.SUCCEEDED, ended="now", tail=None),
        thread.step_ended("deploy", HOSTILE, ReleaseState.FAILED, ended="while_down", tail=HOSTILE),
        thread.outcome_waited(ReleaseState.FAILED, since=AT, error=HOSTILE, zone=TORONTO, tail=None),
        thread.outcome_waited_notice("notify", HOSTILE, "prod", 7, ReleaseState.SUCCEEDED, since=AT, zone=TORONTO),
    ]:
        assert_inert(message)
    for why in [
        thread.step_ended_partway(HOSTILE, "exit status 0"),
        thread.step_unproven("deploy", HOSTILE, "prod"),
        thread.outcome_waited_why("notify", HOSTILE, "prod", since=AT, error="disk I/O error", zone=TORONTO),
    ]:
        assert SHOWN in why and not [token for token in RAW if token in why], why


def test_a_step_a_restart_left_says_how_it_ended_and_what_was_recorded() -> None:
    failed = thread.step_ended("deploy to 100%", "exit status 3", ReleaseState.FAILED, ended="while_down", tail="boom")
    assert failed.text == (
        "❌ The deploy step *deploy to 100%* was running when the bot restarted and finished while it was down: "
        "exit status 3. The release is recorded *failed*."
    )
    assert "boom" in everything(failed), "a failure shows its output tail"
    running = thread.step_left_running("deploy to 100%", "prod", "process group 42", started=AT, until=AT, zone=TORONTO)
    assert "it still runs (process group 42" in running.text and "prod stays locked" in running.text


def test_only_stored_user_ids_become_mentions() -> None:
    assert "<@U0RELEASER>" in everything(thread.rolled_back_to("1.2.3", "U0RELEASER", 7))
    assert "<@" not in everything(thread.rollback_asked("<@U0OTHER>", "1.2.3", 7))


def test_a_steps_outcome_is_done_or_the_providers_error() -> None:
    assert thread.undo_step("shift 0%", ok=True, error=None).text == "↩️ shift 0%: done"
    assert thread.undo_step("shift 0%", ok=False, error=None).text == "↩️ shift 0%: failed"
    assert thread.rollback_step("rollback", ok=False).text == "❌ rollback"


def test_check_times_are_shown_once_each_in_the_service_zone() -> None:
    at = datetime(2026, 5, 4, 18, 0, tzinfo=UTC)
    message = thread.checks_scheduled([at, at], TORONTO)
    assert message.text == "🗓️ Post-release checks scheduled: Mon 04 May 14:00 EDT."


def test_on_call_is_pinged_by_configured_groups_and_outside_text_stays_inert() -> None:
    groups = {"oncall": ["U0ONCALL", "S0TEAM", "<!channel>"]}
    ping = checks.check_ping(groups, ["oncall"], release_id=7, version=HOSTILE, verdict=Verdict.FAIL)
    hold = checks.hold_message(groups, ["oncall"], release_id=7, version="1.2.3", step="25%", reasons=HOSTILE)
    for message in (ping, hold):
        assert_inert(message)
        assert "<@U0ONCALL> <!subteam^S0TEAM>" in everything(message)
    assert [b["action_id"] for b in ping.blocks[-1]["elements"]] == ["check_rollback", "check_dismiss"]
    assert [b["action_id"] for b in hold.blocks[-1]["elements"]] == ["check_looks_good", "check_rollback"]


def test_acknowledgements_escape_the_held_step() -> None:
    for message in [
        checks.continuing("U0ONCALL", HOSTILE),
        checks.hold_rolled_back("U0ONCALL", HOSTILE),
        checks.continuing_reply(HOSTILE),
        checks.rolling_back_reply(HOSTILE),
    ]:
        assert_inert(message)


def test_rollback_refusals_escape_versions_and_lock_reasons() -> None:
    for text in [
        rollbacks.waiting_rollback("notify", "prod", HOSTILE, 7),
        rollbacks.never_ran(HOSTILE, "prod"),
        rollbacks.already_runs("prod", HOSTILE),
        rollbacks.replaced(7, HOSTILE, "prod", "1.2.4"),
        rollbacks.busy("notify", "prod", "U0HOLDER", HOSTILE),
    ]:
        assert SHOWN in text and not [token for token in RAW if token in text], text
    assert "<@U0HOLDER>" in rollbacks.busy("notify", "prod", "U0HOLDER", "deploying 1.2.3")
    assert_inert(rollbacks.waiting_for_approval(HOSTILE))
    assert_inert(rollbacks.rolling_back("prod", HOSTILE, 7))


def test_the_parent_message_escapes_what_the_release_carries() -> None:
    release = Release(
        id=7,
        service="notify",
        env="prod",
        version="1.2.3",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.FAILED,
        requested_by="U0RELEASER",
        requested_at=datetime(2026, 5, 4, 18, 0, tzinfo=UTC),
        error=HOSTILE,
    )
    message = parent.parent_message(release, TORONTO)
    assert_inert(message)
    assert "<@U0RELEASER>" in everything(message)


def test_the_parent_message_says_the_rollback_plan_as_a_sentence(tmp_path: Path) -> None:
    """Each plan reads after "back to …by"; a first release says once that there is nothing to roll back to."""
    config = parse_config(config_dict(tmp_path / "deploys.log", strategy={"type": "blue_green", "pause": "2m"}))
    gates = Gates(config, db=None, clock=None)  # type: ignore[arg-type]  # a rollback plan reads neither
    release = Release(
        id=7,
        service="notify",
        env="staging",
        version="1.2.3",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U0RELEASER",
        requested_at=AT,
    )
    earlier = replace(release, id=6, version="1.2.2", state=ReleaseState.SUCCEEDED)

    def plan_line(env: str, last_healthy: Release | None) -> str:
        plan = gates.rollback_plan(env, last_healthy)
        planned = replace(release, env=env, rollback_target=plan.target_version, rollback_method=plan.method)
        facts = parent.parent_message(planned, TORONTO).blocks[1]["text"]["text"].split("\n")
        [line] = [line for line in facts if line.startswith("*Rollback plan:*")]
        return str(line)

    assert plan_line("staging", earlier) == "*Rollback plan:* back to 1.2.2 by redeploying 1.2.2"
    assert plan_line("prod", earlier) == (
        "*Rollback plan:* back to 1.2.2 by switching traffic back to the previous colour"
    )
    assert plan_line("staging", None) == "*Rollback plan:* none: the first release here, so nothing to roll back to"
    # The checklist says it once too: no "(nothing to roll back to)" after it.
    result = evaluate_checklist(config.environments["prod"], Evidence(rollback_plan=gates.rollback_plan("prod", None)))
    assert "✅ rollback plan: first release, nothing to roll back to" in checklist_lines(result)

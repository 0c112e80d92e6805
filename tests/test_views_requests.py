"""Release requests and approvals in words: the services hand over plain data, these views escape and mention."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import parse_config
from bot.core.checklist import ChecklistResult, ItemResult
from bot.core.models import Approval, ApprovalKind, ApprovalState, DeployRun, Lock, RunRole
from bot.core.windows import WindowDecision, WindowPolicy
from bot.policy.admission import Code, Kind, PlanFacts, Refusal
from bot.views import admission, approvals, requests

TORONTO = ZoneInfo("America/Toronto")
DEPLOY = {"provider": "command", "run": ["true"]}
HOSTILE = "<!channel> & <https://evil.example|click>"
ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
AT = datetime(2026, 5, 2, 14, 0, tzinfo=UTC)  # a Saturday: prod's business-hours window is closed


def closed_prod() -> WindowDecision:
    config = parse_config(
        {
            "timezone": "America/Toronto",
            "business_hours": {"start": "09:00", "end": "16:00"},
            "freezes": [],
            "services": {"svc": {"channel": "C01TEST", "pipeline": ["staging", "prod"]}},
            "environments": {
                "staging": {"window": "always", "deploy": DEPLOY},
                "prod": {"window": "business_hours", "deploy": DEPLOY},
            },
        }
    )
    decision = WindowPolicy(config).decide("prod", AT)
    assert not decision.open
    return decision


REQUEST = Approval(
    id=7,
    kind=ApprovalKind.FORCE,
    service="svc",
    env="prod",
    requester="U0ASKER",
    required=1,
    eligible_groups=["oncall"],
    state=ApprovalState.PENDING,
    created_at=AT,
    expires_at=AT,
    subject={"release_id": 3, "title": f"Break-glass release of svc {HOSTILE}", "details": ["*bold*"]},
)


def test_a_typed_version_is_escaped_in_every_refusal_that_quotes_it() -> None:
    assert requests.unknown_candidate(HOSTILE, "svc", ["1.0", "<2.0>"]) == (
        f"{ESCAPED} is not a known svc candidate (recent: 1.0, &lt;2.0&gt;). Register it first: from CI with "
        f"`POST /api/v1/candidates`, or `release-bot candidate add svc {ESCAPED} …` (at the console too)."
    )
    assert requests.unknown_candidate("9.9", "svc", []).startswith("9.9 is not a known svc candidate (recent: none")
    assert requests.not_passed_previous(HOSTILE, "staging", "prod") == (
        f"{ESCAPED} has not been released to staging yet; prod only gets versions that passed staging. "
        f"Run `/release staging {ESCAPED}` first."
    )
    since = "since Sat 02 May 10:00 EDT"
    assert requests.already_runs("prod", HOSTILE, AT, TORONTO) == f"prod already runs {ESCAPED} ({since})."


def test_break_glass_is_offered_for_a_closed_window_and_a_failed_checklist_and_carries_the_reason_escaped() -> None:
    window = closed_prod()
    checklist = ChecklistResult((ItemResult("tests", False, "tests failed"), ItemResult("scan", True, "scan clean")))
    refusal = requests.needs_break_glass("prod", window, checklist, TORONTO)
    lines = refusal.split("\n")
    assert lines[0].startswith("prod is closed")
    assert lines[1:] == [
        "prod's checklist is not satisfied:",
        "❌ tests failed",
        "✅ scan clean",
        "Break-glass: add `--force <reason>` (an on-call approver is asked).",
    ]
    details = requests.break_glass_details(HOSTILE, "prod", window, checklist, TORONTO)
    assert details[0] == f"Reason: {ESCAPED}"
    assert details[1:] == [lines[0], "\n".join(lines[1:-1])]  # the window, then the checklist with its items
    # A passing checklist is not a blocker: only the window is carried.
    passed = ChecklistResult((ItemResult("scan", True, "scan clean"),))
    assert requests.break_glass_details("hotfix", "prod", window, passed, TORONTO) == ["Reason: hotfix", lines[0]]
    assert requests.outside_window_reason(window).startswith("deployment window closed: ")


def test_the_approval_request_is_drawn_from_the_title_and_details_stored_with_it() -> None:
    message = approvals.request(REQUEST, TORONTO)
    first = message.blocks[0]["text"]["text"]
    assert first.startswith(f"*Break-glass release of svc {ESCAPED}*\n")  # the title is plain text: escaped
    assert first.endswith("\n*bold*")  # details are stored as mrkdwn: shown as they are
    assert [b["action_id"] for b in message.blocks[1]["elements"]] == ["approval_approve", "approval_deny"]
    assert approvals.request(replace(REQUEST, subject={"release_id": 3}), TORONTO).text == "Approval needed: Approval"


def test_the_release_thread_names_the_denier_and_escapes_their_reason() -> None:
    assert approvals.denied_in_thread("U0LEAD", HOSTILE).text == f"🚫 Denied by <@U0LEAD>: {ESCAPED}"
    assert approvals.vote_too_late(ApprovalState.DENIED) == "that request is already denied; nothing more was done."
    assert approvals.deny_too_late(ApprovalState.EXPIRED) == "that request is already expired; nothing changed."
    waiting = [replace(REQUEST, kind=ApprovalKind.RELEASE, eligible_groups=["leads", "qa"])]
    assert approvals.still_waiting(ApprovalKind.FORCE, waiting).text == (
        "✅ force approval granted; still waiting for release approval from leads, qa."
    )


def test_an_approved_release_that_finds_its_env_locked_says_by_what() -> None:
    running = Lock("svc", "prod", "release", "U0OTHER", HOSTILE, AT, release_id=2)
    assert approvals.approved_but_busy("prod", running, TORONTO).text == (
        f"🚫 Approved, but prod is busy ({ESCAPED}). Ask again when it is free."
    )
    manual = Lock("svc", "prod", "manual", "U0LOCKER", HOSTILE, AT)
    text = approvals.approved_but_busy("prod", manual, TORONTO).text
    assert text.startswith("🚫 Approved, but svc prod has a manual lock")
    assert ESCAPED in text and "<!channel>" not in text


def test_admission_refusals_escape_versions_and_explain_locks_with_their_holder() -> None:
    plan = PlanFacts(service="svc", env="prod", version=HOSTILE, kind=Kind.FORWARD, replaces="1.0", requester="U0ASKER")
    stale = admission.refusal_text(Refusal(Code.STALE), plan, "<2.0>", [], TORONTO)
    assert stale == (
        "this plan is stale: it was to replace 1.0 in prod, but prod now runs &lt;2.0&gt;. "
        f"Ask again if it is still wanted: `/release prod {ESCAPED}`."
    )
    lock = Lock("svc", "prod", "manual", "U0LOCKER", "db migration", AT)
    manual = admission.refusal_text(Refusal(Code.MANUAL_LOCK), plan, None, [lock], TORONTO)
    assert manual.startswith("svc prod has a manual lock") and "<@U0LOCKER>" in manual
    busy = admission.refusal_text(Refusal(Code.BUSY), plan, None, [lock], TORONTO)
    assert busy == "svc prod is busy. Try again once it finishes."  # the only lock is not a release's


def test_a_deploy_left_running_by_a_restart_is_named_with_its_step_and_times() -> None:
    plan = PlanFacts(service="svc", env="prod", version="1.2.4", kind=Kind.FORWARD, replaces="1.2.3", requester="U0")
    left = DeployRun(
        id=3,
        release_id=7,
        step=f"deploy {HOSTILE}",
        action="deploy",
        role=RunRole.FINAL,
        provider="command",
        started_at=AT,
        deadline_at=AT + timedelta(minutes=15),
    )

    words = admission.refusal_text(Refusal(Code.DEPLOY_LEFT, 7), plan, "1.2.3", [], TORONTO, left=left)

    assert words.startswith("svc prod is still being deployed: ")
    assert f"deploy {ESCAPED}" in words and HOSTILE not in words
    assert "(release #7) was running when the bot restarted" in words
    assert "started Sat 02 May 10:00 EDT" in words and "until Sat 02 May 10:15 EDT at the latest" in words


def test_only_unpinned_images_come_with_a_fix_and_it_shows_each_image_pinned() -> None:
    from bot.views.checklist import checklist_fixes

    failed = ChecklistResult((ItemResult("images", False, "images: worker: … is not pinned by digest"),))
    pinned = "ghcr.io/acme/api:2.0@sha256:" + "a" * 64
    images = {"api": pinned, "worker": "ghcr.io/acme/worker:2.0", "cron": "Not An Image"}
    [fix] = checklist_fixes(failed, "svc", images, ["api", "worker", "cron", "mail"])
    assert fix.startswith("To pin the images: a registered version cannot change, so register a new version")
    assert (
        f"`release-bot candidate add svc VERSION --commit SHA --image api={pinned} "
        "--image worker=ghcr.io/acme/worker:2.0@sha256:… --image cron=IMAGE@sha256:… …`"
    ) in fix
    assert checklist_fixes(ChecklistResult((ItemResult("images", True, "ok"),)), "svc", images, ["api"]) == []
    tests_only = ChecklistResult((ItemResult("unit", False, "unit tests: no result reported by CI"),))
    assert checklist_fixes(tests_only, "svc", images, ["api"]) == []
    hostile = checklist_fixes(failed, "svc", {"api": "ghcr.io/acme/api:<!here>"}, ["api"])[0]
    assert "<!here>" not in hostile

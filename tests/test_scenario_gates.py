"""Windows, freezes, break-glass, checklist gates and the release manifest, end to end.

Everything goes through the real HTTP app: signed slash commands and button clicks in, Slack Web API
calls out to the fake, CI reports through the real ``/api/v1`` with its bearer token, and the manifest
is committed into a real temporary git repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import ReleaseState
from tests.harness import (
    API_TOKEN,
    CHANNEL,
    DIGEST,
    ONCALL1,
    ONCALL2,
    OUTSIDER,
    RELEASER,
    BotHarness,
    MutableClock,
    config_dict,
    running_bot,
)

DATA = Path(__file__).parent / "data"
GIT = shutil.which("git")

# Instants in Toronto (EST, UTC-5, all through this stretch of the calendar).
SATURDAY_10AM = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
CHRISTMAS_10AM = datetime(2026, 12, 25, 15, 0, tzinfo=UTC)
TUESDAY_4_30PM = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
FRIDAY_1PM = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
MONDAY_IN_FREEZE = datetime(2026, 12, 21, 15, 0, tzinfo=UTC)
TUESDAY_3_59PM = datetime(2026, 11, 24, 20, 59, tzinfo=UTC)


def ready_for_prod(bot: BotHarness, version: str = "1.2.3", **candidate: Any) -> None:
    """A candidate that already passed staging, with an older healthy release in prod to return to."""
    bot.add_candidate("1.2.2")
    bot.add_candidate(version, **candidate)
    bot.live("prod", "1.2.2")
    bot.live("staging", version)


async def _answered(bot: BotHarness, before: int) -> str:
    """Wait for the next ``response_url`` post (the answer) and the work it started; return its text."""
    calls = await bot.slack.wait_for("response_url", count=before + 1)
    await bot.settle()
    args = calls[before].args
    blocks = args.get("blocks") or []
    return (
        str(args.get("text", ""))
        + "\n"
        + (blocks if isinstance(blocks, str) else json.dumps(blocks, ensure_ascii=False))
    )


async def ask(bot: BotHarness, text: str, *, user: str = RELEASER) -> str:
    """Send a signed slash command; return the answer once it and the work it started are done.

    Bolt runs the handler after the ack, outside the engine's task set, so the answer is awaited on
    the fake's record of ``response_url`` posts before settling the engine's background work.
    """
    before = len(bot.slack.calls_to("response_url"))
    response = await bot.command(text, user=user)
    assert response.status == 200
    return await _answered(bot, before)


async def press(bot: BotHarness, action_id: str, value: str, *, user: str) -> str:
    """Click a button as ``user``; return the answer once it and the work it started are done."""
    before = len(bot.slack.calls_to("response_url"))
    response = await bot.click(action_id, value, user=user)
    assert response.status == 200
    return await _answered(bot, before)


def world(bot: BotHarness) -> dict[str, int]:
    """Row counts of everything a release request could change."""
    tables = ("releases", "release_locks", "approvals", "env_state", "release_events")
    return {t: bot.count(t) for t in tables}


def approval_ids(bot: BotHarness) -> list[str]:
    """The values of the Approve buttons the bot has posted, oldest first."""
    found = []
    for call in bot.slack.calls_to("chat.postMessage"):
        for block in call.args.get("blocks") or []:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == "approval_approve":
                    found.append(str(element["value"]))
    return found


def parent_text(bot: BotHarness, release_id: int) -> str:
    """Everything the release's parent message shows now (text and blocks)."""
    release = bot.store.get_release(release_id)
    assert release is not None and release.channel and release.thread_ts
    message = bot.slack.message(release.channel, release.thread_ts)
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


async def post_scan(bot: BotHarness, version: str, report: str) -> dict[str, Any]:
    # Evidence must be about the candidate: the published report is re-pointed at the candidate's api image.
    body = json.loads((DATA / report).read_bytes())
    body.setdefault("Metadata", {})["RepoDigests"] = [f"ghcr.io/example/api@{DIGEST}"]
    response = await bot.client.post(
        f"/api/v1/candidates/notify/{version}/scan",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


# --- refusals: the reason and the next opening, and nothing changes ----------------------------------------


@pytest.mark.parametrize(
    ("now", "reason", "next_window"),
    [
        (SATURDAY_10AM, "weekend (Saturday)", "Next window: Mon 30 Nov 09:00 EST"),
        (CHRISTMAS_10AM, "Christmas Day", "Next window: Tue 5 Jan 09:00 EST"),
        (TUESDAY_4_30PM, "outside business hours (09:00–16:00 America/Toronto)", "Next window: Wed 25 Nov 09:00 EST"),
        (FRIDAY_1PM, "after the 12:00 cut-off before the weekend", "Next window: Mon 30 Nov 09:00 EST"),
        (MONDAY_IN_FREEZE, "End-of-year freeze", "Next window: Tue 5 Jan 09:00 EST"),
    ],
    ids=["saturday", "christmas", "after-16h", "friday-cutoff", "configured-freeze"],
)
async def test_closed_window_refuses_with_reason_and_next_opening(
    tmp_path: Path, now: datetime, reason: str, next_window: str
) -> None:
    async with running_bot(tmp_path, clock=MutableClock(now)) as bot:
        ready_for_prod(bot)
        before = world(bot)
        answer = await ask(bot, "prod")
        assert "prod is closed" in answer
        assert reason in answer
        assert next_window in answer
        assert "--force" in answer, "the refusal names the way forward"
        assert world(bot) == before, "a refused release changes nothing"
        assert bot.deploys() == []
        assert not [c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == CHANNEL]


async def test_christmas_refusal_names_both_the_holiday_and_the_freeze(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(CHRISTMAS_10AM)) as bot:
        ready_for_prod(bot)
        answer = await ask(bot, "deploy 1.2.3 to prod")
        assert "Christmas Day" in answer and "End-of-year freeze (until Mon 4 Jan 2027)" in answer
        assert bot.deploys() == []


async def test_staging_is_always_open_even_on_saturday(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM)) as bot:
        bot.add_candidate("1.2.3")
        await ask(bot, "staging 1.2.3")
        assert bot.deploys() == ["notify 1.2.3 staging 100"]


async def test_adhoc_freeze_refuses_naming_who_and_why_and_unfreeze_reopens(bot: BotHarness) -> None:
    ready_for_prod(bot)
    await ask(bot, "freeze prod until 2026-12-01 db migration", user=ONCALL1)
    frozen_notice = [m.text for m in bot.slack.messages(CHANNEL) if "frozen" in m.text]
    assert frozen_notice and "db migration" in frozen_notice[-1], "the freeze is announced in the channel"

    before = world(bot)
    answer = await ask(bot, "prod")
    assert "prod is closed" in answer
    assert "<@U01ONCALL1>" in answer and "db migration" in answer
    assert "Next window: Wed 2 Dec 09:00 EST" in answer
    assert world(bot) == before and bot.deploys() == []

    assert "db migration" in await ask(bot, "window prod")

    await ask(bot, "unfreeze prod", user=ONCALL1)
    await ask(bot, "prod")
    assert bot.deploys() == ["notify 1.2.3 prod 100"]
    audit = [(r["actor"], r["action"]) for r in bot.store.sql.query("SELECT actor, action FROM audit ORDER BY id")]
    assert (ONCALL1, "env.frozen") in audit and (ONCALL1, "env.unfrozen") in audit


async def test_freeze_reason_cannot_ping_the_channel(bot: BotHarness) -> None:
    ready_for_prod(bot)
    await ask(bot, "freeze prod until 2026-12-01 <!channel> look", user=ONCALL1)
    answer = await ask(bot, "prod")
    assert "&lt;!channel&gt;" in answer and "<!channel>" not in answer
    assert bot.deploys() == []


# --- /release window ---------------------------------------------------------------------------------------


async def test_window_answers_in_the_configured_zone_and_the_users_zone(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM)) as bot:
        bot.slack.add_user(RELEASER, tz="Europe/London", name="releaser")
        answer = await ask(bot, "window prod")
        assert "prod is closed: weekend (Saturday)" in answer
        assert "Mon 30 Nov 09:00 EST" in answer
        assert "Mon 30 Nov 14:00 GMT for you" in answer
        assert bot.slack.calls_to("users.info"), "the user's zone comes from users.info"


async def test_window_for_a_user_in_the_configured_zone_says_it_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM)) as bot:
        bot.slack.add_user(RELEASER, tz="America/Toronto")
        answer = await ask(bot, "window")
        assert "staging is open" in answer and "prod is closed" in answer
        assert "for you" not in answer


async def test_window_when_open_names_the_closing_time(bot: BotHarness) -> None:
    bot.slack.add_user(RELEASER, tz="Asia/Tokyo")
    answer = await ask(bot, "window prod")
    assert "prod is open until 16:00 EST today" in answer
    assert "Wed 25 Nov 06:00 JST for you" in answer


async def test_window_names_the_holiday_category_and_the_teams_own_days(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log")
    config["calendar"] = {
        "country": "CA",
        "subdivision": "ON",
        "categories": ["public", "optional"],
        "extra": [{"date": "2026-08-04", "name": "Company day off"}],
    }
    civic_holiday_10am = datetime(2026, 8, 3, 14, 0, tzinfo=UTC)  # Mon 3 Aug, 10:00 in Toronto
    async with running_bot(tmp_path, clock=MutableClock(civic_holiday_10am), config=config) as bot:
        bot.slack.add_user(RELEASER, tz="America/Toronto")
        answer = await ask(bot, "window prod")
        assert "prod is closed: Civic Holiday (optional). Next window: Wed 5 Aug 09:00 EDT." in answer
        bot.clock.advance(days=1)
        assert "prod is closed: Company day off (extra)." in await ask(bot, "window prod")


# --- the window is checked again right before the deploy ----------------------------------------------------


async def test_release_approved_after_the_window_closed_is_cancelled(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    config = config_dict(log, approvals={"required": 1, "from": ["oncall"]})
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_3_59PM), config=config) as bot:
        ready_for_prod(bot)
        assert "waiting for approval" in await ask(bot, "prod")
        [approval] = approval_ids(bot)
        [release] = [r for r in bot.store.history("notify", "prod", 5) if r.state is ReleaseState.AWAITING_APPROVAL]

        bot.clock.advance(minutes=2)  # 16:01: the window closed while the request waited
        await press(bot, "approval_approve", approval, user=ONCALL1)

        done = bot.store.get_release(release.id)
        assert done is not None and done.state is ReleaseState.CANCELLED
        assert "window closed" in (done.error or "")
        assert bot.deploys() == [], "nothing was deployed"
        assert bot.store.lock_of("notify", "prod") is None
        assert "Not started" in " ".join(m.text for m in bot.slack.thread(CHANNEL, done.thread_ts or ""))
        assert "cancelled" in parent_text(bot, release.id)
        state = bot.store.env_state("notify", "prod")
        assert state is not None and state.version == "1.2.2"


async def test_release_approved_inside_the_window_runs(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    config = config_dict(log, approvals={"required": 1, "from": ["oncall"]})
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_3_59PM), config=config) as bot:
        ready_for_prod(bot)
        await ask(bot, "prod")
        [approval] = approval_ids(bot)
        bot.clock.advance(seconds=30)
        await press(bot, "approval_approve", approval, user=ONCALL1)
        assert bot.deploys() == ["notify 1.2.3 prod 100"]


async def test_rollback_is_never_blocked_by_the_window(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM)) as bot:
        bot.add_candidate("1.2.2")
        bot.add_candidate("1.2.3")
        bot.live("prod", "1.2.2")
        bot.live("prod", "1.2.3")
        await ask(bot, "rollback prod")
        [approval] = approval_ids(bot)
        await press(bot, "approval_approve", approval, user=ONCALL1)
        state = bot.store.env_state("notify", "prod")
        assert state is not None and state.version == "1.2.2"
        assert bot.deploys(), "the rollback ran on a Saturday"


# --- break-glass -------------------------------------------------------------------------------------------


async def test_force_outside_the_window_waits_for_oncall_and_runs_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM)) as bot:
        ready_for_prod(bot)
        assert "waiting for approval" in await ask(bot, "prod --force outage on the send path")
        assert bot.deploys() == []
        [approval] = approval_ids(bot)
        [release] = [r for r in bot.store.history("notify", "prod", 5) if r.force_reason]
        assert release.state is ReleaseState.AWAITING_APPROVAL
        assert release.force_reason == "outage on the send path"
        assert "Break-glass: outside window — waiting for an on-call approver" in parent_text(bot, release.id)

        assert "two-person rule" in await press(bot, "approval_approve", approval, user=RELEASER)
        assert "not in oncall" in await press(bot, "approval_approve", approval, user=OUTSIDER)
        assert bot.deploys() == []

        await press(bot, "approval_approve", approval, user=ONCALL1)
        late = await press(bot, "approval_approve", approval, user=ONCALL2)  # a second on-call is too late
        assert "already approved" in late
        assert bot.deploys() == ["notify 1.2.3 prod 100"], "runs once"
        done = bot.store.get_release(release.id)
        assert done is not None and done.state is ReleaseState.SUCCEEDED and done.forced_by == ONCALL1

        parent = parent_text(bot, release.id)
        assert "outside window — approved by <@U01ONCALL1>" in parent
        assert "outage on the send path" in parent
        assert "overridden by <@U01ONCALL1>" in parent and "weekend (Saturday)" in parent

        audit = bot.store.sql.query("SELECT actor, action, detail FROM audit ORDER BY id")
        actions = [(r["actor"], r["action"]) for r in audit]
        assert (RELEASER, "release.requested") in actions
        assert (ONCALL1, "approval.approved") in actions
        [glass] = [r for r in audit if r["action"] == "release.break_glass"]
        detail = json.loads(glass["detail"])
        assert glass["actor"] == ONCALL1
        assert detail["reason"] == "outage on the send path" and detail["requested_by"] == RELEASER
        assert "window" in detail["overridden"]


async def test_force_is_not_needed_and_not_recorded_when_nothing_blocks(bot: BotHarness) -> None:
    ready_for_prod(bot)
    await ask(bot, "prod --force just in case")
    assert bot.deploys() == ["notify 1.2.3 prod 100"]
    [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
    assert release.forced_by is None and release.force_reason is None
    assert approval_ids(bot) == []


# --- the checklist -----------------------------------------------------------------------------------------


async def test_critical_cve_from_a_real_trivy_report_blocks_prod_and_a_clean_scan_passes(bot: BotHarness) -> None:
    ready_for_prod(bot)
    counts = (await post_scan(bot, "1.2.3", "trivy_critical.json"))["counts"]
    assert counts["CRITICAL"] == 1
    before = world(bot)
    answer = await ask(bot, "prod")
    assert "checklist is not satisfied" in answer
    assert "❌ vulnerability scan: 1 CRITICAL" in answer and "CVE-2024-45490" in answer
    assert "✅ unit tests passed" in answer
    assert world(bot) == before and bot.deploys() == []

    await post_scan(bot, "1.2.3", "trivy_clean.json")
    await ask(bot, "prod")
    assert bot.deploys() == ["notify 1.2.3 prod 100"]
    [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
    parent = parent_text(bot, release.id)
    assert "✅ vulnerability scan: 0 CRITICAL" in parent and "✅ unit tests passed" in parent


async def test_a_critical_leaked_key_blocks_prod_named_by_rule_and_file_and_its_text_goes_nowhere(
    bot: BotHarness,
) -> None:
    """`trivy image` scans for secrets by default; a CRITICAL AWS key used to pass as "0 CRITICAL"."""
    ready_for_prod(bot)
    answer_to_ci = await post_scan(bot, "1.2.3", "trivy_secrets.json")
    assert answer_to_ci["counts"]["CRITICAL"] == 0 and answer_to_ci["secrets"]["counts"]["CRITICAL"] == 2
    before = world(bot)

    answer = await ask(bot, "prod")

    assert "checklist is not satisfied" in answer
    assert (
        "❌ vulnerability scan: 2 CRITICAL — vulnerabilities 0; secrets 2 CRITICAL: secret aws-access-key-id in "
        "/app/config.env, secret aws-secret-access-key in /app/config.env; misconfigurations 0"
    ) in answer
    assert world(bot) == before and bot.deploys() == []
    said = json.dumps([call.args for call in bot.slack.calls], ensure_ascii=False)
    kept = json.dumps(
        bot.store.sql.query("SELECT summary AS text FROM candidate_scans UNION ALL SELECT detail FROM audit")
    )
    # Trivy's Match and Code: the masked key, and a password on a context line it did not match
    for text in ("****", "AWS_ACCESS_KEY_ID=", "n0tify-db-pa55", "BEGIN RSA"):
        assert text in (DATA / "trivy_secrets.json").read_text(encoding="utf-8")
        assert text not in said and text not in kept

    await post_scan(bot, "1.2.3", "trivy_clean.json")  # the image rebuilt without its .env
    await ask(bot, "prod")
    assert bot.deploys() == ["notify 1.2.3 prod 100"]
    [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
    assert "✅ vulnerability scan: 0 CRITICAL in vulnerabilities, secrets, misconfigurations" in parent_text(
        bot, release.id
    )


async def test_failed_tests_and_unpinned_images_are_listed_as_failed_items(bot: BotHarness) -> None:
    ready_for_prod(bot, unit="failed", pinned=False)
    before = world(bot)
    answer = await ask(bot, "prod")
    assert "❌ unit tests failed" in answer
    assert "❌ images:" in answer and "is not pinned by digest" in answer
    assert "✅ rollback plan: back to 1.2.2" in answer
    assert world(bot) == before and bot.deploys() == []


async def test_force_overrides_the_checklist_and_records_the_override_per_item(bot: BotHarness) -> None:
    ready_for_prod(bot, unit="failed")
    await post_scan(bot, "1.2.3", "trivy_critical.json")
    await ask(bot, "prod --force CVE not reachable, tests flaky")
    [approval] = approval_ids(bot)
    approval_post = bot.slack.calls_to("chat.postMessage")[-1]
    assert "CVE-2024-45490" in json.dumps(approval_post.args["blocks"]), "the approver sees what is overridden"
    await press(bot, "approval_approve", approval, user=ONCALL2)
    assert bot.deploys() == ["notify 1.2.3 prod 100"]
    [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
    parent = parent_text(bot, release.id)
    why = "(CVE not reachable, tests flaky)"
    assert f"⚠️ overridden by <@U01ONCALL2> {why}: unit tests failed" in parent
    assert f"⚠️ overridden by <@U01ONCALL2> {why}: vulnerability scan: 1 CRITICAL" in parent
    assert "✅ rollback plan" in parent
    assert "Break-glass — approved by <@U01ONCALL2>" in parent
    assert "outside window" not in parent, "the window was open: only checklist items were overridden"
    stored = {item["item"]: item for item in release.checklist}
    assert stored["unit"]["overridden_by"] == ONCALL2 and stored["vulnerability_scan"]["overridden_by"] == ONCALL2
    assert stored["rollback_plan"]["overridden_by"] is None


async def test_checklist_only_force_is_still_held_to_the_window_at_deploy_time(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_3_59PM)) as bot:
        ready_for_prod(bot, unit="failed")
        await ask(bot, "prod --force tests flaky")
        [approval] = approval_ids(bot)
        bot.clock.advance(minutes=5)  # approved at 16:04: the break-glass covered the checklist, not the window
        await press(bot, "approval_approve", approval, user=ONCALL1)
        [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
        assert release.state is ReleaseState.CANCELLED and "window closed" in (release.error or "")
        assert bot.deploys() == []


# --- the release manifest ----------------------------------------------------------------------------------


async def test_manifest_command_and_api_after_a_prod_release(bot: BotHarness) -> None:
    ready_for_prod(bot)
    await ask(bot, "prod")
    answer = await ask(bot, "manifest prod")
    assert "1.2.3" in answer and "123aaaaaaaaa" in answer
    assert f"ghcr.io/example/api:1.2.3@{DIGEST}" in answer and "<@U01RELEASE>" in answer

    assert f"ghcr.io/example/worker:1.2.3@{DIGEST}" in await ask(bot, "manifest 1.2.3")

    response = await bot.client.get(
        "/api/v1/manifest",
        params={"service": "notify", "env": "prod"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status == 200
    body = await response.json()
    assert body["version"] == "1.2.3" and body["env"] == "prod" and body["released_by"] == RELEASER
    assert body["commit"] == ("123" + "a" * 40)[:40]
    assert body["components"]["api"] == {"image": f"ghcr.io/example/api:1.2.3@{DIGEST}", "digest": DIGEST}
    unauthorised = await bot.client.get("/api/v1/manifest", params={"service": "notify", "env": "prod"})
    assert unauthorised.status == 401


def git(repo: Path, *args: str) -> str:
    assert GIT is not None
    done = subprocess.run([GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True)  # noqa: S603
    return done.stdout


@pytest.fixture
def manifest_repo(tmp_path: Path) -> Path:
    if GIT is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "manifests-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "init")
    return repo


async def test_prod_release_commits_the_manifest_file(tmp_path: Path, manifest_repo: Path) -> None:
    config = config_dict(tmp_path / "deploys.log")
    config["manifest"] = {"repo": str(manifest_repo), "file": "manifests/{service}.json"}
    async with running_bot(tmp_path, config=config) as bot:
        ready_for_prod(bot)
        await ask(bot, "staging 1.2.3")  # staging is not the last stage: no commit
        assert git(manifest_repo, "rev-list", "--count", "HEAD").strip() == "1"

        await ask(bot, "prod")
        assert bot.deploys()[-1] == "notify 1.2.3 prod 100"
        [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
        message = git(manifest_repo, "log", "-1", "--format=%B").strip()
        assert message == f"release notify 1.2.3 to prod (#{release.id})"
        document = json.loads(git(manifest_repo, "show", "HEAD:manifests/notify.json"))
        assert document["service"] == "notify" and document["env"] == "prod" and document["version"] == "1.2.3"
        assert document["release_id"] == release.id and document["released_by"] == RELEASER
        assert document["commit"] == ("123" + "a" * 40)[:40]
        assert document["components"]["worker"] == {
            "image": f"ghcr.io/example/worker:1.2.3@{DIGEST}",
            "digest": DIGEST,
        }
        assert document["released_at"] == (release.finished_at.isoformat() if release.finished_at else None)
        api = await bot.client.get(
            "/api/v1/manifest",
            params={"service": "notify", "env": "prod"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        served = await api.json()
        assert {k: document[k] for k in ("version", "commit", "components")} == {
            k: served[k] for k in ("version", "commit", "components")
        }
        thread = bot.slack.thread(CHANNEL, release.thread_ts or "")
        assert any("manifest committed" in m.text for m in thread)


async def test_failed_prod_release_commits_nothing(tmp_path: Path, manifest_repo: Path) -> None:
    log = tmp_path / "deploys.log"
    config = config_dict(log)
    config["manifest"] = {"repo": str(manifest_repo), "file": "manifests/{service}.json"}
    async with running_bot(tmp_path, config=config) as bot:
        ready_for_prod(bot)
        Path(f"{log}.fail").write_text("error: cluster unreachable\n")
        await ask(bot, "prod")
        [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
        assert release.state is ReleaseState.FAILED
        assert git(manifest_repo, "rev-list", "--count", "HEAD").strip() == "1"
        assert git(manifest_repo, "status", "--porcelain") == ""


async def test_manifest_history_follows_the_release_history(tmp_path: Path, manifest_repo: Path) -> None:
    config = config_dict(tmp_path / "deploys.log")
    config["manifest"] = {"repo": str(manifest_repo), "file": "manifests/{service}.json"}
    async with running_bot(tmp_path, config=config) as bot:
        ready_for_prod(bot)
        bot.add_candidate("1.2.4")
        bot.live("staging", "1.2.4")
        await ask(bot, "deploy 1.2.3 to prod")
        bot.clock.advance(minutes=10)
        await ask(bot, "deploy 1.2.4 to prod")
        log = git(manifest_repo, "log", "--format=%s", "--", "manifests/notify.json").splitlines()
        assert [line.split(" (#")[0] for line in log] == [
            "release notify 1.2.4 to prod",
            "release notify 1.2.3 to prod",
        ]
        first = json.loads(git(manifest_repo, "show", "HEAD~1:manifests/notify.json"))
        assert first["version"] == "1.2.3"

"""mrkdwn injection: what people and CI type must reach Slack inert.

Slack turns `<!channel>`, `<!here>`, `<@U…>`, `<#C…>` and `<url|label>` into pings, mentions and
disguised links only when the angle brackets arrive raw in mrkdwn (a message's `text`, or a block's
mrkdwn text object). Each test drives the real app with hostile input, then reads every mrkdwn string
Slack received — posts, updates, ephemerals, response_url answers, views, and the acks themselves —
and checks that none of the hostile sequences is live, and that the input did arrive (escaped).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.demo import make_repo
from tests.fakes.slack_signing import signed_headers, view_submission_body
from tests.harness import (
    API_TOKEN,
    DIGEST,
    ONCALL1,
    OUTSIDER,
    RELEASER,
    SECRET,
    BotHarness,
    MutableClock,
    config_dict,
    running_bot,
)

HOSTILE = "<!channel> <!here> <@U123> <#C123> <https://evil.example|click me>"
LIVE = ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<#C123>", "<https://evil.example")
SATURDAY_11AM = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
SLACK_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url")
VIEW_METHODS = ("views.open", "views.update", "views.publish")


def mrkdwn_strings(value: Any) -> Iterator[str]:
    """Every string Slack would parse as mrkdwn inside blocks (plain_text objects are shown literally)."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        elif value.get("type") != "plain_text":
            for item in value.values():
                yield from mrkdwn_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from mrkdwn_strings(item)


class Seen:
    """What Slack received: every call to the fake, plus the bodies of the acks we sent back."""

    def __init__(self, bot: BotHarness) -> None:
        self.bot = bot
        self.acks: list[dict[str, Any]] = []

    async def command(self, text: str, *, user: str = RELEASER) -> None:
        response = await self.bot.command(text, user=user)
        assert response.status == 200
        body = (await response.read()).strip()
        if body:
            self.acks.append(json.loads(body))
        await self.bot.settle()

    def texts(self) -> list[str]:
        out: list[str] = []
        messages = [call.args for method in SLACK_METHODS for call in self.bot.slack.calls_to(method)] + self.acks
        for args in messages:
            if args.get("mrkdwn") not in (False, "false"):  # a message's top-level text is mrkdwn too
                out.append(str(args.get("text") or ""))
            out += mrkdwn_strings(args.get("blocks") or [])
        for method in VIEW_METHODS:
            out += [s for call in self.bot.slack.calls_to(method) for s in mrkdwn_strings(call.args.get("view"))]
        return out

    def assert_inert(self, *, expect: str = "&lt;!channel&gt;") -> None:
        texts = self.texts()
        live = [(token, text[:300]) for text in texts for token in LIVE if token in text]
        assert not live, f"hostile input reached Slack live: {live[:3]}"
        assert any(expect in text for text in texts), f"the input never reached Slack ({expect!r} not shown)"


def ready_for_prod(bot: BotHarness) -> None:
    bot.add_candidate("1.2.2")
    bot.add_candidate("1.2.3")
    bot.live("prod", "1.2.2")
    bot.live("staging", "1.2.3")


def approval_id(bot: BotHarness) -> str:
    rows = bot.store.sql.query("SELECT id FROM approvals ORDER BY id DESC LIMIT 1")
    assert rows, "an approval request was opened"
    return str(rows[0]["id"])


async def test_a_lock_reason_is_inert_everywhere_it_is_shown(bot: BotHarness) -> None:
    seen = Seen(bot)
    ready_for_prod(bot)
    await seen.command(f"lock prod {HOSTILE}")
    assert bot.count("manual_locks") == 1
    await seen.command("status")
    await seen.command("prod", user=OUTSIDER)  # refused: locked by someone else, and the reason is quoted
    await seen.command(f"lock prod {HOSTILE}", user=ONCALL1)  # "already locked by …: <reason>"
    seen.assert_inert()


async def test_a_freeze_reason_is_inert_in_refusals_status_and_window(bot: BotHarness) -> None:
    seen = Seen(bot)
    ready_for_prod(bot)
    await seen.command(f"freeze prod until 2026-11-30 {HOSTILE}")
    assert bot.count("adhoc_freezes") == 1
    await seen.command("prod")
    await seen.command("window prod")
    await seen.command("status")
    seen.assert_inert()
    assert bot.deploys() == []


async def test_a_force_reason_is_inert_in_the_approval_request_and_the_release_story(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_11AM)) as bot:
        seen = Seen(bot)
        ready_for_prod(bot)
        await seen.command(f"prod 1.2.3 --force {HOSTILE}")
        response = await bot.click("approval_approve", approval_id(bot), user=ONCALL1)
        assert response.status == 200
        await bot.settle()
        assert bot.deploys() == ["notify 1.2.3 prod 100"]
        await seen.command("history prod")
        seen.assert_inert()


async def test_a_deny_reason_is_inert_in_the_thread_and_the_approval_message(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_11AM)) as bot:
        seen = Seen(bot)
        ready_for_prod(bot)
        await seen.command("prod 1.2.3 --force hotfix")
        body = view_submission_body(
            "approval_deny_reason",
            {"reason": {"reason": {"type": "plain_text_input", "value": HOSTILE}}},
            user_id=ONCALL1,
            private_metadata=approval_id(bot),
        )
        response = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
        assert response.status == 200
        await bot.slack.wait_for("chat.postEphemeral", predicate=lambda c: c.args.get("user") == ONCALL1)
        await bot.settle()
        assert "Denied" in bot.last_reply(ONCALL1)
        await seen.command("history prod")
        seen.assert_inert()
        assert bot.deploys() == []


async def test_hostile_trivy_findings_are_inert_in_the_checklist(bot: BotHarness) -> None:
    seen = Seen(bot)
    ready_for_prod(bot)
    report = {
        "SchemaVersion": 2,
        "ArtifactName": "ghcr.io/example/api:1.2.3 <!here>",
        "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [f"ghcr.io/example/api@{DIGEST}"]},  # the candidate's own image
        "Results": [
            {
                "Target": "debian 12 <!channel>",
                "Vulnerabilities": [
                    {
                        "VulnerabilityID": "CVE-2026-0001 <!channel>",
                        "PkgName": "<@U123>",
                        "InstalledVersion": "<#C123>",
                        "FixedVersion": "<https://evil.example|3.0.2>",
                        "Severity": "CRITICAL",
                        "Title": HOSTILE,
                        "PrimaryURL": "https://evil.example|click me",
                    }
                ],
            }
        ],
    }
    response = await bot.client.post(
        "/api/v1/candidates/notify/1.2.3/scan",
        data=json.dumps(report),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()
    await seen.command("prod")
    assert "checklist is not satisfied" in bot.last_reply()
    seen.assert_inert()


async def test_image_references_and_versions_cannot_carry_mrkdwn(bot: BotHarness) -> None:
    """The CI API refuses `<` in versions and image references before anything could render them."""
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    commit = "0123456789abcdef0123456789abcdef01234567"
    for version, image in [("1.2.3<!channel>", f"ghcr.io/x/api:1@{DIGEST}"), ("1.2.9", "ghcr.io/x/<!channel>:1")]:
        body = {
            "service": "notify",
            "version": version,
            "commit": commit,
            "components": {"api": image, "worker": image},
        }
        response = await bot.client.post("/api/v1/candidates", data=json.dumps(body), headers=headers)
        assert response.status == 422, await response.text()
    assert bot.count("candidates") == 0


@pytest.mark.parametrize("text", ["<!channel>", f"staging {HOSTILE}", f"history {HOSTILE}", "<https://evil.example|x>"])
async def test_a_malformed_command_echoes_its_words_inert(bot: BotHarness, text: str) -> None:
    seen = Seen(bot)
    await seen.command(text)
    seen.assert_inert(expect="&lt;")


# --- release notes from a real git repository with hostile commit subjects ---------------------------------

HOSTILE_COMMITS = [
    ("feat: add <!channel> ping to alerts", "Mallory <!here>", "mallory@example.com"),
    ("fix: escape <@U123> in <#C123> (#42)", "Eve", "eve@example.com"),
    ("docs: see <https://evil.example|the docs>", "<@U123>", "x@example.com"),
    ("fix: keep a & b < c > d &amp; e", "Trent", "trent@example.com"),
]


def hostile_repo(path: Path, start: datetime) -> list[str]:
    return make_repo(path, start, [("chore: start", "Alice", "alice@example.com"), *HOSTILE_COMMITS])


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
async def test_hostile_commit_subjects_and_authors_are_inert_in_release_notes(tmp_path: Path) -> None:
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    shas = hostile_repo(tmp_path / "repo", start)
    config = config_dict(tmp_path / "deploys.log")
    config["services"]["notify"]["repo"] = {"path": str(tmp_path / "repo")}
    async with running_bot(tmp_path, config=config) as bot:
        seen = Seen(bot)
        bot.add_candidate("1.2.2", commit=shas[0])
        bot.add_candidate("1.2.3", commit=shas[-1])
        bot.live("staging", "1.2.2")
        await seen.command("staging 1.2.3")
        assert bot.deploys() == ["notify 1.2.3 staging 100"]
        await seen.command("notes 1.2.3")
        await seen.command("notes 1.2.2..1.2.3")
        texts = seen.texts()
        assert any("add &lt;!channel&gt; ping to alerts" in t for t in texts), "the notes were shown"
        seen.assert_inert()
        # Escaped exactly once: Slack shows `a & b < c > d &amp; e` as typed.
        assert any("keep a &amp; b &lt; c &gt; d &amp;amp; e" in t for t in texts)

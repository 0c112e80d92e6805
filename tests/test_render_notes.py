"""Release notes as Block Kit: valid per slack_sdk, within limits, and hostile text stays inert."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.core.commits import Commit
from bot.core.notes import ReleaseNotes, build_release_notes
from bot.views.mrkdwn import escape, link
from bot.views.notes import notes_blocks

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
PR_BASE = "https://github.com/cds-snc/notification-api"
FULL = "https://bot.example.org/api/v1/notes?service=api&from=v1&to=v2"


def commits(subjects: list[str], *, author: tuple[str, str] = ("Ada Lovelace", "ada@example.com")) -> list[Commit]:
    out = []
    parent = "0" * 40
    for n, subject in enumerate(subjects):
        sha = hashlib.sha1(f"{n}:{subject}".encode()).hexdigest()
        when = T0 + timedelta(minutes=n)
        out.append(Commit(sha, subject, "", author[0], author[1], when, when, (parent,)))
        parent = sha
    return out


def validate(blocks: list[dict[str, Any]]) -> None:
    """What Slack checks: slack_sdk parses every block and each passes its own validation."""
    parsed = Block.parse_all(blocks)
    assert len(parsed) == len(blocks)
    for block in parsed:
        block.validate_json()


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for b in blocks:
        if b["type"] == "section":
            out.append(b["text"]["text"])
        else:
            out.extend(e["text"] for e in b["elements"])
    return out


def test_small_notes_render_every_section_with_links() -> None:
    notes = build_release_notes(
        commits(["feat(api): letters (#12)", "fix: double sends", "feat!: drop v1", "chore: deps"]),
        pr_url_base=PR_BASE,
    )
    blocks = notes_blocks(notes, full_notes_url=FULL)
    validate(blocks)

    body = "\n".join(texts(blocks))
    assert ":warning: *Breaking changes* (1)" in body
    assert f"• *api:* letters (<{PR_BASE}/pull/12|#12>) — Ada Lovelace" in body
    assert "*Fixes* (1)" in body and "*Other* (1)" in body
    assert blocks[-1]["type"] == "context" and "4 changes from 4 commits by 1 contributor" in texts(blocks)[-1]
    assert "more change" not in body  # everything fitted


def test_two_thousand_commits_stay_within_limits_with_an_overflow_line() -> None:
    kinds = ["feat", "fix", "perf", "chore", "docs", "fix(security)"]
    subjects = [
        f"{kinds[i % len(kinds)]}: change number {i} with a realistic length subject (#{i})" for i in range(2000)
    ]
    notes = build_release_notes(commits(subjects), pr_url_base=PR_BASE)
    blocks = notes_blocks(notes, full_notes_url=FULL)
    validate(blocks)

    assert len(blocks) <= 45
    assert all(len(t) <= 3000 for t in texts(blocks))
    bullets = sum(t.count("\n• ") + t.startswith("• ") for t in texts(blocks))
    overflow = texts(blocks)[-1]
    assert overflow == f"…and {2000 - bullets} more changes — full notes: <{FULL.replace('&', '&amp;')}|link>"
    assert bullets > 0


@pytest.mark.parametrize("max_blocks", [3, 10, 50])
def test_block_budget_is_respected(max_blocks: int) -> None:
    notes = build_release_notes(commits([f"fix: {'x' * 150} {i}" for i in range(2000)]))
    blocks = notes_blocks(notes, full_notes_url=None, max_blocks=max_blocks, max_chars=10**6, max_per_section=None)
    validate(blocks)
    # The budget is used to the full, never exceeded, and every section block is within 3000.
    assert len(blocks) == max_blocks
    assert all(len(t) <= 3000 for t in texts(blocks))
    assert re.fullmatch(r"…and \d+ more changes", texts(blocks)[-1])


def test_one_enormous_subject_is_clipped() -> None:
    notes = build_release_notes(commits(["fix: " + "A" * 10_000]))
    blocks = notes_blocks(notes, full_notes_url=FULL)
    validate(blocks)
    assert all(len(t) <= 3000 for t in texts(blocks))
    assert "…" in texts(blocks)[0]


def test_hostile_subjects_names_and_scopes_render_inert() -> None:
    hostile = [
        "fix: <!channel> deploy now",
        "feat: hello <@U123> and <!here|here>",
        "fix(<@U999>): <https://evil.example|click me>",
        "chore: <#C123> &lt;!everyone&gt; & friends",
        'Revert "<!subteam^S123>"',
    ]
    notes = build_release_notes(commits(hostile, author=("<!everyone> Mallory", "m@example.com")), pr_url_base=PR_BASE)
    blocks = notes_blocks(notes, full_notes_url=FULL)
    validate(blocks)

    body = "\n".join(texts(blocks))
    for live in (
        "<!channel>",
        "<!here",
        "<@U123>",
        "<@U999>",
        "<https://evil",
        "<#C123>",
        "<!everyone>",
        "<!subteam",
    ):
        assert live not in body
    # Any `<…>` left is one of our own links.
    for token in re.findall(r"<[^>]*>", body):
        assert token.startswith((f"<{PR_BASE}/pull/", "<https://bot.example.org/")), token
    assert "&lt;!channel&gt; deploy now" in body
    assert "&amp;lt;!everyone&amp;gt; &amp; friends" in body
    # The JSON sent to Slack holds the escaped text too.
    assert "<!channel>" not in json.dumps(blocks)


def test_overflow_link_is_dropped_when_the_url_would_break_out() -> None:
    notes = build_release_notes(commits([f"fix: {i}" for i in range(500)]))
    blocks = notes_blocks(notes, full_notes_url="https://x.example/notes|<!channel>", max_blocks=3)
    assert "<" not in texts(blocks)[-1]
    assert link("javascript:alert(1)", "x") == "x"
    assert escape("a & <b>") == "a &amp; &lt;b&gt;"


def test_empty_and_truncated_notes() -> None:
    blocks = notes_blocks(build_release_notes([]), full_notes_url=FULL)
    validate(blocks)
    assert texts(blocks)[0] == "No changes in this range."

    truncated = ReleaseNotes.from_dict({**build_release_notes(commits(["fix: a"])).to_dict(), "truncated": True})
    assert "only the newest 1 commits were read" in texts(notes_blocks(truncated, full_notes_url=None))[-1]
    with pytest.raises(ValueError, match="max_blocks"):
        notes_blocks(truncated, full_notes_url=None, max_blocks=2)


def test_a_busy_section_does_not_hide_the_others() -> None:
    subjects = [f"feat: feature {i}" for i in range(300)] + ["fix(security): escape input", "fix: typo"]
    notes = build_release_notes(commits(subjects))
    blocks = notes_blocks(notes, full_notes_url=FULL, max_per_section=10)
    validate(blocks)

    body = "\n".join(texts(blocks))
    assert "*Features* (300)" in body and body.count("feature ") == 10
    assert ":lock: *Security* (1)\n• *security:* escape input" in body and "• typo" in body
    assert texts(blocks)[-1].startswith("…and 290 more changes")

"""Release notes from constructed histories: grouping, merges, revert pairs, contributors, Markdown."""

from __future__ import annotations

import ast
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.commits import Commit, CommitList
from bot.core.notes import ReleaseNotes, build_release_notes

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
PR_BASE = "https://github.com/cds-snc/notification-api"


class History:
    """Builds a commit list oldest first; each commit's parent defaults to the previous one."""

    def __init__(self) -> None:
        self.commits: list[Commit] = []

    def add(
        self,
        subject: str,
        body: str = "",
        *,
        author: tuple[str, str] = ("Ada Lovelace", "ada@example.com"),
        parents: tuple[str, ...] | None = None,
    ) -> str:
        n = len(self.commits)
        sha = hashlib.sha1(f"{n}:{subject}".encode()).hexdigest()
        if parents is None:
            parents = (self.commits[-1].sha,) if self.commits else ("0" * 40,)
        when = T0 + timedelta(minutes=n)
        self.commits.append(Commit(sha, subject, body, author[0], author[1], when, when, parents))
        return sha

    def notes(self, **kwargs: object) -> ReleaseNotes:
        return build_release_notes(self.commits, **kwargs)  # type: ignore[arg-type]


def titles(notes: ReleaseNotes, key: str) -> list[str]:
    section = notes.section(key)
    return [e.description for e in section.entries] if section else []


def test_types_map_to_sections_in_order() -> None:
    h = History()
    for subject in [
        "chore: bump deps",
        "feat: add letters",
        "fix: stop double sends",
        "perf: cache templates",
        "security: rotate signing keys",
        "fix(sec): escape input",
        "docs: explain retries",
        "Tidy up",
        "ci: faster pipeline",
        "feat(api)!: drop v1",
    ]:
        h.add(subject)
    notes = h.notes()

    assert [s.title for s in notes.sections] == [
        "Breaking changes",
        "Features",
        "Fixes",
        "Performance",
        "Security",
        "Other",
    ]
    assert titles(notes, "breaking") == ["drop v1"]
    assert titles(notes, "features") == ["add letters", "drop v1"]
    assert titles(notes, "fixes") == ["stop double sends"]
    assert titles(notes, "performance") == ["cache templates"]
    assert titles(notes, "security") == ["rotate signing keys", "escape input"]
    assert titles(notes, "other") == ["bump deps", "explain retries", "Tidy up", "faster pipeline"]
    assert notes.change_count == 10
    assert notes.counts["breaking"] == 1 and notes.counts["other"] == 4 and notes.counts["changes"] == 10


def test_empty_sections_are_left_out() -> None:
    h = History()
    h.add("fix: one")
    assert [s.key for s in h.notes().sections] == ["fixes"]
    assert build_release_notes([]).sections == ()
    assert "No changes in this range." in build_release_notes([]).to_markdown("v1")


def test_revert_pair_in_range_cancels_out() -> None:
    h = History()
    sms = h.add("feat: send SMS in bulk")
    h.add("fix: unrelated")
    h.add('Revert "feat: send SMS in bulk"', f"This reverts commit {sms}.")
    notes = h.notes()
    assert titles(notes, "features") == []
    assert titles(notes, "fixes") == ["unrelated"]
    assert titles(notes, "other") == []
    assert notes.reverted_count == 2


def test_revert_of_a_revert_brings_the_original_back() -> None:
    h = History()
    sms = h.add("feat: send SMS in bulk")
    undo = h.add('Revert "feat: send SMS in bulk"', f"This reverts commit {sms}.")
    h.add('Revert "Revert "feat: send SMS in bulk""', f"This reverts commit {undo[:10]}.")
    notes = h.notes()
    assert titles(notes, "features") == ["send SMS in bulk"]
    assert notes.reverted_count == 2


def test_revert_of_something_outside_the_range_is_listed_under_other() -> None:
    h = History()
    h.add('Revert "feat: old thing"', f"This reverts commit {'f' * 40}.")
    notes = h.notes()
    assert titles(notes, "other") == ['Revert "feat: old thing"']
    assert notes.reverted_count == 0


def test_github_revert_button_is_matched_by_subject() -> None:
    h = History()
    h.add("feat: send SMS (#12)")
    h.add('Revert "feat: send SMS (#12)" (#13)', "Reverts cds-snc/notification-api#12")
    notes = h.notes()
    assert notes.sections == () and notes.reverted_count == 2


def test_breaking_reverts_are_listed_under_breaking_changes() -> None:
    h = History()
    h.add("revert!: feat(api): drop v1 endpoints")
    h.add('Revert "feat: v2 auth"', f"This reverts commit {'e' * 40}.\n\nBREAKING CHANGE: v1 tokens are refused again")
    h.add('Revert "feat(api)!: remove SOAP"', f"This reverts commit {'d' * 40}.")
    h.add("revert: fix: retry storms")
    h.add("feat: letters")
    notes = h.notes()

    assert [s.key for s in notes.sections] == ["breaking", "features", "other"]
    assert titles(notes, "breaking") == ["revert!: feat(api): drop v1 endpoints", 'Revert "feat: v2 auth"']
    # Grouping is otherwise unchanged: every revert listed stays under Other, a breaking one too.
    assert titles(notes, "other") == [
        "revert!: feat(api): drop v1 endpoints",
        'Revert "feat: v2 auth"',
        'Revert "feat(api)!: remove SOAP"',
        "revert: fix: retry storms",
    ]
    assert titles(notes, "features") == ["letters"]
    assert notes.change_count == 5 and notes.counts["breaking"] == 2
    breaking_part = notes.to_markdown("v4").split("## Breaking changes")[1].split("##")[0]
    assert "- revert!: feat(api): drop v1 endpoints (`" in breaking_part
    assert 'Revert "feat: v2 auth" — v1 tokens are refused again' in breaking_part
    assert "remove SOAP" not in breaking_part


def test_a_breaking_revert_of_a_change_in_range_still_cancels_out() -> None:
    h = History()
    h.add("feat(api): add v1 endpoints")
    h.add("revert!: feat(api): add v1 endpoints")
    h.add("fix: unrelated")
    notes = h.notes()
    assert [s.key for s in notes.sections] == ["fixes"] and notes.reverted_count == 2


def test_merge_commits_are_skipped_and_lend_their_pr_number() -> None:
    h = History()
    base = h.add("chore: start")
    main_fix = h.add("fix: on main")
    branch_a = h.add("feat: branch work", parents=(base,))
    branch_b = h.add("feat: more branch work (#99)", parents=(branch_a,))
    h.add("Merge pull request #15 from cds-snc/feature-x", parents=(main_fix, branch_b))
    h.add("Merge branch 'main' of github.com:cds-snc/notification-api")
    notes = h.notes(pr_url_base=PR_BASE)

    features = notes.section("features")
    assert features is not None
    assert [(e.description, e.pr_numbers) for e in features.entries] == [
        ("branch work", (15,)),
        ("more branch work", (99, 15)),
    ]
    fixes = notes.section("fixes")
    assert fixes is not None and fixes.entries[0].pr_numbers == ()
    assert notes.merge_count == 2
    assert "Merge" not in notes.to_markdown("x")


def test_reverting_a_merge_drops_what_it_brought_in() -> None:
    h = History()
    base = h.add("chore: start")
    branch = h.add("feat: risky", parents=(base,))
    merge = h.add("Merge pull request #15 from cds-snc/risky", parents=(base, branch))
    h.add(
        'Revert "Merge pull request #15 from cds-snc/risky"',
        f"This reverts commit {merge}, reversing changes.",
    )
    notes = h.notes()
    assert titles(notes, "features") == [] and titles(notes, "other") == ["start"]


def test_authors_and_co_authors_are_credited_and_counted_once() -> None:
    h = History()
    h.add("feat: a", "Co-authored-by: Grace Hopper <GRACE@example.com>")
    h.add("fix: b", author=("Grace Hopper", "grace@example.com"))
    h.add("fix: c", "Co-authored-by: Ada L <ADA@EXAMPLE.COM>", author=("Linus", "linus@example.com"))
    notes = h.notes()

    features = notes.section("features")
    assert features is not None
    assert [p.name for p in features.entries[0].authors] == ["Ada Lovelace", "Grace Hopper"]
    assert [p.name for p in notes.contributors] == ["Ada Lovelace", "Grace Hopper", "Linus"]
    assert notes.counts["contributors"] == 3
    assert "3 changes from 3 commits by 3 contributors" in notes.to_markdown("v2")


def test_pr_links_only_with_a_known_repository() -> None:
    h = History()
    h.add("feat: x (#12)")
    assert f"[#12]({PR_BASE}/pull/12)" in h.notes(pr_url_base=PR_BASE).to_markdown("v")
    plain = h.notes().to_markdown("v")
    assert "#12" in plain and "](" not in plain


def test_breaking_footer_text_is_shown_under_breaking_changes() -> None:
    h = History()
    h.add("refactor: rename config", "BREAKING CHANGE: NOTIFY_URL is now API_URL")
    markdown = h.notes().to_markdown("v3")
    breaking_part = markdown.split("## Breaking changes")[1].split("##")[0]
    assert "rename config — NOTIFY\\_URL is now API\\_URL" in breaking_part


def test_markdown_escapes_hostile_subjects() -> None:
    h = History()
    h.add("fix: <script>alert(1)</script> [click](https://evil.example) `x`")
    markdown = h.notes().to_markdown("<b>v1</b>")
    assert "<script>" not in markdown and "<b>" not in markdown
    assert "[click](https" not in markdown
    assert "\\[click\\](https://evil.example)" in markdown


def test_round_trips_through_json() -> None:
    h = History()
    h.add("feat(api)!: drop v1 (#3)", "BREAKING CHANGE: clients must move\n\nCo-authored-by: G <g@example.com>")
    h.add("fix: y")
    notes = build_release_notes(CommitList(h.commits, truncated=True), pr_url_base=PR_BASE)
    restored = ReleaseNotes.from_dict(json.loads(json.dumps(notes.to_dict())))
    assert restored == notes
    assert restored.truncated and "only the newest 2 commits were read" in restored.summary()
    with pytest.raises(ValueError, match="malformed release notes"):
        ReleaseNotes.from_dict({"sections": [{"key": "features"}]})


_SUBJECTS = st.sampled_from(
    ["feat: a", "fix: b", "perf: c", "chore: d", "feat!: e", "docs(x): f", "Whatever", "fix(security): g"]
)


@given(st.lists(st.tuples(_SUBJECTS, st.integers(min_value=-1, max_value=30)), max_size=30))
def test_every_commit_is_listed_once_merged_or_reverted(plan: list[tuple[str, int]]) -> None:
    """Invariant: changes + reverted + merges == commits, for any mix of commits and reverts."""
    h = History()
    for subject, target in plan:
        if 0 <= target < len(h.commits):
            original = h.commits[target]
            h.add(f'Revert "{original.subject}"', f"This reverts commit {original.sha}.")
        else:
            h.add(subject)
    notes = h.notes()
    assert notes.change_count + notes.reverted_count + notes.merge_count == len(h.commits)
    listed = [e.sha for s in notes.sections if s.key != "breaking" for e in s.entries]
    assert len(listed) == len(set(listed)) == notes.change_count


def test_core_modules_do_no_io() -> None:
    forbidden = {"slack_bolt", "slack_sdk", "aiohttp", "sqlite3", "sqlite_utils", "apscheduler", "subprocess"}
    forbidden |= {"requests", "httpx", "asyncio", "os", "socket"}
    bot = Path(__file__).resolve().parents[1] / "bot"
    # The escaper moved to the views (bot/views/mrkdwn.py), which are held to the same rule.
    for name in ("core/commits.py", "core/notes.py", "views/mrkdwn.py"):
        tree = ast.parse((bot / name).read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not imported & forbidden, (name, imported & forbidden)

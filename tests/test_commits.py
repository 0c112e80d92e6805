"""Conventional Commits parsing: headers, footers, PR numbers, co-authors, reverts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.commits import Commit, Person, parse_commit, split_message

WHEN = datetime(2024, 1, 2, 3, 4, tzinfo=UTC)


def mk(subject: str, body: str = "", *, pr_numbers: tuple[int, ...] = ()) -> Commit:
    return Commit(
        sha="a" * 40,
        subject=subject,
        body=body,
        author_name="Ada",
        author_email="ada@example.com",
        authored_at=WHEN,
        committed_at=WHEN,
        parents=("b" * 40,),
        pr_numbers=pr_numbers,
    )


@pytest.mark.parametrize(
    ("subject", "ctype", "scope", "breaking", "description"),
    [
        ("feat: add SMS", "feat", None, False, "add SMS"),
        ("feat(api): add letters", "feat", "api", False, "add letters"),
        ("feat(api)!: drop v1", "feat", "api", True, "drop v1"),
        ("fix!: stop double sends", "fix", None, True, "stop double sends"),
        ("Fix(Templates): capitalised type", "fix", "Templates", False, "capitalised type"),
        ("perf:no space after colon", "perf", None, False, "no space after colon"),
        ("fix: handle empty body (#12)", "fix", None, False, "handle empty body"),
        ("fix: squashed twice (#12) (#14)", "fix", None, False, "squashed twice"),
        ("api!: unknown type made breaking", "api", None, True, "unknown type made breaking"),
        ("Update: README", None, None, False, "Update: README"),
        ("Update README", None, None, False, "Update README"),
        ("WIP", None, None, False, "WIP"),
        ("feat(): empty scope", "feat", None, False, "empty scope"),
        ("feat: (#12)", "feat", None, False, "(#12)"),
        ("revert!: feat(api): drop v1 endpoints", "revert", None, True, "feat(api): drop v1 endpoints"),
        ("revert: feat!: drop v1", "revert", None, False, "feat!: drop v1"),
        ('Revert "feat!: drop v1"', None, None, False, 'Revert "feat!: drop v1"'),
    ],
)
def test_header(subject: str, ctype: str | None, scope: str | None, breaking: bool, description: str) -> None:
    parsed = parse_commit(mk(subject))
    assert (parsed.type, parsed.scope, parsed.breaking, parsed.description) == (
        ctype,
        scope,
        breaking,
        description,
    )
    assert parsed.is_conventional is (ctype is not None)


@pytest.mark.parametrize(
    ("body", "note"),
    [
        ("BREAKING CHANGE: config renamed", "config renamed"),
        ("BREAKING-CHANGE: hyphen form", "hyphen form"),
        ("Intro.\n\nBREAKING CHANGE: spans\n  two lines\n\nAfter.", "spans two lines"),
        ("BREAKING CHANGE: stops at a trailer\nReviewed-by: Bob", "stops at a trailer"),
        ("BREAKING CHANGE:\nwritten on the next line", "written on the next line"),
    ],
)
def test_breaking_change_footer(body: str, note: str) -> None:
    parsed = parse_commit(mk("refactor: rename", body))
    assert parsed.breaking and parsed.breaking_note == note


def test_bare_breaking_footer_marks_the_commit_without_a_note() -> None:
    parsed = parse_commit(mk("chore: x", "BREAKING CHANGE:"))
    assert parsed.breaking and parsed.breaking_note is None


def test_breaking_words_in_prose_are_not_a_footer() -> None:
    parsed = parse_commit(mk("docs: explain", "We avoid a BREAKING CHANGE: here by aliasing."))
    assert not parsed.breaking


def test_co_authors_and_pr_numbers() -> None:
    body = (
        "Pairing session.\n\n"
        "Co-authored-by: Grace Hopper <grace@example.com>\n"
        "co-authored-by: Linus <LINUS@Example.com>\n"
        "Co-authored-by: no address here\n"
    )
    parsed = parse_commit(mk("feat: pair (#7)", body, pr_numbers=(7, 9)))
    assert parsed.co_authors == (
        Person("Grace Hopper", "grace@example.com"),
        Person("Linus", "LINUS@Example.com"),
    )
    assert parsed.co_authors[1].key == "linus@example.com"
    assert parsed.pr_numbers == (7, 9)


def test_merge_subject_gives_the_pr_number() -> None:
    assert parse_commit(mk("Merge pull request #15 from cds-snc/feature-x")).merge_pr == 15
    assert parse_commit(mk("Merge branch 'main' into feature-x")).merge_pr is None


def test_revert_by_git_revert() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    parsed = parse_commit(mk('Revert "feat: send SMS"', f"This reverts commit {sha}.\n"))
    assert parsed.is_revert and parsed.revert_of_sha == sha and parsed.revert_of_subject == "feat: send SMS"


def test_revert_by_github_button_and_by_type() -> None:
    github = parse_commit(mk('Revert "feat: send SMS (#12)" (#13)', "Reverts cds-snc/notification-api#12"))
    assert github.revert_of_sha is None and github.revert_of_subject == "feat: send SMS (#12)"
    assert github.pr_numbers == (12, 13)
    typed = parse_commit(mk("revert: feat: send SMS"))
    assert typed.type == "revert" and typed.revert_of_subject == "feat: send SMS"
    assert not parse_commit(mk("feat: revert-proof retries")).is_revert


def test_a_revert_is_breaking_by_its_own_marker_only() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    footer = parse_commit(
        mk('Revert "feat: v2 auth"', f"This reverts commit {sha}.\n\nBREAKING-CHANGE: v1 tokens are refused again")
    )
    assert footer.is_revert and footer.breaking and footer.breaking_note == "v1 tokens are refused again"
    bang = parse_commit(mk("revert(api)!: feat(api): add v1 endpoints"))
    assert bang.is_revert and bang.breaking and bang.scope == "api"
    assert bang.revert_of_subject == "feat(api): add v1 endpoints"
    undoing = parse_commit(mk('Revert "feat(api)!: drop v1"', f"This reverts commit {sha}."))
    assert undoing.is_revert and not undoing.breaking


def test_split_message_matches_git_subject_and_body() -> None:
    assert split_message("feat: a\nwrapped subject\n\nBody line 1\n\nBody 2\n") == (
        "feat: a wrapped subject",
        "Body line 1\n\nBody 2",
    )
    assert split_message("one line") == ("one line", "")
    assert split_message("crlf\r\n\r\nbody\r\n") == ("crlf", "body")

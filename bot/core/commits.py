"""Commits as plain data, and Conventional Commits parsing.

Pure: no I/O. Sources (local git, GitHub) build `Commit` values; the notes builder reads them
through `parse_commit`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "KNOWN_TYPES",
    "Commit",
    "CommitList",
    "ParsedCommit",
    "Person",
    "parse_commit",
    "split_message",
]

# Types we recognise as Conventional Commits. A header with another word before the colon
# ("Update: readme", "Note: …") is treated as an ordinary subject, not a type.
KNOWN_TYPES = frozenset(
    {
        "feat",
        "feature",
        "fix",
        "bugfix",
        "perf",
        "security",
        "sec",
        "docs",
        "doc",
        "chore",
        "refactor",
        "test",
        "tests",
        "ci",
        "build",
        "style",
        "revert",
        "deps",
    }
)

_HEADER = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9_-]*)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?:\s*(?P<desc>\S.*)$")
_TRAILING_PRS = re.compile(r"(?:\s*\(#\d+\))+\s*$")
_PR_REF = re.compile(r"\(#(\d+)\)")
_MERGE_PR = re.compile(r"^Merge pull request #(\d+) from ")
_SYNC_MERGE = re.compile(r"^Merge (?:branch|remote-tracking branch|branches) '")
_REVERT_SUBJECT = re.compile(r'^Revert "(?P<original>.*)"')
_REVERTS_SHA = re.compile(r"This reverts commit ([0-9a-fA-F]{7,64})")
_CO_AUTHOR = re.compile(r"^co-authored-by:\s*(?P<name>[^<>\r\n]*?)\s*<(?P<email>[^<>\r\n]+)>\s*$", re.I | re.M)
_BREAKING = re.compile(r"^BREAKING[ -]CHANGE:\s*(?P<text>.*)$")
# A git-trailer-like line ("Token: value" or "Token #value") ends a multi-line BREAKING CHANGE footer.
_FOOTER_TOKEN = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*(?::\s| #)|BREAKING[ -]CHANGE:)")


@dataclass(frozen=True, slots=True)
class Person:
    """Someone credited for a change; identity is the e-mail address, case-insensitively."""

    name: str
    email: str

    @property
    def key(self) -> str:
        """The identity used to count unique contributors."""
        return self.email.strip().lower()


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit as read from a source.

    `subject` is the first paragraph of the message, `body` the rest. `pr_numbers` holds pull
    requests a source learnt about out of band (GitHub's associated PRs); numbers written in the
    subject are found by `parse_commit`.
    """

    sha: str
    subject: str
    body: str
    author_name: str
    author_email: str
    authored_at: datetime
    committed_at: datetime
    parents: tuple[str, ...] = ()
    author_login: str | None = None
    pr_numbers: tuple[int, ...] = ()

    @property
    def is_merge(self) -> bool:
        """True for a commit with more than one parent."""
        return len(self.parents) > 1

    @property
    def short_sha(self) -> str:
        """The first 7 characters of the sha, as git shows it."""
        return self.sha[:7]


class CommitList(list[Commit]):
    """A list of commits, oldest first, that also tells whether the source stopped at its cap."""

    def __init__(self, commits: list[Commit] | tuple[Commit, ...] = (), *, truncated: bool = False) -> None:
        super().__init__(commits)
        self.truncated = truncated


@dataclass(frozen=True, slots=True)
class ParsedCommit:
    """What a commit message says, read the Conventional Commits way.

    `type` is lower-case and None for a non-conventional subject; `description` is what to show
    (the text after `type(scope):`, or the whole subject), without trailing `(#123)` references.
    `sync_merge` marks a "Merge branch '…'" subject, noise even when history was flattened.
    """

    type: str | None
    scope: str | None
    description: str
    breaking: bool
    breaking_note: str | None
    pr_numbers: tuple[int, ...]
    co_authors: tuple[Person, ...]
    merge_pr: int | None
    sync_merge: bool
    revert_of_sha: str | None
    revert_of_subject: str | None

    @property
    def is_conventional(self) -> bool:
        """True when the subject had a recognised `type:` header (or a `!`)."""
        return self.type is not None

    @property
    def is_revert(self) -> bool:
        """True for `Revert "…"` subjects, `revert:` types and `This reverts commit …` bodies."""
        return self.revert_of_sha is not None or self.revert_of_subject is not None or self.type == "revert"


def split_message(message: str) -> tuple[str, str]:
    """Split a raw commit message into (subject, body) the way git's `%s`/`%b` do."""
    text = message.replace("\r\n", "\n").strip("\n")
    head, sep, rest = text.partition("\n\n")
    subject = " ".join(line.strip() for line in head.split("\n") if line.strip())
    return subject, rest.strip("\n") if sep else ""


def _breaking_note(body: str) -> str | None:
    """The text of a `BREAKING CHANGE:` footer, continuation lines included; None when absent."""
    lines = body.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        match = _BREAKING.match(line)
        if not match:
            continue
        parts = [match["text"].strip()]
        for more in lines[i + 1 :]:
            if not more.strip() or _FOOTER_TOKEN.match(more):
                break
            parts.append(more.strip())
        return " ".join(p for p in parts if p)
    return None


def parse_commit(commit: Commit) -> ParsedCommit:
    """Read type, scope, `!`, `BREAKING CHANGE:` footer, PR numbers, co-authors and revert target."""
    subject = commit.subject.strip()
    body = commit.body
    ctype: str | None = None
    scope: str | None = None
    bang = False
    description = subject

    header = _HEADER.match(subject)
    if header and (header["type"].lower() in KNOWN_TYPES or header["bang"]):
        ctype = header["type"].lower()
        scope = (header["scope"] or "").strip() or None
        bang = bool(header["bang"])
        description = header["desc"].strip()

    note = _breaking_note(body)
    if note == "":
        # A bare "BREAKING CHANGE:" line still marks the commit; there's just nothing to quote.
        note = None
        bang = True

    merge = _MERGE_PR.match(subject)
    merge_pr = int(merge[1]) if merge else None
    prs = tuple(dict.fromkeys([*(int(n) for n in _PR_REF.findall(subject)), *commit.pr_numbers]))

    revert_sha_match = _REVERTS_SHA.search(body)
    revert_subject_match = _REVERT_SUBJECT.match(subject)
    revert_of_subject: str | None = None
    if revert_subject_match:
        revert_of_subject = revert_subject_match["original"]
    elif ctype == "revert":
        revert_of_subject = description

    co_authors = tuple(
        Person(m["name"].strip() or m["email"].strip(), m["email"].strip()) for m in _CO_AUTHOR.finditer(body)
    )
    stripped = _TRAILING_PRS.sub("", description).strip()
    return ParsedCommit(
        type=ctype,
        scope=scope,
        description=stripped or description,
        breaking=bang or note is not None,
        breaking_note=note,
        pr_numbers=prs,
        co_authors=co_authors,
        merge_pr=merge_pr,
        sync_merge=bool(_SYNC_MERGE.match(subject)),
        revert_of_sha=revert_sha_match[1].lower() if revert_sha_match else None,
        revert_of_subject=revert_of_subject,
    )

"""Release notes from a range of commits: grouping, merges, revert pairs, contributors.

Pure: no I/O. Input commits are expected oldest first (both sources return them so); entries keep
that order inside each section.

Rules:
- Sections, in order: Breaking changes, Features, Fixes, Performance, Security, Other.
- `feat`→Features, `fix`→Fixes, `perf`→Performance, `security`/`sec` types and `fix(security)` /
  `fix(sec)`→Security; every other type and non-conventional subjects→Other. A `!` or a
  `BREAKING CHANGE:`/`BREAKING-CHANGE:` footer also lists the change under Breaking changes, a
  revert's own included (`revert!: …`, or a revert with the footer). A revert that merely quotes a
  breaking subject (`Revert "feat!: …"`) is not itself breaking: the marker belongs to what it undoes.
- Merge commits are not listed (their content arrives as the merged commits), but a
  "Merge pull request #N" gives its PR number to the commits it brought in. A single-parent
  "Merge branch '…'" commit (a flattened sync merge) is skipped too; it carries no change.
- A revert whose target is in the range cancels out with it (neither is listed; a revert of that
  revert brings the original back); a revert of something outside the range is listed under Other.
- Contributors are the authors and `Co-authored-by:` people of listed entries, unique by e-mail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.commits import Commit, CommitList, ParsedCommit, Person, parse_commit

__all__ = ["SECTION_TITLES", "NoteEntry", "NoteSection", "ReleaseNotes", "build_release_notes", "notes_title"]

SECTION_TITLES: dict[str, str] = {
    "breaking": "Breaking changes",
    "features": "Features",
    "fixes": "Fixes",
    "performance": "Performance",
    "security": "Security",
    "other": "Other",
}
_SECURITY_SCOPES = frozenset({"security", "sec"})
_MD_SPECIAL = frozenset("\\`*_[]<>&|~")


@dataclass(frozen=True, slots=True)
class NoteEntry:
    """One listed change; `authors` starts with the commit author, then co-authors."""

    sha: str
    type: str | None
    scope: str | None
    description: str
    breaking: bool
    breaking_note: str | None
    pr_numbers: tuple[int, ...]
    authors: tuple[Person, ...]

    @property
    def short_sha(self) -> str:
        """The first 7 characters of the sha."""
        return self.sha[:7]


@dataclass(frozen=True, slots=True)
class NoteSection:
    """A titled group of entries (`key` is one of SECTION_TITLES)."""

    key: str
    title: str
    entries: tuple[NoteEntry, ...]


def _md(text: str) -> str:
    """Backslash-escape Markdown/HTML punctuation so a subject can't inject links or markup."""
    return "".join(f"\\{ch}" if ch in _MD_SPECIAL else ch for ch in text)


@dataclass(frozen=True, slots=True)
class ReleaseNotes:
    """The result: non-empty sections in canonical order, contributors, and counts."""

    sections: tuple[NoteSection, ...]
    contributors: tuple[Person, ...]
    commit_count: int
    merge_count: int
    reverted_count: int
    truncated: bool = False
    pr_url_base: str | None = None

    def pr_url(self, number: int) -> str | None:
        """The pull request's web address when the repository is known, else None."""
        return f"{self.pr_url_base.rstrip('/')}/pull/{number}" if self.pr_url_base else None

    def section(self, key: str) -> NoteSection | None:
        """The section with this key, or None when it has no entries."""
        return next((s for s in self.sections if s.key == key), None)

    @property
    def change_count(self) -> int:
        """Distinct listed changes (a breaking feature counts once)."""
        return len({e.sha for s in self.sections for e in s.entries})

    @property
    def counts(self) -> dict[str, int]:
        """Entries per section key plus commits, changes, contributors, merges and reverted commits."""
        out = {key: 0 for key in SECTION_TITLES}
        out.update({s.key: len(s.entries) for s in self.sections})
        out.update(
            commits=self.commit_count,
            changes=self.change_count,
            contributors=len(self.contributors),
            merges=self.merge_count,
            reverted=self.reverted_count,
        )
        return out

    def summary(self) -> str:
        """One line: changes, commits, contributors, and whether the range was cut short."""
        text = (
            f"{self.change_count} change{'s' * (self.change_count != 1)} from {self.commit_count} "
            f"commit{'s' * (self.commit_count != 1)} by {len(self.contributors)} "
            f"contributor{'s' * (len(self.contributors) != 1)}"
        )
        if self.truncated:
            text += f" (only the newest {self.commit_count} commits were read)"
        return text

    def _pr_refs_md(self, entry: NoteEntry) -> str:
        refs = []
        for number in entry.pr_numbers:
            url = self.pr_url(number)
            refs.append(f"[#{number}]({url})" if url else f"#{number}")
        return ", ".join([*refs, f"`{entry.short_sha}`"])

    def to_markdown(self, title: str) -> str:
        """The full notes as Markdown (what `GET /api/v1/notes` serves); user text is escaped."""
        lines = [f"# {_md(title)}", "", _md(self.summary())]
        if not self.sections:
            lines += ["", "No changes in this range."]
        for section in self.sections:
            lines += ["", f"## {section.title}", ""]
            for e in section.entries:
                scope = f"**{_md(e.scope)}:** " if e.scope else ""
                note = f" — {_md(e.breaking_note)}" if section.key == "breaking" and e.breaking_note else ""
                who = ", ".join(_md(p.name) for p in e.authors)
                lines.append(f"- {scope}{_md(e.description)}{note} ({self._pr_refs_md(e)}) — {who}")
        if self.contributors:
            lines += ["", f"## Contributors ({len(self.contributors)})", ""]
            lines += [f"- {_md(p.name)}" for p in self.contributors]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; `from_dict` reads it back."""
        return {
            "version": 1,
            "sections": [
                {"key": s.key, "title": s.title, "entries": [_entry_to_dict(e) for e in s.entries]}
                for s in self.sections
            ],
            "contributors": [{"name": p.name, "email": p.email} for p in self.contributors],
            "commit_count": self.commit_count,
            "merge_count": self.merge_count,
            "reverted_count": self.reverted_count,
            "truncated": self.truncated,
            "pr_url_base": self.pr_url_base,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReleaseNotes:
        """Rebuild notes from `to_dict()` output; raises ValueError on a malformed dict."""
        try:
            sections = tuple(
                NoteSection(
                    key=str(s["key"]),
                    title=str(s["title"]),
                    entries=tuple(_entry_from_dict(e) for e in s["entries"]),
                )
                for s in data["sections"]
            )
            return cls(
                sections=sections,
                contributors=tuple(Person(str(p["name"]), str(p["email"])) for p in data["contributors"]),
                commit_count=int(data["commit_count"]),
                merge_count=int(data["merge_count"]),
                reverted_count=int(data["reverted_count"]),
                truncated=bool(data.get("truncated", False)),
                pr_url_base=None if data.get("pr_url_base") is None else str(data["pr_url_base"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed release notes: {exc!r}") from exc


def notes_title(service: str, start: str | None, to: str) -> str:
    """How the notes of ``start``..``to`` are titled (just ``to`` for a first release)."""
    return f"{service} {start}..{to}" if start else f"{service} {to}"


def _entry_to_dict(e: NoteEntry) -> dict[str, Any]:
    return {
        "sha": e.sha,
        "type": e.type,
        "scope": e.scope,
        "description": e.description,
        "breaking": e.breaking,
        "breaking_note": e.breaking_note,
        "pr_numbers": list(e.pr_numbers),
        "authors": [{"name": p.name, "email": p.email} for p in e.authors],
    }


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _entry_from_dict(d: Mapping[str, Any]) -> NoteEntry:
    return NoteEntry(
        sha=str(d["sha"]),
        type=_opt_str(d["type"]),
        scope=_opt_str(d["scope"]),
        description=str(d["description"]),
        breaking=bool(d["breaking"]),
        breaking_note=_opt_str(d["breaking_note"]),
        pr_numbers=tuple(int(n) for n in d["pr_numbers"]),
        authors=tuple(Person(str(p["name"]), str(p["email"])) for p in d["authors"]),
    )


def _section_key(p: ParsedCommit) -> str:
    if p.type in ("feat", "feature"):
        return "features"
    if p.type in ("fix", "bugfix"):
        return "security" if (p.scope or "").lower() in _SECURITY_SCOPES else "fixes"
    if p.type == "perf":
        return "performance"
    if p.type in _SECURITY_SCOPES:
        return "security"
    return "other"


def _merged_by(commits: Sequence[Commit]) -> dict[str, str]:
    """Map each commit a merge brought in to that merge's sha.

    The mainline is the first-parent chain from each tip; a merge claims what its other parents
    reach without touching the mainline or commits an older merge already claimed. Every commit is
    visited at most once, so this is linear in the range.
    """
    by_sha = {c.sha: c for c in commits}
    referenced = {p for c in commits for p in c.parents}
    mainline: set[str] = set()
    for tip in (c for c in commits if c.sha not in referenced):
        sha: str | None = tip.sha
        while sha is not None and sha in by_sha and sha not in mainline:
            mainline.add(sha)
            parents = by_sha[sha].parents
            sha = parents[0] if parents else None
    claimed: dict[str, str] = {}
    for merge in sorted((c for c in commits if c.is_merge), key=lambda c: c.committed_at):
        stack = list(merge.parents[1:])
        while stack:
            sha = stack.pop()
            if sha not in by_sha or sha in mainline or sha in claimed:
                continue
            claimed[sha] = merge.sha
            stack.extend(by_sha[sha].parents)
    return claimed


def _revert_targets(commits: Sequence[Commit], parsed: Mapping[str, ParsedCommit]) -> dict[str, str]:
    """Map each revert commit to the in-range commit it reverts (by sha, else by quoted subject)."""
    by_sha = {c.sha.lower(): c.sha for c in commits}
    by_subject: dict[str, list[str]] = {}
    for c in commits:
        by_subject.setdefault(c.subject.strip(), []).append(c.sha)
    targets: dict[str, str] = {}
    for c in commits:
        p = parsed[c.sha]
        if not p.is_revert:
            continue
        target: str | None = None
        if p.revert_of_sha:
            target = by_sha.get(p.revert_of_sha)
            if target is None and len(p.revert_of_sha) < 40:
                target = next((full for low, full in by_sha.items() if low.startswith(p.revert_of_sha)), None)
        if target is None and p.revert_of_subject:
            candidates = [s for s in by_subject.get(p.revert_of_subject.strip(), []) if s != c.sha]
            target = candidates[-1] if candidates else None
        if target is not None and target != c.sha:
            targets[c.sha] = target
    return targets


def _cancelled(targets: Mapping[str, str]) -> set[str]:
    """Commits undone by a revert that is itself still in effect.

    X is cancelled when some revert of X is not cancelled. Reverts always come after what they
    revert, so the chains are finite; an explicit stack avoids recursion limits on long chains.
    """
    reverters: dict[str, list[str]] = {}
    for revert, target in targets.items():
        reverters.setdefault(target, []).append(revert)
    memo: dict[str, bool] = {}
    for start in reverters:
        stack = [start]
        while stack:
            sha = stack[-1]
            if sha in memo:
                stack.pop()
                continue
            pending = [r for r in reverters.get(sha, []) if r not in memo and r not in stack]
            if pending:
                stack.extend(pending)
                continue
            memo[sha] = any(not memo.get(r, False) for r in reverters.get(sha, []))
            stack.pop()
    return {sha for sha, is_cancelled in memo.items() if is_cancelled}


def build_release_notes(
    commits: Sequence[Commit],
    *,
    pr_url_base: str | None = None,
    truncated: bool | None = None,
) -> ReleaseNotes:
    """Group commits (oldest first) into release notes.

    `pr_url_base` is the repository's web address (`https://github.com/owner/name`) used to link
    PR numbers. `truncated` defaults to the flag carried by a `CommitList`.
    """
    if truncated is None:
        truncated = isinstance(commits, CommitList) and commits.truncated
    parsed = {c.sha: parse_commit(c) for c in commits}
    merged_by = _merged_by(commits)
    targets = _revert_targets(commits, parsed)
    cancelled = _cancelled(targets)

    groups: dict[str, list[NoteEntry]] = {key: [] for key in SECTION_TITLES}
    contributors: dict[str, Person] = {}
    merge_count = reverted_count = 0
    for c in commits:
        p = parsed[c.sha]
        if c.is_merge or p.sync_merge:
            merge_count += 1
            continue
        merge = merged_by.get(c.sha)
        # Dropped: undone by a revert in range, a revert of something in range, or brought in by
        # a merge that was itself reverted in range.
        if c.sha in cancelled or c.sha in targets or merge in cancelled:
            reverted_count += 1
            continue
        prs = p.pr_numbers
        merge_pr = parsed[merge].merge_pr if merge else None
        if merge_pr is not None and merge_pr not in prs:
            prs = (*prs, merge_pr)
        authors = {Person(c.author_name, c.author_email).key: Person(c.author_name, c.author_email)}
        for co in p.co_authors:
            authors.setdefault(co.key, co)
        description = p.description
        key = _section_key(p)
        if p.is_revert:
            description, key = c.subject.strip(), "other"
        entry = NoteEntry(
            sha=c.sha,
            type=p.type,
            scope=p.scope,
            description=description,
            breaking=p.breaking,
            breaking_note=p.breaking_note,
            pr_numbers=prs,
            authors=tuple(authors.values()),
        )
        groups[key].append(entry)
        if entry.breaking:
            groups["breaking"].append(entry)
        for person in entry.authors:
            contributors.setdefault(person.key, person)

    sections = tuple(
        NoteSection(key=key, title=SECTION_TITLES[key], entries=tuple(entries))
        for key, entries in groups.items()
        if entries
    )
    return ReleaseNotes(
        sections=sections,
        contributors=tuple(sorted(contributors.values(), key=lambda p: (p.name.casefold(), p.key))),
        commit_count=len(commits),
        merge_count=merge_count,
        reverted_count=reverted_count,
        truncated=truncated,
        pr_url_base=pr_url_base,
    )

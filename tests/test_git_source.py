"""LocalGitSource on a real git repository the test builds, then the notes made from it."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.commits import CommitList
from bot.core.notes import ReleaseNotes, build_release_notes
from bot.ports import CommitSource
from bot.sources.base import SourceError
from bot.sources.git import LocalGitSource

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
ADA = ("Ada Lovelace", "ada@example.com")
GRACE = ("Grace Hopper", "grace@example.com")
LINUS = ("Linus T", "linus@example.com")
PR_BASE = "https://github.com/cds-snc/notification-api"


@dataclass
class Repo:
    """Builds history with fixed author/committer dates, one minute apart."""

    path: Path
    ticks: int = 0
    shas: dict[str, str] = field(default_factory=dict)

    def when(self) -> datetime:
        return T0 + timedelta(minutes=self.ticks)

    def git(self, *args: str, author: tuple[str, str] = ADA) -> str:
        stamp = self.when().isoformat()
        env = {
            **os.environ,
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        name, email = author
        argv = ["git", "-C", str(self.path), "-c", f"user.name={name}", "-c", f"user.email={email}"]
        argv += ["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args]
        out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def commit(self, key: str, message: str, *, author: tuple[str, str] = ADA) -> str:
        self.ticks += 1
        (self.path / f"{key}.txt").write_text(key)
        self.git("add", f"{key}.txt")
        self.git("commit", "-q", "-m", message, author=author)
        self.shas[key] = self.git("rev-parse", "HEAD")
        return self.shas[key]

    def revert(self, key: str, target: str) -> str:
        self.ticks += 1
        self.git("revert", "--no-edit", self.shas[target])
        self.shas[key] = self.git("rev-parse", "HEAD")
        return self.shas[key]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    r = Repo(tmp_path_factory.mktemp("service"))
    r.git("init", "-q")
    r.commit("init", "chore: initial commit")
    r.commit("guide", "docs: add guide")
    r.git("tag", "v1.0.0")
    r.commit("letters", "feat(api): add letters endpoint (#12)")
    r.commit("readme", "Update README\n\nMore words.", author=GRACE)
    r.git("checkout", "-q", "-b", "feature-x")
    r.commit("empty", "fix: handle empty template", author=LINUS)
    r.commit("cache", "perf: cache templates\n\nCo-authored-by: Grace Hopper <GRACE@example.com>")
    r.git("checkout", "-q", "main")
    r.commit("sms", "feat: send SMS in bulk")
    r.ticks += 1
    r.git("merge", "-q", "--no-ff", "-m", "Merge pull request #15 from cds-snc/feature-x", "feature-x")
    r.shas["merge"] = r.git("rev-parse", "HEAD")
    r.revert("unsms", "sms")
    r.commit("dropv1", "feat!: drop v1 API")
    r.commit(
        "rename",
        "refactor: rename config\n\nBREAKING CHANGE: the NOTIFY_URL setting is now API_URL.\n\nRefs: #20",
    )
    r.commit("escape", "fix(security): escape template input\n\nSubject with \x1f unit sep | pipe")
    r.revert("unguide", "guide")
    r.git("tag", "v2.0.0")
    return r


async def test_reads_the_range_oldest_first_with_fields(repo: Repo) -> None:
    src = LocalGitSource(repo.path)
    commits = await src.commits_between("v1.0.0", "v2.0.0")

    assert isinstance(commits, CommitList) and not commits.truncated
    assert len(commits) == 11
    assert commits[-1].sha == repo.shas["unguide"]
    by_sha = {c.sha: c for c in commits}
    assert repo.shas["guide"] not in by_sha and repo.shas["init"] not in by_sha
    letters = by_sha[repo.shas["letters"]]
    assert letters.subject == "feat(api): add letters endpoint (#12)"
    assert (letters.author_name, letters.author_email) == ADA
    assert letters.authored_at == T0 + timedelta(minutes=3) == letters.committed_at
    assert letters.parents == (repo.shas["guide"],)
    assert by_sha[repo.shas["readme"]].body == "More words."
    assert len(by_sha[repo.shas["merge"]].parents) == 2
    assert by_sha[repo.shas["escape"]].body == "Subject with \x1f unit sep | pipe"
    unsms = by_sha[repo.shas["unsms"]]
    assert unsms.subject == 'Revert "feat: send SMS in bulk"'
    assert f"This reverts commit {repo.shas['sms']}." in unsms.body
    # Topological order: nothing comes before its parents.
    seen: set[str] = set()
    for c in commits:
        assert all(p in seen or p not in by_sha for p in c.parents)
        seen.add(c.sha)


async def test_notes_from_the_real_repository(repo: Repo) -> None:
    commits = await LocalGitSource(repo.path).commits_between("v1.0.0", "v2.0.0")
    notes = build_release_notes(commits, pr_url_base=PR_BASE)

    def titles(key: str) -> list[str]:
        section = notes.section(key)
        return [e.description for e in section.entries] if section else []

    assert [s.key for s in notes.sections] == [
        "breaking",
        "features",
        "fixes",
        "performance",
        "security",
        "other",
    ]
    assert titles("breaking") == ["drop v1 API", "rename config"]
    assert titles("features") == ["add letters endpoint", "drop v1 API"]
    assert titles("fixes") == ["handle empty template"]
    assert titles("performance") == ["cache templates"]
    assert titles("security") == ["escape template input"]
    assert titles("other") == ["Update README", "rename config", 'Revert "docs: add guide"']
    breaking = notes.section("breaking")
    assert breaking is not None and breaking.entries[1].breaking_note == "the NOTIFY_URL setting is now API_URL."

    fixes, perf = notes.section("fixes"), notes.section("performance")
    assert fixes is not None and perf is not None
    # Commits of the merged branch get the PR number of "Merge pull request #15".
    assert fixes.entries[0].pr_numbers == (15,) and perf.entries[0].pr_numbers == (15,)
    assert [p.name for p in perf.entries[0].authors] == ["Ada Lovelace", "Grace Hopper"]
    # Grace authored one commit and co-authored another with an upper-case address: one contributor.
    assert [p.name for p in notes.contributors] == ["Ada Lovelace", "Grace Hopper", "Linus T"]
    assert (notes.merge_count, notes.reverted_count, notes.commit_count) == (1, 2, 11)

    markdown = notes.to_markdown("notification-api v2.0.0")
    assert f"[#12]({PR_BASE}/pull/12)" in markdown and f"[#15]({PR_BASE}/pull/15)" in markdown
    assert "send SMS in bulk" not in markdown
    assert ReleaseNotes.from_dict(notes.to_dict()) == notes


async def test_first_release_reads_everything_and_caps(repo: Repo) -> None:
    everything = await LocalGitSource(repo.path).commits_between(None, "v2.0.0")
    assert len(everything) == 13 and not everything.truncated  # type: ignore[attr-defined]
    assert everything[0].sha == repo.shas["init"]

    capped = await LocalGitSource(repo.path, max_commits=4).commits_between(None, "v2.0.0")
    assert isinstance(capped, CommitList) and capped.truncated
    # The newest four are kept, oldest first.
    assert [c.sha for c in capped] == [c.sha for c in everything[-4:]]
    assert build_release_notes(capped).truncated


async def test_missing_commit_is_a_clear_error(repo: Repo) -> None:
    with pytest.raises(SourceError) as info:
        await LocalGitSource(repo.path).commits_between("v9.9.9", "v2.0.0")
    assert info.value.reason == f"commit 'v9.9.9' not found in {repo.path}"


async def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is not a readable git repository"):
        await LocalGitSource(tmp_path / "nowhere").commits_between(None, "main")


@pytest.mark.parametrize("ref", ["--output=pwned", "-n1", "v1..v2", "HEAD@{1}", "a b", "x;rm", ""])
async def test_option_and_range_injection_is_refused(repo: Repo, ref: str) -> None:
    with pytest.raises(SourceError, match="not a valid commit reference"):
        await LocalGitSource(repo.path).commits_between(ref, "v2.0.0")
    assert not (repo.path / "pwned").exists()


async def test_missing_git_binary_is_a_source_error(repo: Repo) -> None:
    with pytest.raises(SourceError, match="git is not installed"):
        await LocalGitSource(repo.path, git_binary="git-does-not-exist").commits_between(None, "main")


async def test_commit_time_for_lead_time(repo: Repo) -> None:
    src = LocalGitSource(repo.path)
    assert isinstance(src, CommitSource)
    assert await src.commit_time("v1.0.0") == T0 + timedelta(minutes=2)
    with pytest.raises(SourceError, match="not found"):
        await src.commit_time("deadbeef")


async def test_a_git_that_hangs_is_cut_off_at_the_timeout(repo: Repo, tmp_path: Path) -> None:
    # A stand-in "git" that never answers: the source must kill it and say why, not hang the release.
    hanging = tmp_path / "git"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    src = LocalGitSource(repo.path, git_binary=str(hanging), timeout=0.2)
    with pytest.raises(SourceError, match=r"git took longer than 0\.2s"):
        await src.commits_between(None, "main")


async def test_breaking_reverts_from_a_real_repository(tmp_path: Path) -> None:
    """`revert!:` and a `git revert` whose message gained a BREAKING CHANGE footer are breaking changes."""
    r = Repo(tmp_path)
    r.git("init", "-q")
    r.commit("v1", "feat(api): v1 endpoints")
    r.commit("auth", "feat: v2 auth")
    r.commit("soap", "feat(api)!: remove SOAP")
    r.git("tag", "v1.0.0")
    r.ticks += 1
    r.git("revert", "--no-commit", r.shas["v1"])
    r.git("commit", "-q", "-m", f"revert!: feat(api): v1 endpoints\n\nThis reverts commit {r.shas['v1']}.")
    r.ticks += 1
    r.git("revert", "--no-commit", r.shas["auth"])
    footer = "BREAKING CHANGE: v1 tokens are refused again"
    r.git("commit", "-q", "-m", f'Revert "feat: v2 auth"\n\nThis reverts commit {r.shas["auth"]}.\n\n{footer}')
    r.revert("unsoap", "soap")  # git's own message: undoing a breaking change is not itself breaking
    r.commit("letters", "feat: letters")
    r.git("tag", "v2.0.0")

    notes = build_release_notes(await LocalGitSource(r.path).commits_between("v1.0.0", "v2.0.0"))

    def titles(key: str) -> list[str]:
        section = notes.section(key)
        return [e.description for e in section.entries] if section else []

    assert [s.key for s in notes.sections] == ["breaking", "features", "other"]
    assert titles("breaking") == ["revert!: feat(api): v1 endpoints", 'Revert "feat: v2 auth"']
    assert titles("other") == [
        "revert!: feat(api): v1 endpoints",
        'Revert "feat: v2 auth"',
        'Revert "feat(api)!: remove SOAP"',
    ]
    assert titles("features") == ["letters"]
    breaking = notes.section("breaking")
    assert breaking is not None and breaking.entries[1].breaking_note == "v1 tokens are refused again"


def _object_id(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()  # noqa: S324 - git's own object id


def _write_object(r: Repo, kind: str, body: bytes) -> str:
    out = subprocess.run(
        ["git", "-C", str(r.path), "hash-object", "-t", kind, "-w", "--stdin"],
        input=body,
        check=True,
        capture_output=True,
    )
    return out.stdout.decode().strip()


def _object_with_prefix(r: Repo, kind: str, prefix: str, make: Callable[[int], bytes]) -> str:
    """Write an object of `kind` whose id starts with `prefix`: search bodies until one hashes to it."""
    for n in itertools.count():
        body = make(n)
        if _object_id(kind, body).startswith(prefix):
            return _write_object(r, kind, body)
    raise AssertionError("unreachable")


@pytest.fixture
def shadowed(tmp_path: Path) -> Repo:
    """A fresh repository per test: these tests add tags and objects the shared one must not see."""
    r = Repo(tmp_path / "shadowed")
    r.path.mkdir()
    r.git("init", "-q")
    r.commit("one", "feat: the real commit")
    r.commit("two", "feat: the decoy's target")
    return r


async def test_a_tag_named_like_a_short_id_does_not_shadow_the_commit(shadowed: Repo) -> None:
    real, decoy = shadowed.shas["one"], shadowed.shas["two"]
    short = real[:7]
    shadowed.git("tag", short, decoy)
    # Plain git prefers the ref here: the trap this source must not fall into.
    assert shadowed.git("rev-parse", f"{short}^{{commit}}") == decoy
    src = LocalGitSource(shadowed.path)
    assert [c.sha for c in await src.commits_between(None, short)] == [real]
    assert [c.sha for c in await src.commits_between(short, decoy)] == [decoy]
    assert await src.commit_time(short) == T0 + timedelta(minutes=1)
    # The full id never goes through refs either, even with a tag of that very name.
    shadowed.git("tag", real, decoy)
    assert [c.sha for c in await src.commits_between(None, real)] == [real]
    assert [c.sha for c in await src.commits_between(None, real.upper())] == [real]


async def test_a_short_id_shared_with_a_blob_still_names_the_commit(shadowed: Repo) -> None:
    real = shadowed.shas["one"]
    blob = _object_with_prefix(shadowed, "blob", real[:4], lambda n: f"blob {n}\n".encode())
    assert blob != real and blob[:4] == real[:4]
    src = LocalGitSource(shadowed.path)
    assert [c.sha for c in await src.commits_between(None, real[:4])] == [real]
    with pytest.raises(SourceError, match=f"commit '{blob}' not found"):
        await src.commits_between(None, blob)  # a blob is not a commit, however it is named


async def test_a_short_id_naming_two_commits_is_ambiguous(shadowed: Repo) -> None:
    real = shadowed.shas["one"]
    tree = shadowed.git("rev-parse", f"{real}^{{tree}}")

    def commit_body(n: int) -> bytes:
        who = "Ada Lovelace <ada@example.com> 1709542800 +0000"
        return f"tree {tree}\nauthor {who}\ncommitter {who}\n\ntwin {n}\n".encode()

    twin = _object_with_prefix(shadowed, "commit", real[:4], commit_body)
    assert twin != real
    with pytest.raises(SourceError, match=f"commit '{real[:4]}' is ambiguous .*: use the full id"):
        await LocalGitSource(shadowed.path).commits_between(None, real[:4])
    assert [c.sha for c in await LocalGitSource(shadowed.path).commits_between(None, twin)] == [twin]

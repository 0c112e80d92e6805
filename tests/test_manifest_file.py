"""The manifest file committed into a real temporary git repository."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.core.imageref import components_with_digests
from bot.manifest_file import ManifestCommitError, commit_manifest, render_manifest

DIGEST = "sha256:" + "5e" * 32
FILE = "manifests/notify.json"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "release-manifests"
    path.mkdir()
    git(path, "init", "--quiet")
    return path


def manifest(version: str = "1.4.2", release_id: int = 42) -> dict[str, Any]:
    return {
        "service": "notify",
        "env": "prod",
        "version": version,
        "commit": "9f2c1e0",
        "released_at": "2024-09-12T14:05:00+00:00",
        "released_by": "U0RELEASER",
        "release_id": release_id,
        "components": components_with_digests(
            {"api": f"ghcr.io/cds-snc/notify-api@{DIGEST}", "worker": f"ghcr.io/cds-snc/notify-worker:{version}"}
        ),
    }


async def test_commits_the_manifest_with_a_message_naming_the_release(repo: Path) -> None:
    sha = await commit_manifest(repo, FILE, manifest(), "release notify 1.4.2 to prod (#42)")

    assert sha is not None and sha == git(repo, "rev-parse", "HEAD").strip()
    content = git(repo, "show", f"HEAD:{FILE}")
    assert json.loads(content) == manifest()
    assert content == render_manifest(manifest())
    assert content.endswith("}\n") and content.index('"commit"') < content.index('"version"')  # sorted keys
    assert json.loads(content)["components"]["api"] == {
        "image": f"ghcr.io/cds-snc/notify-api@{DIGEST}",
        "digest": DIGEST,
    }
    assert git(repo, "log", "-1", "--format=%B").strip() == "release notify 1.4.2 to prod (#42)"
    assert git(repo, "log", "-1", "--format=%an <%ae>").strip() == "release-bot <release-bot@localhost>"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [FILE]
    assert git(repo, "status", "--porcelain") == ""


async def test_identical_content_makes_no_commit(repo: Path) -> None:
    first = await commit_manifest(repo, FILE, manifest(), "release notify 1.4.2 to prod (#42)")
    again = await commit_manifest(repo, FILE, manifest(), "release notify 1.4.2 to prod (#43)")
    assert again is None
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(repo, "rev-parse", "HEAD").strip() == first


async def test_the_files_history_is_the_release_history(repo: Path) -> None:
    await commit_manifest(repo, FILE, manifest("1.4.2", 42), "release notify 1.4.2 to prod (#42)")
    await commit_manifest(repo, "manifests/admin.json", {"service": "admin"}, "release admin 2.0 to prod (#43)")
    second = await commit_manifest(repo, FILE, manifest("1.4.3", 44), "release notify 1.4.3 to prod (#44)")
    assert second is not None
    assert git(repo, "log", "--format=%s", "--", FILE).splitlines() == [
        "release notify 1.4.3 to prod (#44)",
        "release notify 1.4.2 to prod (#42)",
    ]
    assert json.loads(git(repo, "show", f"HEAD~2:{FILE}"))["version"] == "1.4.2"
    assert json.loads(git(repo, "show", f"HEAD:{FILE}"))["version"] == "1.4.3"


async def test_only_the_manifest_is_committed_whatever_else_is_staged(repo: Path) -> None:
    (repo / "notes.txt").write_text("work in progress\n")
    git(repo, "add", "notes.txt")
    await commit_manifest(repo, FILE, manifest(), "release notify 1.4.2 to prod (#42)")
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [FILE]
    assert git(repo, "status", "--porcelain").splitlines() == ["A  notes.txt"]


async def test_hooks_cannot_block_the_commit(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'refusing' >&2\nexit 1\n")
    hook.chmod(0o755)
    assert await commit_manifest(repo, FILE, manifest(), "release notify 1.4.2 to prod (#42)") is not None


async def test_concurrent_commits_to_one_repository_are_serialised(repo: Path) -> None:
    versions = [f"1.5.{n}" for n in range(6)]
    shas = await asyncio.gather(
        *(
            commit_manifest(repo, f"manifests/svc{n}.json", manifest(v, n), f"release svc{n} {v} to prod (#{n})")
            for n, v in enumerate(versions)
        )
    )
    assert len({sha for sha in shas if sha is not None}) == 6
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "6"
    assert git(repo, "status", "--porcelain") == ""


async def test_a_commit_cancelled_before_its_turn_is_dropped_and_nothing_hangs(repo: Path) -> None:
    first = asyncio.create_task(commit_manifest(repo, FILE, manifest("1.0", 1), "release notify 1.0 to prod (#1)"))
    queued = asyncio.create_task(commit_manifest(repo, FILE, manifest("1.1", 2), "release notify 1.1 to prod (#2)"))
    await asyncio.sleep(0)  # one loop turn: both hand their work to the repository's git thread
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert await first is not None
    assert await commit_manifest(repo, FILE, manifest("2.0", 3), "release notify 2.0 to prod (#3)") is not None
    assert git(repo, "log", "--format=%s").splitlines() == [
        "release notify 2.0 to prod (#3)",
        "release notify 1.0 to prod (#1)",
    ]
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "relative",
    ["../outside.json", "/tmp/outside.json", "manifests/../../outside.json", "", ".git/config", "."],
)
async def test_paths_escaping_the_repository_are_refused(repo: Path, relative: str) -> None:
    with pytest.raises(ValueError, match="manifest file"):
        await commit_manifest(repo, relative, manifest(), "release notify 1.4.2 to prod (#42)")
    assert not (repo.parent / "outside.json").exists()
    assert git(repo, "status", "--porcelain") == ""


async def test_a_symlink_out_of_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "manifests").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="resolves outside the repository"):
        await commit_manifest(repo, FILE, manifest(), "release notify 1.4.2 to prod (#42)")
    assert list(elsewhere.iterdir()) == []


async def test_a_directory_that_is_not_a_repository_fails_with_gits_message(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ManifestCommitError, match="not a git repository"):
        await commit_manifest(plain, FILE, manifest(), "release notify 1.4.2 to prod (#42)")
    assert not (plain / "manifests").exists()


@pytest.mark.parametrize(
    ("document", "message", "author", "error"),
    [
        ({"released_on": date(2024, 9, 12)}, "m", "a <a@b>", "not JSON-serialisable"),
        ({"service": "notify"}, "  ", "a <a@b>", "commit message must not be empty"),
        ({"service": "notify"}, "m", "release-bot", "must look like 'Name <email@host>'"),
    ],
)
async def test_bad_arguments_are_refused_before_touching_the_repository(
    repo: Path, document: dict[str, Any], message: str, author: str, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        await commit_manifest(repo, FILE, document, message, author=author)
    assert not (repo / "manifests").exists()


async def test_custom_author(repo: Path) -> None:
    await commit_manifest(
        repo, FILE, manifest(), "release notify 1.4.2 to prod (#42)", author="Ship It <ship@example.org>"
    )
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == (
        "Ship It <ship@example.org>|Ship It <ship@example.org>"
    )

"""Write the release manifest into a git repository and commit it: its history is the release history.

I/O at the edge. The engine calls this only after a production release succeeded, so a failed
release commits nothing.

git runs as ``subprocess.run`` (argv only, never a shell) on a worker thread owned by the
repository, not through ``asyncio.create_subprocess_exec``: on CPython 3.11, cancelling a task
while asyncio connects a subprocess's pipes leaves ``asyncio.run`` hanging forever at shutdown
(python/cpython#125502, #133536). Here a cancelled commit finishes on its thread, bounded by the
git timeout, and the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

__all__ = ["DEFAULT_AUTHOR", "ManifestCommitError", "commit_manifest", "render_manifest"]

DEFAULT_AUTHOR = "release-bot <release-bot@localhost>"
_AUTHOR = re.compile(r"\s*([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\s*")
_GIT_TIMEOUT_S = 30.0
_STDERR_TAIL = 800
# Inherited, these would point git at another repository or index than the one asked for.
_REDIRECTING_VARS = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"})

# One single-thread executor per repository: commits run one at a time, in call order. A caller
# cancelled before its turn drops its commit; one cancelled mid-git finishes before the next runs,
# so a later release's manifest can never be overtaken by an earlier one.
_executors: dict[str, ThreadPoolExecutor] = {}
_executors_guard = threading.Lock()


class ManifestCommitError(Exception):
    """git failed; the message carries the command and the tail of git's stderr."""


def render_manifest(manifest: Mapping[str, object]) -> str:
    """The file content: pretty JSON, sorted keys, trailing newline (stable, so diffs are minimal)."""
    try:
        return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"manifest is not JSON-serialisable: {exc}") from None


def _relative(relative_file: str) -> PurePosixPath:
    path = PurePosixPath(relative_file)
    if not relative_file.strip() or path.is_absolute() or ".." in path.parts or relative_file.startswith("~"):
        raise ValueError(f"manifest file {relative_file!r} must be a relative path inside the repository")
    if not path.parts:
        raise ValueError(f"manifest file {relative_file!r} names no file")
    if path.parts[0] == ".git":
        raise ValueError(f"manifest file {relative_file!r} may not be inside .git")
    return path


def _identity(author: str) -> tuple[str, str]:
    match = _AUTHOR.fullmatch(author)
    if match is None:
        raise ValueError(f"author {author!r} must look like 'Name <email@host>'")
    return match.group(1), match.group(2)


class _Git:
    """git in one repository with a fixed identity, run synchronously (call from a worker thread)."""

    def __init__(self, root: Path, identity: tuple[str, str]) -> None:
        executable = shutil.which("git")
        if executable is None:
            raise ManifestCommitError("git is not installed (not found on PATH)")
        name, email = identity
        self.root = root
        self.prefix = [
            executable,
            "-C",
            str(root),
            "-c",
            f"user.name={name}",
            "-c",
            f"user.email={email}",
            "-c",
            "commit.gpgsign=false",  # a signing setup on the host would prompt or fail
        ]
        self.env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_VARS}
        self.env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
        """Run ``git <args>``; return (exit code, stdout) or raise ManifestCommitError."""
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell; message and path are single args
                [*self.prefix, *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=self.env,
                timeout=_GIT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ManifestCommitError(f"git {args[0]} timed out after {_GIT_TIMEOUT_S:.0f}s in {self.root}") from None
        if done.returncode not in ok:
            tail = done.stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
            raise ManifestCommitError(
                f"git {args[0]} failed (exit {done.returncode}) in {self.root}: {tail or 'no output'}"
            )
        return done.returncode, done.stdout.decode("utf-8", "replace")


def _inside(root: Path, directory: Path) -> bool:
    """Whether the nearest existing ancestor of ``directory`` resolves inside ``root``.

    A symlinked directory inside the repository could otherwise point the write outside it.
    """
    existing = directory
    while not existing.exists() and existing != root:
        existing = existing.parent
    return existing.resolve().is_relative_to(root)


def _write(target: Path, content: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees half a manifest


def _commit_sync(repo: Path, rel: PurePosixPath, content: str, message: str, identity: tuple[str, str]) -> str | None:
    root = repo.resolve()
    target = root.joinpath(*rel.parts)
    if not _inside(root, target.parent):
        raise ValueError(f"manifest file {rel.as_posix()!r} resolves outside the repository")
    git = _Git(root, identity)
    _, inside = git("rev-parse", "--is-inside-work-tree")
    if inside.strip() != "true":
        raise ManifestCommitError(f"{root} is not a git work tree")
    _write(target, content)
    path = rel.as_posix()
    git("add", "--", path)
    code, _ = git("diff", "--cached", "--quiet", "--", path, ok=(0, 1))
    if code == 0:
        return None  # identical to what is committed: no empty commit
    # `commit -- <path>` (--only) commits this file alone, whatever else someone staged.
    git("commit", "--no-verify", "--quiet", "-m", message, "--", path)
    _, sha = git("rev-parse", "HEAD")
    return sha.strip()


async def commit_manifest(
    repo: Path,
    relative_file: str,
    manifest: Mapping[str, object],
    message: str,
    *,
    author: str = DEFAULT_AUTHOR,
) -> str | None:
    """Write ``manifest`` to ``repo/relative_file`` and commit only that file.

    Returns the new commit's sha, or None when the committed content is already identical (no
    empty commit). Raises ValueError for a path escaping the repository, an empty message or a bad
    author, and ManifestCommitError when git fails (not a repository, hook-free commit refused…).
    Concurrent calls on the same repository are serialised.
    """
    rel = _relative(relative_file)
    if not message.strip():
        raise ValueError("commit message must not be empty")
    identity = _identity(author)
    content = render_manifest(manifest)
    key = os.path.abspath(repo)  # noqa: ASYNC240 - string manipulation only, no file system access
    with _executors_guard:
        executor = _executors.get(key)
        if executor is None:
            executor = _executors[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manifest-git")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, _commit_sync, repo, rel, content, message, identity)

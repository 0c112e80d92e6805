"""Write the release manifest into a git repository and commit it: its history is the release history.

I/O at the edge: git runs as a subprocess (argv only, never a shell) so the event loop is never
blocked by it. Only called by the engine after a production release succeeded, so a failed
release commits nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import weakref
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

__all__ = ["DEFAULT_AUTHOR", "ManifestCommitError", "commit_manifest", "render_manifest"]

DEFAULT_AUTHOR = "release-bot <release-bot@localhost>"
_AUTHOR = re.compile(r"\s*([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\s*")
_GIT_TIMEOUT_S = 30.0
_STDERR_TAIL = 800
_REDIRECTING_VARS = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"})

# One lock per (event loop, repository): asyncio locks belong to the loop that first waits on them.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


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
    if path.parts and path.parts[0] == ".git":
        raise ValueError(f"manifest file {relative_file!r} may not be inside .git")
    if str(path) in {".", ""}:
        raise ValueError(f"manifest file {relative_file!r} names no file")
    return path


def _identity(author: str) -> tuple[str, str]:
    match = _AUTHOR.fullmatch(author)
    if match is None:
        raise ValueError(f"author {author!r} must look like 'Name <email@host>'")
    return match.group(1), match.group(2)


def _lock(repo: Path) -> asyncio.Lock:
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(repo, asyncio.Lock())


async def _git(repo: Path, identity: tuple[str, str], *args: str) -> tuple[int, str]:
    """Run git in ``repo``; return (exit code, stdout). Raise ManifestCommitError on timeout."""
    name, email = identity
    argv = [
        "git",
        "-C",
        str(repo),
        "-c",
        f"user.name={name}",
        "-c",
        f"user.email={email}",
        "-c",
        "commit.gpgsign=false",  # a signing setup on the host would prompt or fail
        *args,
    ]
    # Inherited GIT_DIR/GIT_WORK_TREE/GIT_INDEX_FILE would point git at another repository.
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_VARS}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), _GIT_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ManifestCommitError(f"git {args[0]} timed out after {_GIT_TIMEOUT_S:.0f}s in {repo}") from None
    code = proc.returncode if proc.returncode is not None else -1
    if code not in (0, 1) or (code == 1 and args[0] != "diff"):
        tail = stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise ManifestCommitError(f"git {args[0]} failed (exit {code}) in {repo}: {tail or 'no output'}")
    return code, stdout.decode("utf-8", "replace")


def _inside(root: Path, directory: Path) -> bool:
    """Whether the nearest existing ancestor of ``directory`` resolves inside ``root``.

    A symlinked directory inside the repository could otherwise point the write outside it.
    """
    existing = directory
    while not existing.exists() and existing != root:
        existing = existing.parent
    return existing.resolve().is_relative_to(root)


def _locate(repo: Path, rel: PurePosixPath) -> tuple[Path, Path]:
    """The resolved repository root and the file's path in it; ValueError if it escapes."""
    root = repo.resolve()
    target = root.joinpath(*rel.parts)
    if not _inside(root, target.parent):
        raise ValueError(f"manifest file {rel.as_posix()!r} resolves outside the repository")
    return root, target


def _write(target: Path, content: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees half a manifest


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
    author, and ManifestCommitError when git fails (not a repository, nothing to commit into…).
    Concurrent calls on the same repository are serialised.
    """
    rel = _relative(relative_file)
    if not message.strip():
        raise ValueError("commit message must not be empty")
    identity = _identity(author)
    content = render_manifest(manifest)
    root, target = await asyncio.to_thread(_locate, repo, rel)
    if True:
        code, inside = await _git(root, identity, "rev-parse", "--is-inside-work-tree")
        if inside.strip() != "true":
            raise ManifestCommitError(f"{root} is not a git work tree")
        await asyncio.to_thread(_write, target, content)
        await _git(root, identity, "add", "--", rel.as_posix())
        code, _ = await _git(root, identity, "diff", "--cached", "--quiet", "--", rel.as_posix())
        if code == 0:
            return None
        # `commit -- <path>` (--only) commits this file alone, whatever else someone staged.
        await _git(root, identity, "commit", "--no-verify", "--quiet", "-m", message, "--", rel.as_posix())
        _, sha = await _git(root, identity, "rev-parse", "HEAD")
        return sha.strip()

"""Commit history from a local git repository, read through `git` subprocesses (argv only).

One `git log` call per range with a NUL-separated `--format`, so any text in a message parses
safely; refs are validated and resolved to full shas before they reach `git log`, and
`--end-of-options` keeps a ref from ever being read as an option.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from datetime import datetime
from pathlib import Path

from bot.core.commits import Commit, CommitList
from bot.sources.base import DEFAULT_MAX_COMMITS, SourceError, validate_ref

__all__ = ["LocalGitSource"]

# %aN/%aE honour .mailmap, so one person with two addresses can be credited once.
_FORMAT = "%H%x00%P%x00%aN%x00%aE%x00%aI%x00%cI%x00%s%x00%b"
_FIELDS = 8
# An id or its prefix (git needs at least 4 digits): resolved among objects, never through refs.
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{4,64}\Z")
# Objects sharing a short prefix examined before giving up; two commits already make it ambiguous.
_MAX_AMBIGUOUS = 16
# Commits parsed between yields to the event loop; keeps each slice to a few milliseconds.
_PARSE_CHUNK = 500


class LocalGitSource:
    """A `CommitSource` over the repository at `path`."""

    def __init__(
        self,
        path: Path,
        *,
        max_commits: int = DEFAULT_MAX_COMMITS,
        timeout: float = 30.0,
        git_binary: str = "git",
    ) -> None:
        self.path = Path(path)
        self.max_commits = max_commits
        self.timeout = timeout
        self.git_binary = git_binary

    def __repr__(self) -> str:
        return f"LocalGitSource({str(self.path)!r})"

    @property
    def pr_url_base(self) -> None:
        """None: a clone on disk has no web address to link PR numbers to."""
        return None

    async def _git(self, *args: str) -> tuple[int, bytes, str]:
        """Run `git -C path <args>`; return (exit code, stdout, stderr text)."""
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "GIT_OPTIONAL_LOCKS": "0",
        }
        argv = [self.git_binary, "-C", str(self.path), "-c", "log.showSignature=false", *args]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except FileNotFoundError as exc:
            raise SourceError(f"git is not installed here ({self.git_binary!r} not found)") from exc
        except OSError as exc:
            raise SourceError(f"could not run git: {exc.strerror or exc}") from exc
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it may have exited just now
                proc.kill()
            await proc.wait()
            raise SourceError(f"git took longer than {self.timeout:g}s reading {self.path}") from None
        return proc.returncode or 0, out, err.decode("utf-8", "replace").strip()

    def _failure(self, stderr: str) -> SourceError:
        if "not a git repository" in stderr or "cannot change to" in stderr:
            return SourceError(f"{self.path} is not a readable git repository")
        first = stderr.splitlines()[0] if stderr else "unknown error"
        return SourceError(f"git failed in {self.path}: {first.removeprefix('fatal: ')}")

    async def _resolve(self, ref: str) -> str:
        """The full sha of the commit `ref` names; SourceError when there is none."""
        validate_ref(ref)
        if _OBJECT_ID.match(ref):
            return await self._expand(ref)
        code, out, err = await self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        if code == 0:
            return out.decode().strip()
        if err:
            raise self._failure(err)
        raise SourceError(f"commit {ref!r} not found in {self.path}")

    async def _expand(self, prefix: str) -> str:
        """The one commit whose id starts with `prefix`, looked up among objects only.

        `rev-parse <id>^{commit}` tries refs first for a short id, so a tag named `abcdef1` would stand in
        for commit abcdef1…; `--disambiguate` lists objects with that prefix and never reads a ref.
        """
        code, out, err = await self._git("rev-parse", f"--disambiguate={prefix.lower()}")
        if code != 0:
            raise self._failure(err)
        commits: list[str] = []
        for sha in out.decode().split()[:_MAX_AMBIGUOUS]:
            code, kind, _ = await self._git("cat-file", "-t", sha)
            if code == 0 and kind.strip() == b"commit":
                commits.append(sha)
        if len(commits) == 1:
            return commits[0]
        if commits:
            raise SourceError(f"commit {prefix!r} is ambiguous in {self.path}: use the full id")
        raise SourceError(f"commit {prefix!r} not found in {self.path}")

    async def commits_between(self, base: str | None, head: str) -> list[Commit]:
        """Commits in `head` not in `base`, oldest first, capped at `max_commits` (the newest kept).

        Returns a `CommitList`; `truncated` is True when older commits were left out.
        """
        head_sha = await self._resolve(head)
        revs = [head_sha]
        if base is not None:
            revs.append(f"^{await self._resolve(base)}")
        code, out, err = await self._git(
            "log",
            "-z",
            "--no-show-signature",
            "--no-color",
            "--encoding=UTF-8",
            "--topo-order",
            "--reverse",
            # One more than the cap: if it comes back, the range was larger than we keep.
            f"--max-count={self.max_commits + 1}",
            f"--format={_FORMAT}",
            "--end-of-options",
            *revs,
            "--",
        )
        if code != 0:
            raise self._failure(err)
        commits = await _parse_log(out.decode("utf-8", "replace"))
        truncated = len(commits) > self.max_commits
        # --reverse applies after --max-count, so the extra commit is the oldest: drop it.
        return CommitList(commits[1:] if truncated else commits, truncated=truncated)

    async def commit_time(self, ref: str) -> datetime:
        """The committer time of `ref` (used for lead time for changes)."""
        sha = await self._resolve(ref)
        code, out, err = await self._git("log", "-1", "--no-show-signature", "--format=%cI", "--end-of-options", sha)
        if code != 0:
            raise self._failure(err)
        return datetime.fromisoformat(out.decode().strip())


async def _parse_log(text: str) -> list[Commit]:
    """Parse `git log -z` output of `_FORMAT` records, yielding to the loop between chunks."""
    parts = text.split("\0")
    if len(parts) % _FIELDS == 1 and parts[-1] == "":
        parts.pop()  # -z terminates the last record too
    if len(parts) % _FIELDS:
        raise SourceError("git log output could not be parsed (unexpected field count)")
    commits: list[Commit] = []
    for start in range(0, len(parts), _FIELDS * _PARSE_CHUNK):
        if start:
            await asyncio.sleep(0)
        chunk = parts[start : start + _FIELDS * _PARSE_CHUNK]
        for i in range(0, len(chunk), _FIELDS):
            sha, parents, name, email, authored, committed, subject, body = chunk[i : i + _FIELDS]
            commits.append(
                Commit(
                    sha=sha,
                    subject=subject,
                    body=body.strip("\n"),
                    author_name=name,
                    author_email=email,
                    authored_at=datetime.fromisoformat(authored),
                    committed_at=datetime.fromisoformat(committed),
                    parents=tuple(parents.split()),
                )
            )
    return commits
